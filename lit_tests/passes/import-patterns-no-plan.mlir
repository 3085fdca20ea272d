// RUN: not spattern-opt --pass-pipeline=import-patterns %inputs/dense.mlir 2>&1 | FileCheck %s
// CHECK: error: import-patterns needs a PatternPlan
