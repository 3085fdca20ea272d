// RUN: spattern-opt --pass-pipeline=filter-kernel-reorder,group-patterns %inputs/conv.mlir | FileCheck %s --check-prefix=MERGED
// Two 1-filter blocks are merged into one portable group (fewer than 64 filters each). Runs (first kernel,
// pattern, count) over FKR's order (f0,c0,p0), (f1,c0,p1), (f0,c1,p1): no two kernels of a channel share a
// pattern, so each is its own run.
// MERGED: "sparse_pattern.conv2d"
// MERGED-SAME: groups = dense<{{\[\[}}0, 2]]> : tensor<1x2xi32>
// MERGED-SAME: runs = dense<{{\[\[}}0, 0, 1], [1, 1, 1], [2, 1, 1]]> : tensor<3x3xi32>

// RUN: sed -e 's/pattern_ids = dense<\[\[0, 1\], \[1, 0\]\]>/pattern_ids = dense<[[0, 1], [0, 0]]>/' %inputs/conv.mlir | spattern-opt --pass-pipeline=group-patterns | FileCheck %s --check-prefix=SHARED
// With f1 on pattern 0 too, both channel-0 kernels form one run of 2; without FKR the runs cut the default order
// (chunk, channel, filter), here the same.
// SHARED: "sparse_pattern.conv2d"
// SHARED-SAME: runs = dense<{{\[\[}}0, 0, 2], [2, 1, 1]]> : tensor<2x3xi32>
