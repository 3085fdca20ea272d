// A malformed op is rejected before the pass reads it.
// RUN: sed -e 's/tensor<2x2xi8>/tensor<2x2xi8>, kernel_order = dense<[0, 0, 1]> : tensor<3xi32>/' %inputs/conv.mlir | not spattern-opt --pass-pipeline=filter-kernel-reorder 2>&1 | FileCheck %s
// CHECK: error: sparse_pattern.conv2d {{.*}}kernel_order is not a permutation of the 3 kept kernels
