// RUN: spattern-opt --pass-pipeline=filter-kernel-reorder %inputs/conv.mlir | FileCheck %s
// Two filters (fewer than 256: 64-filter chunks): one chunk holding both, in ascending order. Kernels sorted by
// (chunk, channel, pattern, filter): (f0,c0,p0), (f1,c0,p1), (f0,c1,p1) = canonical 0, 2, 1; the weight rows
// move with them. lower-to-microkernels packs these chunks and this order as they are.
// CHECK: arith.constant dense<{{\[\[}}1.000000e+00, {{.*}}], [9.000000e+00, {{.*}}], [5.000000e+00, {{.*}}]]> : tensor<3x4xf32>
// CHECK: "sparse_pattern.conv2d"
// CHECK-SAME: chunk_filters = dense<[0, 1]> : tensor<2xi32>
// CHECK-SAME: chunk_sizes = dense<2> : tensor<1xi32>
// CHECK-NOT: chunk_size =
// CHECK-SAME: kernel_order = dense<[0, 2, 1]> : tensor<3xi32>
