// RUN: spattern-opt --pass-pipeline=conv-1x1-to-matmul --stats %s 2>%t.stats | FileCheck %s
// RUN: FileCheck %s --check-prefix=STATS < %t.stats
// @after_pattern: a 1x1 conv reading a pattern conv's output through a ReLU becomes a call to a function doing
// W[3, 2] x X[2, 16] with linalg.matmul in NCHW; the 1x1 conv after it (reading the first one's result) is
// rewritten too. @alone: a 1x1 conv with no pattern conv around stays. @batch: connected but over 2 images: skipped.

// CHECK-DAG: func.func private @spattern_conv1x1_nchw_0(%[[X:.+]]: tensor<1x2x4x4xf32>, %[[W:.+]]: tensor<3x2x1x1xf32>, %[[I:.+]]: tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
// CHECK-DAG: tensor.collapse_shape %{{.+}} {{\[\[}}0, 1], [2, 3]] : tensor<1x2x4x4xf32> into tensor<2x16xf32>
// CHECK-DAG: tensor.collapse_shape %{{.+}} {{\[\[}}0], [1, 2, 3]] : tensor<3x2x1x1xf32> into tensor<3x2xf32>
// CHECK-DAG: linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<3x2xf32>, tensor<2x16xf32>) outs(%{{.+}} : tensor<3x16xf32>) -> tensor<3x16xf32>
// CHECK-DAG: tensor.expand_shape %{{.+}} {{\[\[}}0, 1], [2, 3]] output_shape [1, 3, 4, 4] : tensor<3x16xf32> into tensor<1x3x4x4xf32>
// CHECK-DAG: func.func private @spattern_conv1x1_nchw_1(%{{.+}}: tensor<1x3x4x4xf32>, %{{.+}}: tensor<2x3x1x1xf32>, %{{.+}}: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
// CHECK-LABEL: func.func @after_pattern
// CHECK: %[[S:.+]] = "sparse_pattern.conv2d"
// CHECK: %[[R:.+]] = linalg.generic {{.*}} ins(%[[S]]
// CHECK: %[[C0:.+]] = call @spattern_conv1x1_nchw_0(%[[R]], %{{.+}}, %{{.+}})
// CHECK: %[[C1:.+]] = call @spattern_conv1x1_nchw_1(%[[C0]], %{{.+}}, %{{.+}})
// CHECK-NOT: linalg.conv_2d_nchw_fchw
// CHECK: return %[[C1]]
// CHECK-LABEL: func.func @alone
// CHECK: linalg.conv_2d_nchw_fchw
// CHECK-LABEL: func.func @batch
// CHECK: linalg.conv_2d_nchw_fchw
// STATS: "conv-1x1-to-matmul": {"rewritten": 2, "skipped": 1}

#map = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @after_pattern(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [9.0, 10.0, 11.0, 12.0]]> : tensor<3x4xf32>
  %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %s = "sparse_pattern.conv2d"(%x, %w, %b) {library = dense<[[1, 3, 4, 5], [3, 4, 5, 7]]> : tensor<2x4xi32>, pattern_ids = dense<[[0, 1], [1, 0]]> : tensor<2x2xi32>, kept = dense<[[1, 1], [1, 0]]> : tensor<2x2xi8>, filter_block = 1 : i64, strides = array<i64: 1, 1>, padding = array<i64: 1, 1>} : (tensor<1x2x4x4xf32>, tensor<3x4xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %e = tensor.empty() : tensor<1x2x4x4xf32>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%s : tensor<1x2x4x4xf32>) outs(%e : tensor<1x2x4x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x2x4x4xf32>
  %w1 = arith.constant dense<1.0> : tensor<3x2x1x1xf32>
  %e1 = tensor.empty() : tensor<1x3x4x4xf32>
  %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %c1 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%r, %w1 : tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>) outs(%f1 : tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %w2 = arith.constant dense<2.0> : tensor<2x3x1x1xf32>
  %f2 = linalg.fill ins(%zero : f32) outs(%e : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %c2 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%c1, %w2 : tensor<1x3x4x4xf32>, tensor<2x3x1x1xf32>) outs(%f2 : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %c2 : tensor<1x2x4x4xf32>
}

func.func @alone(%x: tensor<1x2x4x4xf32>) -> tensor<1x3x4x4xf32> {
  %zero = arith.constant 0.0 : f32
  %w1 = arith.constant dense<1.0> : tensor<3x2x1x1xf32>
  %e1 = tensor.empty() : tensor<1x3x4x4xf32>
  %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  %c1 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x, %w1 : tensor<1x2x4x4xf32>, tensor<3x2x1x1xf32>) outs(%f1 : tensor<1x3x4x4xf32>) -> tensor<1x3x4x4xf32>
  return %c1 : tensor<1x3x4x4xf32>
}

func.func @batch(%x: tensor<2x2x4x4xf32>) -> tensor<2x3x4x4xf32> {
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [9.0, 10.0, 11.0, 12.0]]> : tensor<3x4xf32>
  %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %s = "sparse_pattern.conv2d"(%x, %w, %b) {library = dense<[[1, 3, 4, 5], [3, 4, 5, 7]]> : tensor<2x4xi32>, pattern_ids = dense<[[0, 1], [1, 0]]> : tensor<2x2xi32>, kept = dense<[[1, 1], [1, 0]]> : tensor<2x2xi8>, filter_block = 1 : i64, strides = array<i64: 1, 1>, padding = array<i64: 1, 1>} : (tensor<2x2x4x4xf32>, tensor<3x4xf32>, tensor<2xf32>) -> tensor<2x2x4x4xf32>
  %w1 = arith.constant dense<1.0> : tensor<3x2x1x1xf32>
  %e1 = tensor.empty() : tensor<2x3x4x4xf32>
  %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<2x3x4x4xf32>) -> tensor<2x3x4x4xf32>
  %c1 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%s, %w1 : tensor<2x2x4x4xf32>, tensor<3x2x1x1xf32>) outs(%f1 : tensor<2x3x4x4xf32>) -> tensor<2x3x4x4xf32>
  return %c1 : tensor<2x3x4x4xf32>
}
