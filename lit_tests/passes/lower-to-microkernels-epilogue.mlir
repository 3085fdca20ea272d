// RUN: %python -m spattern.opt --pass-pipeline=lower-to-microkernels %s | FileCheck %s

// The conv's epilogue goes into the kernel's write-out. @residual_relu: conv + residual, then a ReLU (a ResNet
// block's end) becomes one call whose 4th operand is the residual, with no linalg.generic left. @relu: a ReLU as
// torch-mlir writes it (cmpf ugt + select) is fused too; the call keeps 3 operands. @two_users: the conv result
// also feeds an add, so the ReLU and the add stay.

// CHECK-DAG: func.func private @spattern_mk_0(tensor<1x2x{{[0-9]+}}x7xf32>, tensor<19xf32>, tensor<{{[0-9]+}}xi32>, tensor<1x3x5x5xf32>) -> tensor<1x3x5x5xf32>
// CHECK-DAG: func.func private @spattern_mk_1(tensor<1x2x{{[0-9]+}}x7xf32>, tensor<19xf32>, tensor<{{[0-9]+}}xi32>) -> tensor<1x3x5x5xf32>
// CHECK-DAG: func.func private @spattern_mk_2(tensor<1x2x{{[0-9]+}}x7xf32>, tensor<19xf32>, tensor<{{[0-9]+}}xi32>) -> tensor<1x3x5x5xf32>

// CHECK-LABEL: func.func @residual_relu
// CHECK-NOT: linalg.generic
// CHECK: %[[P:.*]] = call @spattern_mk_0_pad(%arg0)
// CHECK: %[[Y:.*]] = call @spattern_mk_0(%[[P]], %{{.*}}, %{{.*}}, %arg1)
// CHECK-NOT: linalg.generic
// CHECK: return %[[Y]]
// CHECK-LABEL: func.func @relu
// CHECK-NOT: linalg.generic
// CHECK: %[[Y:.*]] = call @spattern_mk_1(%{{[^,]*}}, %{{[^,]*}}, %{{[^,)]*}})
// CHECK-NOT: linalg.generic
// CHECK: return %[[Y]]
// CHECK-LABEL: func.func @two_users
// CHECK: %[[Y:.*]] = call @spattern_mk_2(%{{[^,]*}}, %{{[^,]*}}, %{{[^,)]*}})
// CHECK: linalg.generic
// CHECK-SAME: ins(%[[Y]] :
// CHECK: linalg.generic
// CHECK-SAME: ins(%{{.*}}, %[[Y]] :

#map = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @residual_relu(%x: tensor<1x2x5x5xf32>, %res: tensor<1x3x5x5xf32>) -> tensor<1x3x5x5xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x3x5x5xf32>
  %w = arith.constant dense<[[0.0,0.125,0.25,0.375],[0.5,0.625,0.75,0.875],[1.0,1.125,1.25,1.375],[1.5,1.625,1.75,1.875]]> : tensor<4x4xf32>
  %b = arith.constant dense<[0.5, -1.0, 2.0]> : tensor<3xf32>
  %y = "sparse_pattern.conv2d"(%x, %w, %b) {library = dense<[[0,1,2,4],[4,6,7,8]]> : tensor<2x4xi32>, pattern_ids = dense<[[0,1],[1,0],[0,0]]> : tensor<3x2xi32>,
      kept = dense<[[1,1],[1,0],[0,1]]> : tensor<3x2xi8>, filter_block = 1 : i64, strides = array<i64: 1, 1>, padding = array<i64: 1, 1>}
      : (tensor<1x2x5x5xf32>, tensor<4x4xf32>, tensor<3xf32>) -> tensor<1x3x5x5xf32>
  %a = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%y, %res : tensor<1x3x5x5xf32>, tensor<1x3x5x5xf32>) outs(%e : tensor<1x3x5x5xf32>) {
  ^bb0(%in: f32, %in2: f32, %out: f32):
    %s = arith.addf %in, %in2 : f32
    linalg.yield %s : f32
  } -> tensor<1x3x5x5xf32>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%a : tensor<1x3x5x5xf32>) outs(%e : tensor<1x3x5x5xf32>) {
  ^bb0(%in: f32, %out: f32):
    %c = arith.cmpf ugt, %in, %zero : f32
    %s = arith.select %c, %in, %zero : f32
    linalg.yield %s : f32
  } -> tensor<1x3x5x5xf32>
  return %r : tensor<1x3x5x5xf32>
}

func.func @relu(%x: tensor<1x2x5x5xf32>) -> tensor<1x3x5x5xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x3x5x5xf32>
  %w = arith.constant dense<[[0.0,0.125,0.25,0.375],[0.5,0.625,0.75,0.875],[1.0,1.125,1.25,1.375],[1.5,1.625,1.75,1.875]]> : tensor<4x4xf32>
  %b = arith.constant dense<[0.5, -1.0, 2.0]> : tensor<3xf32>
  %y = "sparse_pattern.conv2d"(%x, %w, %b) {library = dense<[[0,1,2,4],[4,6,7,8]]> : tensor<2x4xi32>, pattern_ids = dense<[[0,1],[1,0],[0,0]]> : tensor<3x2xi32>,
      kept = dense<[[1,1],[1,0],[0,1]]> : tensor<3x2xi8>, filter_block = 1 : i64, strides = array<i64: 1, 1>, padding = array<i64: 1, 1>}
      : (tensor<1x2x5x5xf32>, tensor<4x4xf32>, tensor<3xf32>) -> tensor<1x3x5x5xf32>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%y : tensor<1x3x5x5xf32>) outs(%e : tensor<1x3x5x5xf32>) {
  ^bb0(%in: f32, %out: f32):
    %c = arith.cmpf ugt, %in, %zero : f32
    %s = arith.select %c, %in, %zero : f32
    linalg.yield %s : f32
  } -> tensor<1x3x5x5xf32>
  return %r : tensor<1x3x5x5xf32>
}

func.func @two_users(%x: tensor<1x2x5x5xf32>) -> tensor<1x3x5x5xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x3x5x5xf32>
  %w = arith.constant dense<[[0.0,0.125,0.25,0.375],[0.5,0.625,0.75,0.875],[1.0,1.125,1.25,1.375],[1.5,1.625,1.75,1.875]]> : tensor<4x4xf32>
  %b = arith.constant dense<[0.5, -1.0, 2.0]> : tensor<3xf32>
  %y = "sparse_pattern.conv2d"(%x, %w, %b) {library = dense<[[0,1,2,4],[4,6,7,8]]> : tensor<2x4xi32>, pattern_ids = dense<[[0,1],[1,0],[0,0]]> : tensor<3x2xi32>,
      kept = dense<[[1,1],[1,0],[0,1]]> : tensor<3x2xi8>, filter_block = 1 : i64, strides = array<i64: 1, 1>, padding = array<i64: 1, 1>}
      : (tensor<1x2x5x5xf32>, tensor<4x4xf32>, tensor<3xf32>) -> tensor<1x3x5x5xf32>
  %r = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%y : tensor<1x3x5x5xf32>) outs(%e : tensor<1x3x5x5xf32>) {
  ^bb0(%in: f32, %out: f32):
    %c = arith.cmpf ugt, %in, %zero : f32
    %s = arith.select %c, %in, %zero : f32
    linalg.yield %s : f32
  } -> tensor<1x3x5x5xf32>
  %a = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%r, %y : tensor<1x3x5x5xf32>, tensor<1x3x5x5xf32>) outs(%e : tensor<1x3x5x5xf32>) {
  ^bb0(%in: f32, %in2: f32, %out: f32):
    %s = arith.addf %in, %in2 : f32
    linalg.yield %s : f32
  } -> tensor<1x3x5x5xf32>
  return %a : tensor<1x3x5x5xf32>
}
