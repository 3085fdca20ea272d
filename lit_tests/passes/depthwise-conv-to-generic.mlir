// RUN: spattern-opt --pass-pipeline=depthwise-conv-to-generic --stats %s 2>%t.stats | FileCheck %s
// RUN: FileCheck %s --check-prefix=STATS < %t.stats
// The NCHW depthwise conv becomes a generic whose loops follow the output (n, c, oh, ow, kh, kw): identity output
// map, strides and dilations folded into the input map (issue 7: IREE's SPIR-V path races on the permuted form).
// CHECK-DAG: #[[IN1:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2 + d4, d3 + d5)>
// CHECK-DAG: #[[IN2:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2 * 2 + d4 * 2, d3 * 2 + d5)>
// CHECK-DAG: #[[W:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d1, d4, d5)>
// CHECK-DAG: #[[OUT:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3)>
// CHECK-LABEL: func.func @main
// CHECK-NOT: linalg.depthwise_conv_2d_nchw_chw
// CHECK: %[[FILL:.+]] = linalg.fill
// CHECK: linalg.generic {indexing_maps = [#[[IN1]], #[[W]], #[[OUT]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]}
// CHECK-SAME: ins(%{{.+}}, %{{.+}} : tensor<1x4x10x10xf32>, tensor<4x3x3xf32>) outs(%[[FILL]] : tensor<1x4x8x8xf32>)
// CHECK: ^bb0(%[[X:.+]]: f32, %[[K:.+]]: f32, %[[ACC:.+]]: f32):
// CHECK-NEXT: %[[M:.+]] = arith.mulf %[[X]], %[[K]] : f32
// CHECK-NEXT: %[[S:.+]] = arith.addf %[[ACC]], %[[M]] : f32
// CHECK-NEXT: linalg.yield %[[S]] : f32
// CHECK: linalg.generic {indexing_maps = [#[[IN2]], #[[W]], #[[OUT]]]
// CHECK-SAME: outs(%{{.+}} : tensor<1x4x3x4xf32>)
// An integer conv of one element type gets muli/addi; a mixed-type one (i8 into i32) is left as it is.
// CHECK: linalg.generic {indexing_maps = [#[[IN1]], #[[W]], #[[OUT]]]
// CHECK: arith.muli
// CHECK-NEXT: arith.addi
// CHECK: linalg.depthwise_conv_2d_nchw_chw
// CHECK-SAME: tensor<1x4x10x10xi8>
// STATS: "depthwise-conv-to-generic": {"rewritten": 3, "skipped": 1}
func.func @main(%x: tensor<1x4x10x10xf32>, %w: tensor<4x3x3xf32>, %xi: tensor<1x4x10x10xi32>, %wi: tensor<4x3x3xi32>,
    %x8: tensor<1x4x10x10xi8>, %w8: tensor<4x3x3xi8>)
    -> (tensor<1x4x8x8xf32>, tensor<1x4x3x4xf32>, tensor<1x4x8x8xi32>, tensor<1x4x8x8xi32>) {
  %z = arith.constant 0.0 : f32
  %zi = arith.constant 0 : i32
  %e = tensor.empty() : tensor<1x4x8x8xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  %r = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
    ins(%x, %w : tensor<1x4x10x10xf32>, tensor<4x3x3xf32>) outs(%f : tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>
  %e2 = tensor.empty() : tensor<1x4x3x4xf32>
  %f2 = linalg.fill ins(%z : f32) outs(%e2 : tensor<1x4x3x4xf32>) -> tensor<1x4x3x4xf32>
  %r2 = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<[2, 1]> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
    ins(%x, %w : tensor<1x4x10x10xf32>, tensor<4x3x3xf32>) outs(%f2 : tensor<1x4x3x4xf32>) -> tensor<1x4x3x4xf32>
  %ei = tensor.empty() : tensor<1x4x8x8xi32>
  %fi = linalg.fill ins(%zi : i32) outs(%ei : tensor<1x4x8x8xi32>) -> tensor<1x4x8x8xi32>
  %ri = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
    ins(%xi, %wi : tensor<1x4x10x10xi32>, tensor<4x3x3xi32>) outs(%fi : tensor<1x4x8x8xi32>) -> tensor<1x4x8x8xi32>
  %r8 = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
    ins(%x8, %w8 : tensor<1x4x10x10xi8>, tensor<4x3x3xi8>) outs(%fi : tensor<1x4x8x8xi32>) -> tensor<1x4x8x8xi32>
  return %r, %r2, %ri, %r8 : tensor<1x4x8x8xf32>, tensor<1x4x3x4xf32>, tensor<1x4x8x8xi32>, tensor<1x4x8x8xi32>
}
