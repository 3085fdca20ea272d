// A weight outside the plan's patterns (tap 0 of filter 0, channel 0) is a PlanError that names the layer.
// RUN: sed -e 's/\[\[\[\[0.0,2.0/[[[[9.0,2.0/' %inputs/dense.mlir | not spattern-opt --pass-pipeline=import-patterns --plan %inputs/plan.json 2>&1 | FileCheck %s
// CHECK: error: import-patterns: plan layer 'conv' {{.*}} 1 non-zero weights lie outside the plan's patterns
