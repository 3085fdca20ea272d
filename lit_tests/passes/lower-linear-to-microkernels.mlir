// RUN: spattern-opt --pass-pipeline=lower-linear-to-microkernels --stats %s 2>%t.stats | FileCheck %s
// RUN: FileCheck %s --check-prefix=STATS < %t.stats
// @linear_relu: torch-mlir's batch-1 Linear (matmul by the transposed constant weight onto zeros, then the bias
// add) and the ReLU after it become one call of the conv1x1 kernel over a 1x1 image: its weights packed in
// layout 2 ([N/16][K][16]: per input channel the 2 outputs' weights, then 14 zeros) followed by the bias, its
// header with blocks of 16 filters, layout 2 and the ReLU set; the input is expanded to [1, K, 1, 1] and the
// result collapsed back.
// @no_bias: a Linear without bias, its weight already [K, N]: zero bias, no ReLU. @weight_argument: the weight
// is not a constant: the matmul stays (skipped). @batch2: two rows: not a Linear this pass lowers (not counted).

// CHECK-DAG: func.func private @spattern_mk_0(tensor<1x3x1x1xf32>, tensor<50xf32>, tensor<24xi32>) -> tensor<1x2x1x1xf32> attributes {spattern.microkernel = {kernel = "conv1x1", workgroups = 1 : i64}}
// CHECK-LABEL: func.func @linear_relu
// CHECK-SAME: %[[X:[a-z0-9]+]]: tensor<1x3xf32>
// CHECK: %[[X4:.+]] = tensor.expand_shape %[[X]] {{\[}}[0], [1, 2, 3]] output_shape [1, 3, 1, 1] : tensor<1x3xf32> into tensor<1x3x1x1xf32>
// CHECK: %[[W:.+]] = arith.constant dense<[1.000000e+00, 4.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 2.000000e+00, 5.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 3.000000e+00, 6.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 0.000000e+00, 5.000000e-01, -5.000000e-01]> : tensor<50xf32>
// CHECK: %[[T:.+]] = arith.constant dense<[1397770034, 3, 2, 1, 16, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0]> : tensor<24xi32>
// CHECK: %[[Y:.+]] = call @spattern_mk_0(%[[X4]], %[[W]], %[[T]])
// CHECK: %[[Y2:.+]] = tensor.collapse_shape %[[Y]] {{\[}}[0], [1, 2, 3]] : tensor<1x2x1x1xf32> into tensor<1x2xf32>
// CHECK-NOT: linalg.
// CHECK: return %[[Y2]]
// CHECK-LABEL: func.func @no_bias
// CHECK: arith.constant dense<[1397770034, 3, 2, 1, 16, 1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0]>
// CHECK: call @spattern_mk_1(
// CHECK-NOT: linalg.
// CHECK: return
// CHECK-LABEL: func.func @weight_argument
// CHECK: linalg.matmul
// CHECK-LABEL: func.func @batch2
// CHECK: linalg.matmul
// STATS: "lower-linear-to-microkernels": {"linears": 2, "skipped": 1, "fused_relu": 1}

#id = affine_map<(d0, d1) -> (d0, d1)>
#out = affine_map<(d0, d1) -> (d1)>
func.func @linear_relu(%x: tensor<1x3xf32>) -> tensor<1x2xf32> {
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]> : tensor<2x3xf32>
  %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %et = tensor.empty() : tensor<3x2xf32>
  %wt = linalg.transpose ins(%w : tensor<2x3xf32>) outs(%et : tensor<3x2xf32>) permutation = [1, 0]
  %e = tensor.empty() : tensor<1x2xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<1x2xf32>) -> tensor<1x2xf32>
  %m = linalg.matmul ins(%x, %wt : tensor<1x3xf32>, tensor<3x2xf32>) outs(%z : tensor<1x2xf32>) -> tensor<1x2xf32>
  %a = linalg.generic {indexing_maps = [#id, #out, #id], iterator_types = ["parallel", "parallel"]}
      ins(%m, %b : tensor<1x2xf32>, tensor<2xf32>) outs(%e : tensor<1x2xf32>) {
  ^bb0(%in: f32, %bi: f32, %o: f32):
    %s = arith.addf %in, %bi : f32
    linalg.yield %s : f32
  } -> tensor<1x2xf32>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a : tensor<1x2xf32>) outs(%e : tensor<1x2xf32>) {
  ^bb0(%in: f32, %o: f32):
    %s = arith.maximumf %in, %zero : f32
    linalg.yield %s : f32
  } -> tensor<1x2xf32>
  return %r : tensor<1x2xf32>
}

func.func @no_bias(%x: tensor<1x3xf32>) -> tensor<1x2xf32> {
  %zero = arith.constant 0.0 : f32
  %wt = arith.constant dense<[[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]> : tensor<3x2xf32>
  %e = tensor.empty() : tensor<1x2xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<1x2xf32>) -> tensor<1x2xf32>
  %m = linalg.matmul ins(%x, %wt : tensor<1x3xf32>, tensor<3x2xf32>) outs(%z : tensor<1x2xf32>) -> tensor<1x2xf32>
  return %m : tensor<1x2xf32>
}

func.func @weight_argument(%x: tensor<1x3xf32>, %wt: tensor<3x2xf32>) -> tensor<1x2xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x2xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<1x2xf32>) -> tensor<1x2xf32>
  %m = linalg.matmul ins(%x, %wt : tensor<1x3xf32>, tensor<3x2xf32>) outs(%z : tensor<1x2xf32>) -> tensor<1x2xf32>
  return %m : tensor<1x2xf32>
}

func.func @batch2(%x: tensor<2x3xf32>) -> tensor<2x2xf32> {
  %zero = arith.constant 0.0 : f32
  %wt = arith.constant dense<[[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]> : tensor<3x2xf32>
  %e = tensor.empty() : tensor<2x2xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<2x2xf32>) -> tensor<2x2xf32>
  %m = linalg.matmul ins(%x, %wt : tensor<2x3xf32>, tensor<3x2xf32>) outs(%z : tensor<2x2xf32>) -> tensor<2x2xf32>
  return %m : tensor<2x2xf32>
}
