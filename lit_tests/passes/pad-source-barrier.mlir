// RUN: spattern-opt --pass-pipeline=pad-source-barrier --stats %s 2>%t.stats | FileCheck %s
// RUN: spattern-opt --pass-pipeline=pad-source-barrier,pad-source-barrier %s | FileCheck %s --check-prefix=TWICE
// RUN: FileCheck %s --check-prefix=STATS < %t.stats
// A width pad of 2 (or 6) into rows of whole vec4s gets its source behind IREE's barrier (issue 19: IREE's SPIR-V
// codegen stores such an interior 2 floats off); odd pads, rows that are not whole vec4s, height-only pads and
// pads of 4 are left as they are.
// CHECK-LABEL: func.func @main
// CHECK: %[[R:.+]] = linalg.generic
// CHECK: %[[B:.+]] = "util.optimization_barrier"(%[[R]]) : (tensor<1x4x16x16xf32>) -> tensor<1x4x16x16xf32>
// CHECK-NEXT: tensor.pad %[[B]] low[0, 0, 2, 2] high[0, 0, 2, 2]
// CHECK: %[[B6:.+]] = "util.optimization_barrier"(%[[R]])
// CHECK-NEXT: tensor.pad %[[B6]] low[0, 0, 1, 6] high[0, 0, 1, 2]
// CHECK-NOT: util.optimization_barrier
// CHECK: return
// TWICE-COUNT-2: util.optimization_barrier
// TWICE-NOT: util.optimization_barrier
// STATS: "pad-source-barrier": {"rewritten": 2, "skipped": 0}
#id = affine_map<(a, b, c, d) -> (a, b, c, d)>
func.func @main(%x: tensor<1x4x16x16xf32>)
    -> (tensor<1x4x20x20xf32>, tensor<1x4x18x24xf32>, tensor<1x4x18x18xf32>, tensor<1x4x22x22xf32>,
        tensor<1x4x20x16xf32>, tensor<1x4x18x18xf32>, tensor<1x4x16x24xf32>) {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x4x16x16xf32>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%x : tensor<1x4x16x16xf32>) outs(%e : tensor<1x4x16x16xf32>) {
  ^bb0(%in: f32, %out: f32):
    %m = arith.maximumf %in, %z : f32
    linalg.yield %m : f32
  } -> tensor<1x4x16x16xf32>
  // isolated: low 2 into 20 floats a row
  %p2 = tensor.pad %r low[0, 0, 2, 2] high[0, 0, 2, 2] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %z : f32
  } : tensor<1x4x16x16xf32> to tensor<1x4x20x20xf32>
  // isolated: low 6 into 24
  %p6 = tensor.pad %r low[0, 0, 1, 6] high[0, 0, 1, 2] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %z : f32
  } : tensor<1x4x16x16xf32> to tensor<1x4x18x24xf32>
  // left: low 1 (scalar stores)
  %p1 = tensor.pad %r low[0, 0, 1, 1] high[0, 0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %z : f32
  } : tensor<1x4x16x16xf32> to tensor<1x4x18x18xf32>
  // left: rows of 22 floats are not whole vec4s
  %p3 = tensor.pad %r low[0, 0, 3, 3] high[0, 0, 3, 3] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %z : f32
  } : tensor<1x4x16x16xf32> to tensor<1x4x22x22xf32>
  // left: the height alone
  %ph = tensor.pad %r low[0, 0, 2, 0] high[0, 0, 2, 0] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %z : f32
  } : tensor<1x4x16x16xf32> to tensor<1x4x20x16xf32>
  // left: low 2, but into rows of 18 floats
  %p18 = tensor.pad %r low[0, 0, 1, 2] high[0, 0, 1, 0] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %z : f32
  } : tensor<1x4x16x16xf32> to tensor<1x4x18x18xf32>
  // left: low 4, a whole vec4
  %p4 = tensor.pad %r low[0, 0, 0, 4] high[0, 0, 0, 4] {
  ^bb0(%i: index, %j: index, %k: index, %l: index):
    tensor.yield %z : f32
  } : tensor<1x4x16x16xf32> to tensor<1x4x16x24xf32>
  return %p2, %p6, %p1, %p3, %ph, %p18, %p4
      : tensor<1x4x20x20xf32>, tensor<1x4x18x24xf32>, tensor<1x4x18x18xf32>, tensor<1x4x22x22xf32>,
        tensor<1x4x20x16xf32>, tensor<1x4x18x18xf32>, tensor<1x4x16x24xf32>
}
