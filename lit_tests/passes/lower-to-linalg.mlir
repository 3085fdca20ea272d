// RUN: spattern-opt --pass-pipeline=group-patterns,reuse-loads,lower-to-linalg %inputs/conv.mlir | FileCheck %s
// One group: pad, 5 tap slices, one concat into a [9, 16] matrix, one matmul of [2, 9] weights; no
// sparse_pattern op is left.
// CHECK-NOT: sparse_pattern.conv2d
// CHECK: func.func private @__spattern_conv_0
// CHECK: tensor.pad
// CHECK-COUNT-5: tensor.extract_slice {{.*}} : tensor<1x2x6x6xf32> to tensor<{{[12]}}x4x4xf32>
// CHECK: tensor.concat dim(0)
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<2x9xf32>, tensor<9x16xf32>)
// CHECK: tensor.expand_shape {{.*}} into tensor<1x2x4x4xf32>
// CHECK: call @__spattern_conv_0
