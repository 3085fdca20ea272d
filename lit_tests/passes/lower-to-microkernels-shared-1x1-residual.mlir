// RUN: spattern-opt --pass-pipeline=conv-1x1-to-matmul,lower-1x1-to-microkernels,lower-to-microkernels --stats %s 2>%t.stats | FileCheck %s
// RUN: FileCheck %s --check-prefix=STATS < %t.stats
// @projection_block (issue 19's crash): %y, a pattern conv's ReLU'd output, feeds a pattern conv (%a) and a 1x1
// conv whose result is added to %a, then ReLU'd. lower-1x1-to-microkernels fuses the add + ReLU into the 1x1
// kernel (%a its residual). %y's other user is then that kernel's call, not an add a pattern conv fuses: the
// first conv writes an unpadded output (no spattern.padded_output), the second conv pads its own input, and the
// 1x1 kernel reads %y as is. Before the fix the pass raised a TypeError (None compared with an ir.Value).

// CHECK-LABEL: func.func @projection_block
// CHECK: %[[P0:.+]] = call @spattern_mk_{{[0-9]+}}_pad(%arg0)
// CHECK: %[[Y:.+]] = call @spattern_mk_{{[0-9]+}}(%[[P0]], %{{.+}}, %{{.+}}) : (
// CHECK-SAME: -> tensor<1x2x4x4xf32>
// CHECK: %[[P:.+]] = call @spattern_mk_{{[0-9]+}}_pad(%[[Y]])
// CHECK: %[[A:.+]] = call @spattern_mk_{{[0-9]+}}(%[[P]], %{{.+}}, %{{.+}}) : (
// CHECK: %[[OUT:.+]] = call @spattern_mk_{{[0-9]+}}(%[[Y]], %{{.+}}, %{{.+}}, %[[A]])
// CHECK-NOT: linalg.generic
// CHECK: return %[[OUT]]
// STATS: "lower-1x1-to-microkernels": {"convs": 1, "skipped": 0, "fused_relu": 1, "fused_residual": 1, "padded_outputs": 0, "filter_layout": 0}
// STATS: "lower-to-microkernels": {"convs": 2, "left_for_linalg": 0, "kept_kernels": 9, "fused_relu": 1, "fused_residual": 0, "padded_outputs": 0}

#map = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @projection_block(%x: tensor<1x2x4x4xf32>) -> tensor<1x3x4x4xf32> {
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [9.0, 10.0, 11.0, 12.0]]> : tensor<3x4xf32>
  %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %s = "sparse_pattern.conv2d"(%x, %w, %b) {library = dense<[[1, 3, 4, 5], [3, 4, 5, 7]]> : tensor<2x4xi32>, pattern_ids = dense<[[0, 1], [1, 0]]> : tensor<2x2xi32>, kept = dense<[[1, 1], [1, 0]]> : tensor<2x2xi8>, filter_block = 1 : i64, strides = array<i64: 1, 1>, padding = array<i64: 1, 1>} : (tensor<1x2x4x4xf32>, tensor<3x4xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %e = tensor.empty() : tensor<1x2x4x4xf32>
  %y = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s : tensor<1x2x4x4xf32>) outs(%e : tensor<1x2x4x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x2x4x4xf32>
  %w2 = arith.constant dense<0.25> : tensor<6x4xf32>
  %b2 = arith.constant dense<[0.1, 0.2, 0.3]> : tensor<3xf32>
  %a = "sparse_pattern.conv2d"(%y, %w2, %b2) {library = dense<[[1, 3, 4, 5], [3, 4, 5, 7]]> : tensor<2x4xi32>, pattern_ids = dense<[[0, 1], [1, 0], [0, 0]]> : tensor<3x2xi32>, kept = dense<[[1, 1], [1, 1], [1, 1]]> : tensor<3x2xi8>, filter_block = 1 : i64, strides = array<i64: 1, 1>, padding = array<i64: 1, 1>} : (tensor<1x2x4x4xf32>, tensor<6x4xf32>, tensor<3xf32>) -> tensor<1x3x4x4xf32>
  %w1 = arith.constant dense<[[[[1.0]], [[2.0]]], [[[3.0]], [[4.0]]], [[[5.0]], [[6.0]]]]> : tensor<3x2x1x1xf32>
  %e1 = tensor.empty() : tensor<1x3x4x4xf32>
  %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %c1 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%y, %w1 : tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>) outs(%f1 : tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %add = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%a, %c1 : tensor<1x3x4x4xf32>, tensor<1x3x4x4xf32>) outs(%e1 : tensor<1x3x4x4xf32>) {
  ^bb0(%p: f32, %q: f32, %out: f32):
    %m = arith.addf %p, %q : f32
    linalg.yield %m : f32
  } -> tensor<1x3x4x4xf32>
  %out = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%add : tensor<1x3x4x4xf32>) outs(%e1 : tensor<1x3x4x4xf32>) {
  ^bb0(%in: f32, %o: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x3x4x4xf32>
  return %out : tensor<1x3x4x4xf32>
}
