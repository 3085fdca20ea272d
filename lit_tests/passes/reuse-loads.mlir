// RUN: spattern-opt --pass-pipeline=filter-kernel-reorder,group-patterns,reuse-loads --stats %inputs/conv.mlir 2>&1 | FileCheck %s
// Runs (f0,c0,p0), (f1,c0,p1), (f0,c1,p1), each marked with its pattern's taps: {1,3,4,5} = 58, {3,4,5,7} = 184.
// No two kernels of a channel share a pattern, so the kernel runs 3 runs, as without reuse.
// CHECK: "reuse-loads": {"runs": 3, "runs_without_reuse": 3}
// CHECK: "sparse_pattern.conv2d"
// CHECK-SAME: run_taps = dense<[58, 184, 184]> : tensor<3xi32>

// RUN: sed -e 's/pattern_ids = dense<\[\[0, 1\], \[1, 0\]\]>/pattern_ids = dense<[[0, 1], [0, 0]]>/' %inputs/conv.mlir | spattern-opt --pass-pipeline=filter-kernel-reorder,group-patterns,reuse-loads --stats 2>&1 | FileCheck %s --check-prefix=SHARED
// With f1 on pattern {1,3,4,5} too, both channel-0 kernels form one run that loads its taps once: 2 runs for
// 3 kernels.
// SHARED: "reuse-loads": {"runs": 2, "runs_without_reuse": 3}
// SHARED: "sparse_pattern.conv2d"
// SHARED-SAME: run_taps = dense<[58, 184]> : tensor<2xi32>

// RUN: sed -e 's/pattern_ids = dense<\[\[0, 1\], \[1, 0\]\]>/pattern_ids = dense<[[0, 1], [0, 0]]>/' %inputs/conv.mlir | spattern-opt --pass-pipeline=reuse-loads --stats 2>&1 | FileCheck %s --check-prefix=NOGROUPS
// Without group-patterns every kernel is its own run: nothing to share.
// NOGROUPS: "reuse-loads": {"runs": 3, "runs_without_reuse": 3}
