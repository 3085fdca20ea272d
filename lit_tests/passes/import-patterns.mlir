// RUN: spattern-opt --pass-pipeline=import-patterns --plan %inputs/plan.json %inputs/dense.mlir | FileCheck %s
// The covered 3x3 conv and its per-channel scale (x2, x3) and shift (+0.5, -0.5) become one sparse conv with the
// 3 kept kernels' 4 weights each, scaled per filter; the 5x5 conv stays dense.
// CHECK: arith.constant dense<{{\[\[}}4.000000e+00, 8.000000e+00, 1.000000e+01, 1.200000e+01], [2.600000e+01, 2.800000e+01, 3.000000e+01, 3.400000e+01], [6.600000e+01, 6.900000e+01, 7.200000e+01, 7.800000e+01]]> : tensor<3x4xf32>
// CHECK: arith.constant dense<[5.000000e-01, -5.000000e-01]> : tensor<2xf32>
// CHECK: "sparse_pattern.conv2d"
// CHECK-SAME: layer = "conv"
// CHECK-NOT: linalg.generic
// CHECK: linalg.conv_2d_nchw_fchw
// CHECK-SAME: tensor<1x2x5x5xf32>
