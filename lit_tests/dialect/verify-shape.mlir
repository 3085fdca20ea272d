// RUN: sed -e 's/dense<\[0.5, -0.5\]> : tensor<2xf32>/dense<[0.5, -0.5, 1.0]> : tensor<3xf32>/; s/tensor<2xf32>)/tensor<3xf32>)/' %inputs/conv.mlir | not spattern-opt --verify-only 2>&1 | FileCheck %s
// CHECK: error: sparse_pattern.conv2d {{.*}}shape mismatch: bias is (3,), expected (2,)
