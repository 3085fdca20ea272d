// RUN: %python -m spattern.opt --pass-pipeline=lower-to-microkernels %s | FileCheck %s

// Negative: a stride-3 pattern conv is beyond the microkernel (strides 1 and 2 only). The pass must leave it for
// lower-to-linalg, untouched, and emit no microkernel declaration.

// CHECK-NOT: spattern_mk_
// CHECK: "sparse_pattern.conv2d"
// CHECK-SAME: strides = array<i64: 3, 3>
// CHECK-NOT: spattern_mk_
func.func @main(%x: tensor<1x2x7x7xf32>) -> tensor<1x3x3x3xf32> {
  %w = arith.constant dense<[[0.0,0.125,0.25,0.375],[0.5,0.625,0.75,0.875],[1.0,1.125,1.25,1.375],[1.5,1.625,1.75,1.875]]> : tensor<4x4xf32>
  %b = arith.constant dense<[0.5, -1.0, 2.0]> : tensor<3xf32>
  %y = "sparse_pattern.conv2d"(%x, %w, %b) {library = dense<[[0,1,2,4],[4,6,7,8]]> : tensor<2x4xi32>, pattern_ids = dense<[[0,1],[1,0],[0,0]]> : tensor<3x2xi32>,
      kept = dense<[[1,1],[1,0],[0,1]]> : tensor<3x2xi8>, filter_block = 1 : i64, strides = array<i64: 3, 3>, padding = array<i64: 1, 1>}
      : (tensor<1x2x7x7xf32>, tensor<4x4xf32>, tensor<3xf32>) -> tensor<1x3x3x3xf32>
  return %y : tensor<1x3x3x3xf32>
}
