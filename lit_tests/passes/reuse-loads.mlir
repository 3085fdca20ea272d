// RUN: spattern-opt --pass-pipeline=group-patterns,reuse-loads --stats --elements-limit 100 %inputs/conv.mlir 2>&1 | FileCheck %s
// One group reads taps {1,3,4,5,7} of channel 0 and {3,4,5,7} of channel 1: one slice per tap (taps 3, 4, 5, 7
// cover both channels), 5 slices; without reuse, the two channels' different tap sets split them: 9.
// CHECK: "reuse-loads": {"slices": 5, "slices_without_reuse": 9}
// CHECK: "sparse_pattern.conv2d"
// CHECK-SAME: load_schedule = dense<{{\[\[}}0, 1, 0, 1], [0, 3, 0, 2], [0, 4, 0, 2], [0, 5, 0, 2], [0, 7, 0, 2]]>
// CHECK-SAME: tap_masks = dense<{{\[\[}}186, 184]]> : tensor<1x2xi32>
