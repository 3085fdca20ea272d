// RUN: spattern-opt --pass-pipeline=group-patterns %inputs/conv.mlir | FileCheck %s --check-prefix=MERGED
// Two 1-filter blocks are merged into one group (fewer than 64 filters each).
// MERGED: "sparse_pattern.conv2d"
// MERGED-SAME: groups = dense<{{\[\[}}0, 2]]> : tensor<1x2xi32>
