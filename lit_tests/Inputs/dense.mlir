// A pruned 3x3 conv (its zeros follow Inputs/plan.json) followed by a per-channel scale and shift (a folded-in
// BatchNorm's form), then a 5x5 conv that no plan covers.
#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#ch = affine_map<(d0, d1, d2, d3) -> (d1, 0, 0)>
func.func @main(%x: tensor<1x2x4x4xf32>) -> tensor<1x1x4x4xf32> {
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<[[[[0.0,2.0,0.0],[4.0,5.0,6.0],[0.0,0.0,0.0]],[[0.0,0.0,0.0],[13.0,14.0,15.0],[0.0,17.0,0.0]]],[[[0.0,0.0,0.0],[22.0,23.0,24.0],[0.0,26.0,0.0]],[[0.0,0.0,0.0],[0.0,0.0,0.0],[0.0,0.0,0.0]]]]> : tensor<2x2x3x3xf32>
  %scale = arith.constant dense<[[[2.0]], [[3.0]]]> : tensor<2x1x1xf32>
  %shift = arith.constant dense<[[[0.5]], [[-0.5]]]> : tensor<2x1x1xf32>
  %w5 = arith.constant dense<1.0> : tensor<1x2x5x5xf32>
  %p = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%a: index, %b: index, %c: index, %d: index):
    tensor.yield %zero : f32
  } : tensor<1x2x4x4xf32> to tensor<1x2x6x6xf32>
  %e = tensor.empty() : tensor<1x2x4x4xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%p, %w : tensor<1x2x6x6xf32>, tensor<2x2x3x3xf32>) outs(%z : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %m = linalg.generic {indexing_maps = [#id, #ch, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%c, %scale : tensor<1x2x4x4xf32>, tensor<2x1x1xf32>) outs(%e : tensor<1x2x4x4xf32>) {
  ^bb0(%in: f32, %s: f32, %o: f32):
    %r = arith.mulf %in, %s : f32
    linalg.yield %r : f32
  } -> tensor<1x2x4x4xf32>
  %a = linalg.generic {indexing_maps = [#id, #ch, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%m, %shift : tensor<1x2x4x4xf32>, tensor<2x1x1xf32>) outs(%e : tensor<1x2x4x4xf32>) {
  ^bb0(%in: f32, %s: f32, %o: f32):
    %r = arith.addf %in, %s : f32
    linalg.yield %r : f32
  } -> tensor<1x2x4x4xf32>
  %p5 = tensor.pad %a low[0, 0, 2, 2] high[0, 0, 2, 2] {
  ^bb0(%a0: index, %b0: index, %c0: index, %d0: index):
    tensor.yield %zero : f32
  } : tensor<1x2x4x4xf32> to tensor<1x2x8x8xf32>
  %e1 = tensor.empty() : tensor<1x1x4x4xf32>
  %z1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32>
  %c5 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%p5, %w5 : tensor<1x2x8x8xf32>, tensor<1x2x5x5xf32>) outs(%z1 : tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32>
  return %c5 : tensor<1x1x4x4xf32>
}
