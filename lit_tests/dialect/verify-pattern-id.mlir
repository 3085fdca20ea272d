// RUN: sed -e 's/\[\[0, 1\], \[1, 0\]\]/[[0, 1], [2, 0]]/' %inputs/conv.mlir | not spattern-opt --verify-only 2>&1 | FileCheck %s
// CHECK: error: sparse_pattern.conv2d {{.*}}pattern id 2 out of range: the library has 2 entries
