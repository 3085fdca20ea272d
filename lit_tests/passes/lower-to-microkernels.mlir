// RUN: %python -m spattern.opt --pass-pipeline=lower-to-microkernels %s | FileCheck %s

// A 3-filter, 2-channel pattern conv (4 kept kernels) becomes a pad + a call to a microkernel declaration whose
// operands are the packed FKW weights (4 per kept kernel + 3 bias) and the i32 index table.

// CHECK: func.func private @spattern_mk_0(tensor<1x2x{{[0-9]+}}x7xf32>, tensor<19xf32>, tensor<{{[0-9]+}}xi32>) -> tensor<1x3x5x5xf32>
// CHECK-SAME: spattern.microkernel = {workgroups = {{[0-9]+}} : i64}
// CHECK: func.func private @spattern_mk_0_pad
// CHECK: tensor.pad %{{.*}} low[0, 0, 1, 1] high[0, 0, {{[0-9]+}}, 1]
// CHECK: func.func @main
// CHECK-NOT: sparse_pattern.conv2d
// CHECK: %[[P:.*]] = call @spattern_mk_0_pad(%arg0)
// CHECK: %[[W:.*]] = arith.constant dense<{{.*}}> : tensor<19xf32>
// CHECK: %[[T:.*]] = arith.constant dense<{{.*}}> : tensor<{{[0-9]+}}xi32>
// CHECK: call @spattern_mk_0(%[[P]], %[[W]], %[[T]])
func.func @main(%x: tensor<1x2x5x5xf32>) -> tensor<1x3x5x5xf32> {
  %w = arith.constant dense<[[0.0,0.125,0.25,0.375],[0.5,0.625,0.75,0.875],[1.0,1.125,1.25,1.375],[1.5,1.625,1.75,1.875]]> : tensor<4x4xf32>
  %b = arith.constant dense<[0.5, -1.0, 2.0]> : tensor<3xf32>
  %y = "sparse_pattern.conv2d"(%x, %w, %b) {library = dense<[[0,1,2,4],[4,6,7,8]]> : tensor<2x4xi32>, pattern_ids = dense<[[0,1],[1,0],[0,0]]> : tensor<3x2xi32>,
      kept = dense<[[1,1],[1,0],[0,1]]> : tensor<3x2xi8>, filter_block = 1 : i64, strides = array<i64: 1, 1>, padding = array<i64: 1, 1>}
      : (tensor<1x2x5x5xf32>, tensor<4x4xf32>, tensor<3xf32>) -> tensor<1x3x5x5xf32>
  return %y : tensor<1x3x5x5xf32>
}
