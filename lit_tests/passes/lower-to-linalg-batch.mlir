// RUN: sed -e 's/1x2x4x4xf32/2x2x4x4xf32/g' %inputs/conv.mlir | spattern-opt --pass-pipeline=group-patterns,reuse-loads,lower-to-linalg | FileCheck %s
// Batch 2: the one-image body is kept, and a wrapper runs it per image and concatenates along the batch.
// CHECK-NOT: sparse_pattern.conv2d
// CHECK: func.func private @__spattern_conv_0(%{{.*}}: tensor<1x2x4x4xf32>
// CHECK: linalg.batch_matmul ins(%{{.*}}, %{{.*}} : tensor<1x2x9xf32>, tensor<1x9x24xf32>)
// CHECK: func.func private @__spattern_conv_0_batch(%{{.*}}: tensor<2x2x4x4xf32>
// CHECK: tensor.extract_slice %{{.*}}[0, 0, 0, 0] [1, 2, 4, 4]
// CHECK: call @__spattern_conv_0(
// CHECK: tensor.extract_slice %{{.*}}[1, 0, 0, 0] [1, 2, 4, 4]
// CHECK: call @__spattern_conv_0(
// CHECK: tensor.concat dim(0) {{.*}} -> tensor<2x2x4x4xf32>
// CHECK: call @__spattern_conv_0_batch(
