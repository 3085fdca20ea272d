// RUN: sed -e 's/tensor<3x4xf32>/tensor<2x4xf32>/g; s/\[9.0, 10.0, 11.0, 12.0\]//; s/8.0\], *\]/8.0]]/' %inputs/conv.mlir | not spattern-opt --verify-only 2>&1 | FileCheck %s
// CHECK: error: sparse_pattern.conv2d {{.*}}weight count mismatch: weights are (2, 4), the kept kernels need (3, 4)
