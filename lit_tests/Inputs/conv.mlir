// A 2-filter, 2-channel sparse conv: K = 3 kept kernels (block 1: channels 0, 1; block 2: channel 0).
func.func @f(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %w = arith.constant dense<[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [9.0, 10.0, 11.0, 12.0]]> : tensor<3x4xf32>
  %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %0 = "sparse_pattern.conv2d"(%x, %w, %b) {library = dense<[[1, 3, 4, 5], [3, 4, 5, 7]]> : tensor<2x4xi32>, pattern_ids = dense<[[0, 1], [1, 0]]> : tensor<2x2xi32>, kept = dense<[[1, 1], [1, 0]]> : tensor<2x2xi8>, filter_block = 1 : i64, strides = array<i64: 1, 1>, padding = array<i64: 1, 1>} : (tensor<1x2x4x4xf32>, tensor<3x4xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  return %0 : tensor<1x2x4x4xf32>
}
