// RUN: spattern-opt --pass-pipeline=filter-kernel-reorder,compact-weights %inputs/conv.mlir | FileCheck %s
// Rows in (chunk, channel, pattern) order: the filter of each row, and per (chunk, channel) the first row of
// each pattern (+ the end): channel 0 holds rows 0 (pattern 0) and 1 (pattern 1), channel 1 row 2 (pattern 1).
// CHECK: "sparse_pattern.conv2d"
// CHECK-SAME: group_offsets = dense<{{\[\[\[}}0, 1, 2], [2, 2, 3]]]> : tensor<1x2x3xi32>
// CHECK-SAME: kernel_filter = dense<[0, 1, 0]> : tensor<3xi32>
