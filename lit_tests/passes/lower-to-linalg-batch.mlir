// RUN: sed -e 's/1x2x4x4xf32/2x2x4x4xf32/g' %inputs/conv.mlir | not spattern-opt --pass-pipeline=lower-to-linalg 2>&1 | FileCheck %s
// CHECK: error: pass lower-to-linalg failed: CompileError: lower-to-linalg: batch 2 is not supported yet
