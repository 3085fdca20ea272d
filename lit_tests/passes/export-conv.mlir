// The torch-mlir export of a 3x3 conv + BatchNorm gives the pad + conv + per-channel generics import matches.
// RUN: spattern-opt --export-demo conv-bn | FileCheck %s
// CHECK: tensor.pad
// CHECK: linalg.conv_2d_nchw_fchw
// CHECK-SAME: tensor<8x4x3x3xf32>
// CHECK: linalg.generic
