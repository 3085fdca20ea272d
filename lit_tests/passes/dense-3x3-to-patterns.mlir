// RUN: spattern-opt --pass-pipeline=dense-3x3-to-patterns --stats %s 2>%t.stats | FileCheck %s
// RUN: FileCheck %s --check-prefix=STATS < %t.stats
// A dense 3x3 conv over 1 input channel (weights 1..9) with a per-filter scale (x2) after it becomes a pattern conv
// over 3 copies of its input: three kernels under the patterns (0,1,2,4), (3,4,5,6), (4,6,7,8) whose weights sum
// to the dense kernel (the centre 5 only in the first, tap 6 (7) only in the second), scaled by 2. A dense 3x3
// conv over 8 input channels (more than 4) stays IREE's.
// CHECK-LABEL: func.func @main
// CHECK: %[[CAT:.+]] = tensor.concat dim(1) %[[X:[^,]+]], %[[X]], %[[X]] : (tensor<1x1x6x6xf32>, tensor<1x1x6x6xf32>, tensor<1x1x6x6xf32>) -> tensor<1x3x6x6xf32>
// CHECK: %[[W:.+]] = arith.constant dense<{{\[\[}}2.000000e+00, 4.000000e+00, 6.000000e+00, 1.000000e+01], [8.000000e+00, 0.000000e+00, 1.200000e+01, 1.400000e+01], [0.000000e+00, 0.000000e+00, 1.600000e+01, 1.800000e+01]]> : tensor<3x4xf32>
// CHECK: "sparse_pattern.conv2d"(%[[CAT]], %[[W]]
// CHECK-SAME: filter_block = 1
// CHECK-SAME: layer = "dense3x3_0"
// CHECK-SAME: library = dense<{{\[\[}}0, 1, 2, 4], [3, 4, 5, 6], [4, 6, 7, 8]]> : tensor<3x4xi32>
// CHECK-SAME: pattern_ids = dense<{{\[\[}}0, 1, 2]]> : tensor<1x3xi32>
// CHECK-NOT: linalg.generic
// CHECK: linalg.conv_2d_nchw_fchw
// CHECK-SAME: tensor<1x8x8x8xf32>, tensor<1x8x3x3xf32>
// STATS: "dense-3x3-to-patterns": {"rewritten": 1}
#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#ch = affine_map<(d0, d1, d2, d3) -> (d1, 0, 0)>
func.func @main(%x: tensor<1x1x6x6xf32>, %y: tensor<1x8x6x6xf32>) -> (tensor<1x1x6x6xf32>, tensor<1x1x6x6xf32>) {
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<[[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]]]> : tensor<1x1x3x3xf32>
  %w8 = arith.constant dense<1.0> : tensor<1x8x3x3xf32>
  %scale = arith.constant dense<[[[2.0]]]> : tensor<1x1x1xf32>
  %p = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%a: index, %b: index, %c: index, %d: index):
    tensor.yield %zero : f32
  } : tensor<1x1x6x6xf32> to tensor<1x1x8x8xf32>
  %e = tensor.empty() : tensor<1x1x6x6xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<1x1x6x6xf32>) -> tensor<1x1x6x6xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%p, %w : tensor<1x1x8x8xf32>, tensor<1x1x3x3xf32>) outs(%z : tensor<1x1x6x6xf32>) -> tensor<1x1x6x6xf32>
  %m = linalg.generic {indexing_maps = [#id, #ch, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c, %scale : tensor<1x1x6x6xf32>, tensor<1x1x1xf32>) outs(%e : tensor<1x1x6x6xf32>) {
  ^bb0(%in: f32, %s: f32, %o: f32):
    %r = arith.mulf %in, %s : f32
    linalg.yield %r : f32
  } -> tensor<1x1x6x6xf32>
  %p8 = tensor.pad %y low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%a: index, %b: index, %c0: index, %d: index):
    tensor.yield %zero : f32
  } : tensor<1x8x6x6xf32> to tensor<1x8x8x8xf32>
  %c8 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%p8, %w8 : tensor<1x8x8x8xf32>, tensor<1x8x3x3xf32>) outs(%z : tensor<1x1x6x6xf32>) -> tensor<1x1x6x6xf32>
  return %m, %c8 : tensor<1x1x6x6xf32>, tensor<1x1x6x6xf32>
}
