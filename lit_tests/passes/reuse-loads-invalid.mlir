// RUN: sed -e 's/strides = array<i64: 1, 1>/strides = array<i64: 0, 1>/' %inputs/conv.mlir | not spattern-opt --pass-pipeline=reuse-loads 2>&1 | FileCheck %s
// CHECK: error: sparse_pattern.conv2d {{.*}}strides [0, 1] / padding [1, 1] must be 2 values
