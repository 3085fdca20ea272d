// RUN: not spattern-opt --pass-pipeline=no-such-pass %inputs/conv.mlir 2>&1 | FileCheck %s
// CHECK: error: unknown pass 'no-such-pass'; known: import-patterns, filter-kernel-reorder
