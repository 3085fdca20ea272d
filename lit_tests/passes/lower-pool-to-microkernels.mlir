// RUN: spattern-opt --pass-pipeline=lower-pool-to-microkernels --stats %s 2>%t.stats | FileCheck %s
// RUN: FileCheck %s --check-prefix=STATS < %t.stats
// RUN: spattern-opt --pass-pipeline=lower-pool-to-microkernels,lower-to-microkernels %s | FileCheck %s --check-prefix=THEN
// @plain: a 2x2 / stride-2 max pool over an odd-sized image (floor: 5x7 -> 2x3) becomes one call of the max-pool
// kernel: a 1-element placeholder in the weights slot, the header (C, H, W, HO, WO, channels per workgroup), no
// padding. @feeds_pattern_conv: the pool's only user is a pattern conv (stride 1, padding 1): the kernel writes
// that conv's padded input (consumer_pads), which the conv reads through the interior slice until
// lower-to-microkernels takes the padded buffer as is. @pool_3x3: another window: left to IREE.

// CHECK-DAG: func.func private @spattern_mk_0(tensor<1x3x5x7xf32>, tensor<1xf32>, tensor<16xi32>) -> tensor<1x3x2x3xf32> attributes {spattern.microkernel = {kernel = "maxpool2x2", workgroups = 1 : i64}}
// CHECK-LABEL: func.func @plain
// CHECK-SAME: %[[X:[a-z0-9]+]]: tensor<1x3x5x7xf32>
// CHECK: %[[W:.+]] = arith.constant dense<0.000000e+00> : tensor<1xf32>
// CHECK: %[[T:.+]] = arith.constant dense<[1397771569, 3, 5, 7, 2, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]> : tensor<16xi32>
// CHECK: %[[Y:.+]] = call @spattern_mk_0(%[[X]], %[[W]], %[[T]])
// CHECK-NOT: linalg.
// CHECK: return %[[Y]]
// CHECK-LABEL: func.func @feeds_pattern_conv
// CHECK: %[[P:.+]] = call @spattern_mk_{{[0-9]+}}(%{{.+}}, %{{.+}}, %{{.+}}) {spattern.padded_output = array<i64: 1, 16, 1, 1>} : (tensor<1x2x8x8xf32>, tensor<1xf32>, tensor<16xi32>) -> tensor<1x2x21x6xf32>
// CHECK: %[[I:.+]] = tensor.extract_slice %[[P]][0, 0, 1, 1] [1, 2, 4, 4] [1, 1, 1, 1]
// CHECK: "sparse_pattern.conv2d"(%[[I]]
// CHECK-LABEL: func.func @pool_3x3
// CHECK: linalg.pooling_nchw_max
// THEN-LABEL: func.func @feeds_pattern_conv
// THEN: %[[P:.+]] = call @spattern_mk_{{[0-9]+}}({{.+}}) {spattern.padded_output = array<i64: 1, 16, 1, 1>}
// THEN: call @spattern_mk_{{[0-9]+}}(%[[P]],
// STATS: "lower-pool-to-microkernels": {"pools": 2, "skipped": 1, "padded_outputs": 1}

func.func @plain(%x: tensor<1x3x5x7xf32>) -> tensor<1x3x2x3xf32> {
  %ninf = arith.constant 0xFF800000 : f32
  %win = tensor.empty() : tensor<2x2xf32>
  %e = tensor.empty() : tensor<1x3x2x3xf32>
  %init = linalg.fill ins(%ninf : f32) outs(%e : tensor<1x3x2x3xf32>) -> tensor<1x3x2x3xf32>
  %y = linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
      ins(%x, %win : tensor<1x3x5x7xf32>, tensor<2x2xf32>) outs(%init : tensor<1x3x2x3xf32>) -> tensor<1x3x2x3xf32>
  return %y : tensor<1x3x2x3xf32>
}

func.func @feeds_pattern_conv(%x: tensor<1x2x8x8xf32>) -> tensor<1x2x4x4xf32> {
  %ninf = arith.constant 0xFF800000 : f32
  %win = tensor.empty() : tensor<2x2xf32>
  %e = tensor.empty() : tensor<1x2x4x4xf32>
  %init = linalg.fill ins(%ninf : f32) outs(%e : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %p = linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
      ins(%x, %win : tensor<1x2x8x8xf32>, tensor<2x2xf32>) outs(%init : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %w = arith.constant dense<[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [9.0, 10.0, 11.0, 12.0]]> : tensor<3x4xf32>
  %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %s = "sparse_pattern.conv2d"(%p, %w, %b) {library = dense<[[1, 3, 4, 5], [3, 4, 5, 7]]> : tensor<2x4xi32>, pattern_ids = dense<[[0, 1], [1, 0]]> : tensor<2x2xi32>, kept = dense<[[1, 1], [1, 0]]> : tensor<2x2xi8>, filter_block = 1 : i64, strides = array<i64: 1, 1>, padding = array<i64: 1, 1>} : (tensor<1x2x4x4xf32>, tensor<3x4xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %s : tensor<1x2x4x4xf32>
}

func.func @pool_3x3(%x: tensor<1x2x9x9xf32>) -> tensor<1x2x4x4xf32> {
  %ninf = arith.constant 0xFF800000 : f32
  %win = tensor.empty() : tensor<3x3xf32>
  %e = tensor.empty() : tensor<1x2x4x4xf32>
  %init = linalg.fill ins(%ninf : f32) outs(%e : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %y = linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
      ins(%x, %win : tensor<1x2x9x9xf32>, tensor<3x3xf32>) outs(%init : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %y : tensor<1x2x4x4xf32>
}
