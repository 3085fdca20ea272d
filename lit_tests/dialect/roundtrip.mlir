// RUN: spattern-opt --verify-only %inputs/conv.mlir | FileCheck %s
// RUN: spattern-opt --verify-only %inputs/conv.mlir | spattern-opt --verify-only | FileCheck %s
// CHECK: "sparse_pattern.conv2d"(%{{[a-z0-9_]+}}, %{{[a-z0-9_]+}}, %{{[a-z0-9_]+}})
// CHECK-SAME: filter_block = 1 : i64
// CHECK-SAME: kept = dense<{{\[\[}}1, 1], [1, 0]]> : tensor<2x2xi8>
// CHECK-SAME: library = dense<{{\[\[}}1, 3, 4, 5], [3, 4, 5, 7]]> : tensor<2x4xi32>
// CHECK-SAME: padding = array<i64: 1, 1>
// CHECK-SAME: pattern_ids = dense<{{\[\[}}0, 1], [1, 0]]> : tensor<2x2xi32>
// CHECK-SAME: strides = array<i64: 1, 1>
// CHECK-SAME: -> tensor<1x2x4x4xf32>
