// RUN: spattern-opt --pass-pipeline=group-patterns,reuse-loads,lower-to-linalg %inputs/conv.mlir | FileCheck %s
// One group: pad to 7 rows (one spare for the last window) of 6 columns, a flat view, one gather of the
// 9 (channel, tap) rows the group reads (channel 0: taps 1, 3, 4, 5, 7; channel 1: taps 3, 4, 5, 7), each a
// window of 4x6 = 24 positions starting at the table's offset, one batched matmul of [2, 9] weights, and the
// 2 junk columns of each output row cut off; no sparse_pattern op is left.
// CHECK-NOT: sparse_pattern.conv2d
// CHECK: func.func private @__spattern_conv_0(%{{.*}}: tensor<1x2x4x4xf32>, %{{.*}}: tensor<1x2x9xf32>, %{{.*}}: tensor<1x2xf32>)
// CHECK: tensor.pad {{.*}} low[0, 0, 1, 1] high[0, 0, 2, 1]
// CHECK: tensor<1x2x4x4xf32> to tensor<1x2x7x6xf32>
// CHECK: tensor.collapse_shape {{.*}} into tensor<84xf32>
// CHECK: arith.constant dense<{{\[\[}}1, 6, 7, 8, 13, 48, 49, 50, 55]]> : tensor<1x9xi32>
// CHECK: linalg.generic {{.*}} ins(%{{.*}} : tensor<1x9xi32>) outs(%{{.*}} : tensor<1x9x24xf32>)
// CHECK: tensor.extract %{{.*}}[%{{.*}}] : tensor<84xf32>
// CHECK: linalg.batch_matmul ins(%{{.*}}, %{{.*}} : tensor<1x2x9xf32>, tensor<1x9x24xf32>)
// CHECK: tensor.extract_slice {{.*}}[0, 0, 0, 0] [1, 2, 4, 4] [1, 1, 1, 1] : tensor<1x2x4x6xf32> to tensor<1x2x4x4xf32>
// CHECK: call @__spattern_conv_0
