// RUN: spattern-opt --pass-pipeline=filter-kernel-reorder,compact-weights %inputs/conv.mlir | FileCheck %s
// Rows in FKR's order (f0,c0), (f1,c0), (f0,c1), one chunk [0, 1]: each row's filter as its index in the chunk,
// the byte the microkernel reads next to the row's 4 weights.
// CHECK: "sparse_pattern.conv2d"
// CHECK-NOT: group_offsets
// CHECK-SAME: kernel_filter = dense<[0, 1, 0]> : tensor<3xi32>
