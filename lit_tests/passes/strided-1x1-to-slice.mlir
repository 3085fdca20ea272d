// RUN: spattern-opt --pass-pipeline=strided-1x1-to-slice --stats %s 2>%t.stats | FileCheck %s
// RUN: FileCheck %s --check-prefix=STATS < %t.stats
// A strided 1x1 conv becomes a subsampling of its input (expand_shape [N, C, Ho, sh, Wo, sw] + a unit-stride slice
// taking element 0 of each stride group) and the same conv with strides 1 (IREE 3.13 makes that one a matmul; the
// strided form takes a slow path on CPU). A 3x3 stride-2 conv and a stride-1 1x1 conv are left alone.
// CHECK-LABEL: func.func @main
// CHECK-SAME: (%[[X:[^:]+]]: tensor<1x16x32x32xf32>, %[[W:[^:]+]]: tensor<32x16x1x1xf32>, %{{[^:]+}}: tensor<32x16x3x3xf32>, %[[Y:[^:]+]]: tensor<2x4x7x8xf32>
// CHECK: %[[FILL:.+]] = linalg.fill
// CHECK: %[[E:.+]] = tensor.expand_shape %[[X]] {{\[}}[0], [1], [2, 3], [4, 5]] output_shape [1, 16, 16, 2, 16, 2] : tensor<1x16x32x32xf32> into tensor<1x16x16x2x16x2xf32>
// CHECK-NEXT: %[[S:.+]] = tensor.extract_slice %[[E]][0, 0, 0, 0, 0, 0] [1, 16, 16, 1, 16, 1] [1, 1, 1, 1, 1, 1] : tensor<1x16x16x2x16x2xf32> to tensor<1x16x16x16xf32>
// CHECK-NEXT: linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
// CHECK-SAME: ins(%[[S]], %[[W]] : tensor<1x16x16x16xf32>, tensor<32x16x1x1xf32>) outs(%[[FILL]] : tensor<1x32x16x16xf32>)
// Unequal strides (3, 2) on a padded input: 2x4x9x10 -> 2x4x3x5, no cut or pad needed.
// CHECK: %[[P:.+]] = tensor.pad
// CHECK: %[[E2:.+]] = tensor.expand_shape %[[P]] {{.*}} output_shape [2, 4, 3, 3, 5, 2]
// CHECK-NEXT: %[[S2:.+]] = tensor.extract_slice %[[E2]][0, 0, 0, 0, 0, 0] [2, 4, 3, 1, 5, 1]
// CHECK-NEXT: linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
// CHECK-SAME: ins(%[[S2]], %{{.+}} : tensor<2x4x3x5xf32>, tensor<8x4x1x1xf32>)
// Odd height 7, stride 2 -> 4 rows: zero-padded at the bottom to 8 (row 7 is never read).
// CHECK: %[[P3:.+]] = tensor.pad %[[Y]] low[0, 0, 0, 0] high[0, 0, 1, 0]
// CHECK: } : tensor<2x4x7x8xf32> to tensor<2x4x8x8xf32>
// CHECK-NEXT: %[[E3:.+]] = tensor.expand_shape %[[P3]] {{.*}} output_shape [2, 4, 4, 2, 4, 2]
// CHECK-NEXT: %[[S3:.+]] = tensor.extract_slice %[[E3]]
// CHECK-NEXT: linalg.conv_2d_nchw_fchw {{.*}} strides = dense<1> : vector<2xi64>} ins(%[[S3]], {{.*}} outs(%{{.+}} : tensor<2x8x4x4xf32>)
// An output smaller than the input allows (2x8x3x3 from 7x8, stride 2): the input is cut to 6x6 first.
// CHECK: %[[C4:.+]] = tensor.extract_slice %[[Y]][0, 0, 0, 0] [2, 4, 6, 6] [1, 1, 1, 1]
// CHECK-NEXT: %[[E4:.+]] = tensor.expand_shape %[[C4]] {{.*}} output_shape [2, 4, 3, 2, 3, 2]
// CHECK-NEXT: %[[S4:.+]] = tensor.extract_slice %[[E4]]
// CHECK-NEXT: linalg.conv_2d_nchw_fchw {{.*}} strides = dense<1> : vector<2xi64>} ins(%[[S4]], {{.*}} outs(%{{.+}} : tensor<2x8x3x3xf32>)
// Left alone: 3x3 stride 2, and 1x1 stride 1.
// CHECK-NOT: tensor.extract_slice
// CHECK: linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
// CHECK-SAME: ins(%[[X]], %{{.+}} : tensor<1x16x32x32xf32>, tensor<32x16x3x3xf32>)
// CHECK-NOT: tensor.extract_slice
// CHECK: linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
// CHECK-SAME: ins(%[[X]], %[[W]] : tensor<1x16x32x32xf32>, tensor<32x16x1x1xf32>) outs(%{{.+}} : tensor<1x32x32x32xf32>)
// STATS: "strided-1x1-to-slice": {"rewritten": 4, "skipped": 0}
func.func @main(%x: tensor<1x16x32x32xf32>, %w: tensor<32x16x1x1xf32>, %w3: tensor<32x16x3x3xf32>,
    %y: tensor<2x4x7x8xf32>, %wy: tensor<8x4x1x1xf32>)
    -> (tensor<1x32x16x16xf32>, tensor<2x8x3x5xf32>, tensor<2x8x4x4xf32>, tensor<2x8x3x3xf32>, tensor<1x32x15x15xf32>,
        tensor<1x32x32x32xf32>) {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x32x16x16xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<1x32x16x16xf32>) -> tensor<1x32x16x16xf32>
  %r = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
    ins(%x, %w : tensor<1x16x32x32xf32>, tensor<32x16x1x1xf32>) outs(%f : tensor<1x32x16x16xf32>) -> tensor<1x32x16x16xf32>
  %p = tensor.pad %y low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%a: index, %b: index, %c: index, %d: index):
    tensor.yield %z : f32
  } : tensor<2x4x7x8xf32> to tensor<2x4x9x10xf32>
  %ey = tensor.empty() : tensor<2x8x3x5xf32>
  %fy = linalg.fill ins(%z : f32) outs(%ey : tensor<2x8x3x5xf32>) -> tensor<2x8x3x5xf32>
  %ry = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<[3, 2]> : vector<2xi64>}
    ins(%p, %wy : tensor<2x4x9x10xf32>, tensor<8x4x1x1xf32>) outs(%fy : tensor<2x8x3x5xf32>) -> tensor<2x8x3x5xf32>
  %eo = tensor.empty() : tensor<2x8x4x4xf32>
  %fo = linalg.fill ins(%z : f32) outs(%eo : tensor<2x8x4x4xf32>) -> tensor<2x8x4x4xf32>
  %ro = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
    ins(%y, %wy : tensor<2x4x7x8xf32>, tensor<8x4x1x1xf32>) outs(%fo : tensor<2x8x4x4xf32>) -> tensor<2x8x4x4xf32>
  %ec = tensor.empty() : tensor<2x8x3x3xf32>
  %fc = linalg.fill ins(%z : f32) outs(%ec : tensor<2x8x3x3xf32>) -> tensor<2x8x3x3xf32>
  %rc = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
    ins(%y, %wy : tensor<2x4x7x8xf32>, tensor<8x4x1x1xf32>) outs(%fc : tensor<2x8x3x3xf32>) -> tensor<2x8x3x3xf32>
  %e3 = tensor.empty() : tensor<1x32x15x15xf32>
  %f3 = linalg.fill ins(%z : f32) outs(%e3 : tensor<1x32x15x15xf32>) -> tensor<1x32x15x15xf32>
  %r3 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
    ins(%x, %w3 : tensor<1x16x32x32xf32>, tensor<32x16x3x3xf32>) outs(%f3 : tensor<1x32x15x15xf32>) -> tensor<1x32x15x15xf32>
  %e1 = tensor.empty() : tensor<1x32x32x32xf32>
  %f1 = linalg.fill ins(%z : f32) outs(%e1 : tensor<1x32x32x32xf32>) -> tensor<1x32x32x32xf32>
  %r1 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
    ins(%x, %w : tensor<1x16x32x32xf32>, tensor<32x16x1x1xf32>) outs(%f1 : tensor<1x32x32x32xf32>) -> tensor<1x32x32x32xf32>
  return %r, %ry, %ro, %rc, %r3, %r1 : tensor<1x32x16x16xf32>, tensor<2x8x3x5xf32>, tensor<2x8x4x4xf32>, tensor<2x8x3x3xf32>,
    tensor<1x32x15x15xf32>, tensor<1x32x32x32xf32>
}
