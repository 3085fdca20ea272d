// RUN: sed -e 's/strides = array<i64: 1, 1>/strides = array<i64: 2, 2>/' -e 's/-> tensor<1x2x4x4xf32>/-> tensor<1x2x2x2xf32>/g' -e 's/return %0 : tensor<1x2x4x4xf32>/return %0 : tensor<1x2x2x2xf32>/' %inputs/conv.mlir | spattern-opt --pass-pipeline=lower-to-linalg | FileCheck %s
// Stride 2: the padded input (4 rows of 3 columns per phase, one spare row) is split into its 2x2 phases, so
// tap (dy, dx) is phase (dy % 2, dx % 2) shifted by (dy / 2, dx / 2) and each row is still one window
// (2 output rows x 3 columns = 6 positions); groups default to the plan's two 1-filter blocks.
// CHECK: tensor.pad {{.*}} low[0, 0, 1, 1] high[0, 0, 3, 1]
// CHECK: to tensor<1x2x8x6xf32>
// CHECK: tensor.expand_shape {{.*}} into tensor<1x2x4x2x3x2xf32>
// CHECK: linalg.transpose ins(%{{.*}} : tensor<2x4x2x3x2xf32>) outs(%{{.*}} : tensor<2x2x2x4x3xf32>) permutation = [2, 4, 0, 1, 3]
// CHECK: tensor.collapse_shape {{.*}} into tensor<96xf32>
// CHECK: linalg.generic {{.*}} ins(%{{.*}} : tensor<2x8xi32>) outs(%{{.*}} : tensor<2x8x6xf32>)
// CHECK: linalg.batch_matmul ins(%{{.*}}, %{{.*}} : tensor<2x1x8xf32>, tensor<2x8x6xf32>)
// CHECK: tensor.extract_slice {{.*}} : tensor<1x2x2x3xf32> to tensor<1x2x2x2xf32>
