// RUN: spattern-opt --pass-pipeline=reuse-loads --stats %inputs/conv.mlir 2>&1 | FileCheck %s
// One chunk (2 filters). Channel 0: f0 reads taps {1,3,4,5}, f1 {3,4,5,7} (union 186); channel 1: f0 {3,4,5,7}
// (184). No two kernels of a channel share a pattern, so each kernel is its own run: 3 runs, as without reuse.
// CHECK: "reuse-loads": {"runs": 3, "runs_without_reuse": 3, "tap_rows": 9}
// CHECK: "sparse_pattern.conv2d"
// CHECK-SAME: tap_masks = dense<{{\[\[}}186, 184]]> : tensor<1x2xi32>

// RUN: sed -e 's/pattern_ids = dense<\[\[0, 1\], \[1, 0\]\]>/pattern_ids = dense<[[0, 1], [0, 0]]>/' %inputs/conv.mlir | spattern-opt --pass-pipeline=reuse-loads --stats 2>&1 | FileCheck %s --check-prefix=SHARED
// With f1 on pattern {1,3,4,5} too, both channel-0 kernels form one run that loads its taps once: 2 runs for
// 3 kernels; channel 0 now reads taps {1,3,4,5} (58).
// SHARED: "reuse-loads": {"runs": 2, "runs_without_reuse": 3, "tap_rows": 8}
// SHARED: "sparse_pattern.conv2d"
// SHARED-SAME: tap_masks = dense<{{\[\[}}58, 184]]> : tensor<1x2xi32>
