// RUN: spattern-opt --pass-pipeline=pool-to-channels-last --stats %s 2>%t.stats | FileCheck %s
// RUN: FileCheck %s --check-prefix=STATS < %t.stats
// A max pool after a conv that IREE compiles itself (here through a per-channel scale, a ReLU and the -inf pad)
// becomes a call to a private function that transposes to NHWC, pools with linalg.pooling_nhwc_max (same window,
// strides, dilations and init) and transposes back. A pool of an NCHW value not made by a conv (a function
// argument here; in models, a microkernel conv's output) is not a candidate.

// CHECK-LABEL: func.func private @spattern_pool_nhwc_0
// CHECK-SAME: (%[[X:[^:]+]]: tensor<1x8x10x10xf32>, %[[WIN:[^:]+]]: tensor<3x3xf32>, %[[INIT:[^:]+]]: tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
// CHECK: %[[XH:.+]] = linalg.transpose ins(%[[X]] : tensor<1x8x10x10xf32>) outs(%{{.+}} : tensor<1x10x10x8xf32>) permutation = [0, 2, 3, 1]
// CHECK: %[[IH:.+]] = linalg.transpose ins(%[[INIT]] : tensor<1x8x4x4xf32>) outs(%{{.+}} : tensor<1x4x4x8xf32>) permutation = [0, 2, 3, 1]
// CHECK: %[[P:.+]] = linalg.pooling_nhwc_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
// CHECK-SAME: ins(%[[XH]], %[[WIN]] : tensor<1x10x10x8xf32>, tensor<3x3xf32>) outs(%[[IH]] : tensor<1x4x4x8xf32>)
// CHECK: %[[O:.+]] = linalg.transpose ins(%[[P]] : tensor<1x4x4x8xf32>) outs(%{{.+}} : tensor<1x8x4x4xf32>) permutation = [0, 3, 1, 2]
// CHECK: return %[[O]]
// CHECK-LABEL: func.func @after_conv
// CHECK-NOT: pooling_nchw_max
// CHECK: call @spattern_pool_nhwc_0(%padded, %{{.+}}, %{{.+}})
// CHECK-LABEL: func.func @nchw_input
// CHECK: linalg.pooling_nchw_max
// CHECK-NOT: call @spattern_pool_nhwc
// STATS: "pool-to-channels-last": {"rewritten": 1, "skipped": 0}

#map = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#chan = affine_map<(d0, d1, d2, d3) -> (d1, 0, 0)>
func.func @after_conv(%x: tensor<1x3x8x8xf32>, %w: tensor<8x3x1x1xf32>, %s: tensor<8x1x1xf32>) -> tensor<1x8x4x4xf32> {
  %zero = arith.constant 0.0 : f32
  %ninf = arith.constant 0xFF800000 : f32
  %e = tensor.empty() : tensor<1x8x8x8xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x8x8x8xf32>) -> tensor<1x8x8x8xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x, %w : tensor<1x3x8x8xf32>, tensor<8x3x1x1xf32>) outs(%f : tensor<1x8x8x8xf32>) -> tensor<1x8x8x8xf32>
  %bn = linalg.generic {indexing_maps = [#map, #chan, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%c, %s : tensor<1x8x8x8xf32>, tensor<8x1x1xf32>) outs(%e : tensor<1x8x8x8xf32>) {
  ^bb0(%in: f32, %sc: f32, %out: f32):
    %m = arith.mulf %in, %sc : f32
    linalg.yield %m : f32
  } -> tensor<1x8x8x8xf32>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%bn : tensor<1x8x8x8xf32>) outs(%e : tensor<1x8x8x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %cmp = arith.cmpf ugt, %in, %zero : f32
    %sel = arith.select %cmp, %in, %zero : f32
    linalg.yield %sel : f32
  } -> tensor<1x8x8x8xf32>
  %padded = tensor.pad %r low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index):
    tensor.yield %ninf : f32
  } : tensor<1x8x8x8xf32> to tensor<1x8x10x10xf32>
  %pe = tensor.empty() : tensor<1x8x4x4xf32>
  %pf = linalg.fill ins(%ninf : f32) outs(%pe : tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
  %win = tensor.empty() : tensor<3x3xf32>
  %p = linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
      ins(%padded, %win : tensor<1x8x10x10xf32>, tensor<3x3xf32>) outs(%pf : tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
  return %p : tensor<1x8x4x4xf32>
}

func.func @nchw_input(%x: tensor<1x8x8x8xf32>) -> tensor<1x8x4x4xf32> {
  %ninf = arith.constant 0xFF800000 : f32
  %pe = tensor.empty() : tensor<1x8x4x4xf32>
  %pf = linalg.fill ins(%ninf : f32) outs(%pe : tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
  %win = tensor.empty() : tensor<2x2xf32>
  %p = linalg.pooling_nchw_max {dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>}
      ins(%x, %win : tensor<1x8x8x8xf32>, tensor<2x2xf32>) outs(%pf : tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
  return %p : tensor<1x8x4x4xf32>
}
