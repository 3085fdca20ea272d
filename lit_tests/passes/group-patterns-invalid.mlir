// RUN: sed -e 's/tensor<2x2xi8>/tensor<2x2xi8>, groups = dense<[[0, 1]]> : tensor<1x2xi32>/' %inputs/conv.mlir | not spattern-opt --verify-only 2>&1 | FileCheck %s
// CHECK: error: sparse_pattern.conv2d {{.*}}groups must be consecutive (first, count) rows covering [0, 2)
