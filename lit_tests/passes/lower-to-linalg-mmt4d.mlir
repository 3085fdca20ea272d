// RUN: spattern-opt --mmt4d-tile=16 --pass-pipeline=group-patterns,lower-to-linalg %inputs/conv.mlir | FileCheck %s
// CPU form (tile 16, as on AVX-512): the 24 positions round up to 2 column tiles of 16 (two more spare rows in
// the padded input keep the last window in bounds), the gather writes the mmt4d right-hand side
// [group, column tile, row, 16] directly, the weights arrive packed as [group, filter tile, row, 16, 1], and
// one linalg.batch_mmt4d runs; its tiles are transposed back to [filters, positions] and cut to the 2 filters.
// CHECK: func.func private @__spattern_conv_0(%{{.*}}: tensor<1x2x4x4xf32>, %{{.*}}: tensor<1x1x9x16x1xf32>, %{{.*}}: tensor<1x1x16xf32>)
// CHECK: tensor.pad {{.*}} low[0, 0, 1, 1] high[0, 0, 4, 1]
// CHECK: to tensor<1x2x9x6xf32>
// CHECK: arith.constant dense<{{\[\[}}1, 6, 7, 8, 13, 60, 61, 62, 67]]> : tensor<1x9xi32>
// CHECK: linalg.generic {{.*}} ins(%{{.*}} : tensor<1x9xi32>) outs(%{{.*}} : tensor<1x2x9x16xf32>)
// CHECK: tensor.expand_shape {{.*}} into tensor<1x2x9x16x1xf32>
// CHECK: linalg.batch_mmt4d ins(%{{.*}}, %{{.*}} : tensor<1x1x9x16x1xf32>, tensor<1x2x9x16x1xf32>) outs(%{{.*}} : tensor<1x1x2x16x16xf32>)
// CHECK: linalg.transpose {{.*}} permutation = [0, 1, 3, 2, 4]
// CHECK: tensor.extract_slice %{{.*}}[0, 0] [2, 24] [1, 1] : tensor<16x32xf32> to tensor<2x24xf32>
// CHECK: tensor.extract_slice {{.*}} : tensor<1x2x4x6xf32> to tensor<1x2x4x4xf32>
