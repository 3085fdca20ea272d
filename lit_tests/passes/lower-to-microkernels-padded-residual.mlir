// RUN: %python -m spattern.opt --pass-pipeline=lower-to-microkernels --stats %s 2>%t.stats | FileCheck %s
// RUN: FileCheck %s --check-prefix=STATS < %t.stats

// A ResNet block: the first conv's ReLU'd result feeds the second conv and is added to its result (then a ReLU).
// The first microkernel still writes the second one's padded input, and the second call reads its residual from
// that same padded buffer in place (its 4th operand: the padded tensor, not a copy of the interior).

// CHECK-DAG: func.func private @spattern_mk_0(tensor<1x2x{{[0-9]+}}x7xf32>, tensor<19xf32>, tensor<{{[0-9]+}}xi32>) -> tensor<1x3x[[HP:[0-9]+]]x7xf32>
// CHECK-DAG: func.func private @spattern_mk_1(tensor<1x3x[[HP]]x7xf32>, tensor<{{[0-9]+}}xf32>, tensor<{{[0-9]+}}xi32>, tensor<1x3x[[HP]]x7xf32>) -> tensor<1x3x5x5xf32>
// CHECK-LABEL: func.func @block
// CHECK: %[[Y:.*]] = call @spattern_mk_0(%{{.*}}, %{{.*}}, %{{.*}}) {spattern.padded_output = array<i64: 1, {{[0-9]+}}, 1, 1>}
// CHECK-NOT: tensor.extract_slice
// CHECK: %[[Z:.*]] = call @spattern_mk_1(%[[Y]], %{{.*}}, %{{.*}}, %[[Y]])
// CHECK-NOT: linalg.generic
// CHECK: return %[[Z]]
// STATS: "fused_residual": 1, "padded_outputs": 1

#map = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @block(%x: tensor<1x2x5x5xf32>) -> tensor<1x3x5x5xf32> {
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
  %w2 = arith.constant dense<[[1.0,2.0,3.0,4.0],[0.5,0.25,0.75,1.5],[1.0,-1.0,2.0,-2.0],[0.1,0.2,0.3,0.4]]> : tensor<4x4xf32>
  %b2 = arith.constant dense<[0.0, 1.0, -1.0]> : tensor<3xf32>
  %z = "sparse_pattern.conv2d"(%r, %w2, %b2) {library = dense<[[0,1,2,4],[4,6,7,8]]> : tensor<2x4xi32>, pattern_ids = dense<[[0,1,0],[1,0,1],[0,0,1]]> : tensor<3x3xi32>,
      kept = dense<[[1,0,0],[0,1,0],[0,1,1]]> : tensor<3x3xi8>, filter_block = 1 : i64, strides = array<i64: 1, 1>, padding = array<i64: 1, 1>}
      : (tensor<1x3x5x5xf32>, tensor<4x4xf32>, tensor<3xf32>) -> tensor<1x3x5x5xf32>
  %a = linalg.generic {indexing_maps = [#map, #map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%z, %r : tensor<1x3x5x5xf32>, tensor<1x3x5x5xf32>) outs(%e : tensor<1x3x5x5xf32>) {
  ^bb0(%p: f32, %q: f32, %out: f32):
    %s = arith.addf %p, %q : f32
    linalg.yield %s : f32
  } -> tensor<1x3x5x5xf32>
  %o = linalg.generic {indexing_maps = [#map, #map], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%a : tensor<1x3x5x5xf32>) outs(%e : tensor<1x3x5x5xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x3x5x5xf32>
  return %o : tensor<1x3x5x5xf32>
}
