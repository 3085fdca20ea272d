// RUN: sed -e 's/tensor<2x2xi8>/tensor<2x2xi8>, groups = dense<[[0, 2]]> : tensor<1x2xi32>, channel_order = dense<[[0, 1], [1, 0]]> : tensor<2x2xi32>/' %inputs/conv.mlir | not spattern-opt --pass-pipeline=lower-to-linalg 2>&1 | FileCheck %s
// A channel order per group that does not match the groups (2 rows for 1 group) is refused, naming the pass.
// CHECK: error: pass lower-to-linalg failed: CompileError: lower-to-linalg: channel_order (2, 2) does not match 1 groups
