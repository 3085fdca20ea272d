// RUN: sed -e 's/strides = array<i64: 1, 1>/strides = array<i64: 1, 2>/' -e 's/-> tensor<1x2x4x4xf32>/-> tensor<1x2x4x2xf32>/g' -e 's/return %0 : tensor<1x2x4x4xf32>/return %0 : tensor<1x2x4x2xf32>/' %inputs/conv.mlir | not spattern-opt --pass-pipeline=lower-to-linalg 2>&1 | FileCheck %s
// Unequal strides have no phase split here: refused, naming the pass and the strides.
// CHECK: error: pass lower-to-linalg failed: CompileError: lower-to-linalg: strides (1, 2) differ; only equal strides are supported
