// RUN: sed -e 's/\[3, 4, 5, 7\]/[3, 5, 6, 7]/' %inputs/conv.mlir | not spattern-opt --verify-only 2>&1 | FileCheck %s
// CHECK: error: sparse_pattern.conv2d {{.*}}library entry 1 [3, 5, 6, 7] is not center-plus-3
