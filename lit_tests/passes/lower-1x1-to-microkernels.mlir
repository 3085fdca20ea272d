// RUN: spattern-opt --pass-pipeline=conv-1x1-to-matmul,lower-1x1-to-microkernels --stats %s 2>%t.stats | FileCheck %s
// RUN: FileCheck %s --check-prefix=STATS < %t.stats
// RUN: spattern-opt --pass-pipeline=conv-1x1-to-matmul,lower-1x1-to-microkernels,lower-to-microkernels %s | FileCheck %s --check-prefix=THEN
// @bn_residual_relu: a 1x1 conv after a pattern conv (conv-1x1-to-matmul makes it a matmul call), then a
// per-channel scale (a folded BatchNorm), a residual add and a ReLU, becomes one call of the conv1x1 kernel: its
// weights scaled by 2 and packed [block][C][8] (filters 3..7 of the block zero), then the bias; its 4th operand
// is the residual, and nothing else is left. @weight_argument: the weight is not a constant: the matmul stays.
// @feeds_pattern_conv: the 1x1 conv's ReLU'd result feeds only a pattern conv (stride 1, padding 1): the kernel
// writes that conv's padded input (rows past the image included, consumer_pads), which the conv reads through
// the interior slice until lower-to-microkernels takes the padded buffer as is.

// CHECK-DAG: func.func private @spattern_mk_0(tensor<1x2x4x4xf32>, tensor<19xf32>, tensor<24xi32>, tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32> attributes {spattern.microkernel = {kernel = "conv1x1", workgroups = 1 : i64}}
// CHECK-DAG: func.func private @spattern_conv1x1_nchw_1(
// CHECK-LABEL: func.func @bn_residual_relu
// CHECK-SAME: %[[X:[a-z0-9]+]]: tensor<1x2x4x4xf32>, %[[RES:[a-z0-9]+]]: tensor<1x3x4x4xf32>
// CHECK: %[[S:.+]] = "sparse_pattern.conv2d"
// CHECK: %[[R:.+]] = linalg.generic {{.*}} ins(%[[S]]
// CHECK: %[[W:.+]] = arith.constant dense<[2.000000e+00, 6.000000e+00, 1.000000e+01, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 4.000000e+00, 8.000000e+00, 1.200000e+01, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 1.000000e+00, 1.000000e+00, 1.000000e+00]> : tensor<19xf32>
// CHECK: %[[T:.+]] = arith.constant dense<[1397770034, 2, 3, 16, 8, 1, 1, 1, 16, 1, 1, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]> : tensor<24xi32>
// CHECK: %[[Y:.+]] = call @spattern_mk_0(%[[R]], %[[W]], %[[T]], %[[RES]])
// CHECK-NOT: linalg.generic
// CHECK: return %[[Y]]
// CHECK-LABEL: func.func @weight_argument
// CHECK: call @spattern_conv1x1_nchw_1(
// CHECK-LABEL: func.func @feeds_pattern_conv
// CHECK: %[[P:.+]] = call @spattern_mk_{{[0-9]+}}(%{{.+}}, %{{.+}}, %{{.+}}) {spattern.padded_output = array<i64: 1, 16, 1, 1>} : (tensor<1x2x4x4xf32>, tensor<19xf32>, tensor<24xi32>) -> tensor<1x3x21x6xf32>
// CHECK: %[[I:.+]] = tensor.extract_slice %[[P]][0, 0, 1, 1] [1, 3, 4, 4] [1, 1, 1, 1]
// CHECK: "sparse_pattern.conv2d"(%[[I]]
// THEN-LABEL: func.func @feeds_pattern_conv
// THEN: %[[P:.+]] = call @spattern_mk_{{[0-9]+}}({{.+}}) {spattern.padded_output = array<i64: 1, 16, 1, 1>}
// THEN: call @spattern_mk_{{[0-9]+}}(%[[P]],
// STATS: "lower-1x1-to-microkernels": {"convs": 2, "skipped": 1, "fused_relu": 2, "fused_residual": 1, "padded_outputs": 1, "filter_layout": 0}

#map = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#chan = affine_map<(d0, d1, d2, d3) -> (d1, 0, 0)>
func.func @bn_residual_relu(%x: tensor<1x2x4x4xf32>, %res: tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32> {
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [9.0, 10.0, 11.0, 12.0]]> : tensor<3x4xf32>
  %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %s = "sparse_pattern.conv2d"(%x, %w, %b) {library = dense<[[1, 3, 4, 5], [3, 4, 5, 7]]> : tensor<2x4xi32>, pattern_ids = dense<[[0, 1], [1, 0]]> : tensor<2x2xi32>, kept = dense<[[1, 1], [1, 0]]> : tensor<2x2xi8>, filter_block = 1 : i64, strides = array<i64: 1, 1>, padding = array<i64: 1, 1>} : (tensor<1x2x4x4xf32>, tensor<3x4xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %e = tensor.empty() : tensor<1x2x4x4xf32>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s : tensor<1x2x4x4xf32>) outs(%e : tensor<1x2x4x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x2x4x4xf32>
  %w1 = arith.constant dense<[[[[1.0]], [[2.0]]], [[[3.0]], [[4.0]]], [[[5.0]], [[6.0]]]]> : tensor<3x2x1x1xf32>
  %bias = arith.constant dense<0.5> : tensor<3xf32>
  %e1 = tensor.empty() : tensor<1x3x4x4xf32>
  %f1 = linalg.broadcast ins(%bias : tensor<3xf32>) outs(%e1 : tensor<1x3x4x4xf32>) dimensions = [0, 2, 3]
  %c1 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%r, %w1 : tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>) outs(%f1 : tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %scale = arith.constant dense<2.0> : tensor<3x1x1xf32>
  %bn = linalg.generic {indexing_maps = [#map, #chan, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%c1, %scale : tensor<1x3x4x4xf32>, tensor<3x1x1xf32>) outs(%e1 : tensor<1x3x4x4xf32>) {
  ^bb0(%a: f32, %s2: f32, %out: f32):
    %m = arith.mulf %a, %s2 : f32
    linalg.yield %m : f32
  } -> tensor<1x3x4x4xf32>
  %add = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%bn, %res : tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>) outs(%e1 : tensor<1x3x4x4xf32>) {
  ^bb0(%a: f32, %b2: f32, %out: f32):
    %m = arith.addf %a, %b2 : f32
    linalg.yield %m : f32
  } -> tensor<1x3x4x4xf32>
  %y = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%add : tensor<1x3x4x4xf32>) outs(%e1 : tensor<1x3x4x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x3x4x4xf32>
  return %y : tensor<1x3x4x4xf32>
}

func.func @weight_argument(%x: tensor<1x2x4x4xf32>, %w1: tensor<3x2x1x1xf32>) -> tensor<1x3x4x4xf32> {
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [9.0, 10.0, 11.0, 12.0]]> : tensor<3x4xf32>
  %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %s = "sparse_pattern.conv2d"(%x, %w, %b) {library = dense<[[1, 3, 4, 5], [3, 4, 5, 7]]> : tensor<2x4xi32>, pattern_ids = dense<[[0, 1], [1, 0]]> : tensor<2x2xi32>, kept = dense<[[1, 1], [1, 0]]> : tensor<2x2xi8>, filter_block = 1 : i64, strides = array<i64: 1, 1>, padding = array<i64: 1, 1>} : (tensor<1x2x4x4xf32>, tensor<3x4xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %e1 = tensor.empty() : tensor<1x3x4x4xf32>
  %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %c1 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%s, %w1 : tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>) outs(%f1 : tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  return %c1 : tensor<1x3x4x4xf32>
}

func.func @feeds_pattern_conv(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [9.0, 10.0, 11.0, 12.0]]> : tensor<3x4xf32>
  %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %s = "sparse_pattern.conv2d"(%x, %w, %b) {library = dense<[[1, 3, 4, 5], [3, 4, 5, 7]]> : tensor<2x4xi32>, pattern_ids = dense<[[0, 1], [1, 0]]> : tensor<2x2xi32>, kept = dense<[[1, 1], [1, 0]]> : tensor<2x2xi8>, filter_block = 1 : i64, strides = array<i64: 1, 1>, padding = array<i64: 1, 1>} : (tensor<1x2x4x4xf32>, tensor<3x4xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %w1 = arith.constant dense<1.0> : tensor<3x2x1x1xf32>
  %e1 = tensor.empty() : tensor<1x3x4x4xf32>
  %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %c1 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%s, %w1 : tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>) outs(%f1 : tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%c1 : tensor<1x3x4x4xf32>) outs(%e1 : tensor<1x3x4x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x3x4x4xf32>
  %w2 = arith.constant dense<1.0> : tensor<6x4xf32>
  %s2 = "sparse_pattern.conv2d"(%r, %w2, %b) {library = dense<[[1, 3, 4, 5], [3, 4, 5, 7]]> : tensor<2x4xi32>, pattern_ids = dense<[[0, 1, 0], [1, 0, 1]]> : tensor<2x3xi32>, kept = dense<[[1, 1, 1], [1, 1, 1]]> : tensor<2x3xi8>, filter_block = 1 : i64, strides = array<i64: 1, 1>, padding = array<i64: 1, 1>} : (tensor<1x3x4x4xf32>, tensor<6x4xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %s2 : tensor<1x2x4x4xf32>
}
