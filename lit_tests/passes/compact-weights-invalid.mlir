// Weights that do not match the kept kernels are rejected before compaction.
// RUN: sed -e 's/kept = dense<\[\[1, 1\], \[1, 0\]\]>/kept = dense<[[1, 1], [1, 1]]>/' %inputs/conv.mlir | not spattern-opt --pass-pipeline=compact-weights 2>&1 | FileCheck %s
// CHECK: error: sparse_pattern.conv2d {{.*}}weight count mismatch: weights are (3, 4), the kept kernels need (4, 4)
