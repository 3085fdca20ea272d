// RUN: sed -e 's/outs(%z : /outs(%x : /' %inputs/dense.mlir | spattern-opt --pass-pipeline=import-patterns --plan %inputs/plan.json --stats 2>&1 | FileCheck %s
// A planned conv whose init is not a per-filter constant (here the function's input) stays a dense conv of its
// pruned weights, and the statistics count only the convs really rewritten: none.
// CHECK: {"import-patterns": {"imported": 0, "layers": []}}
// CHECK-NOT: sparse_pattern.conv2d
// CHECK: linalg.conv_2d_nchw_fchw
// CHECK-SAME: tensor<2x2x3x3xf32>
