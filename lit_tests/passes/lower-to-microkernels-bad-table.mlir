// A hand-edited table the kernel cannot follow is an error naming it, not a crash: a run that spans two
// patterns (kernels 0 and 1 of channel 0 have patterns 0 and 1), marked to load its taps once.
// RUN: sed -e 's/tensor<2x2xi8>,/tensor<2x2xi8>, runs = dense<[[0, 0, 2], [2, 1, 1]]> : tensor<2x3xi32>, run_taps = dense<[58, 184]> : tensor<2xi32>,/' %inputs/conv.mlir | not spattern-opt --pass-pipeline=filter-kernel-reorder,lower-to-microkernels 2>&1 | FileCheck %s
// CHECK: error: runs: run 0 [0, {{[0-9]+}}, 2] holds kernels of another (chunk, channel) or pattern

// A chunk table that leaves out a filter.
// RUN: sed -e 's/tensor<2x2xi8>,/tensor<2x2xi8>, chunk_filters = dense<[0]> : tensor<1xi32>, chunk_sizes = dense<1> : tensor<1xi32>,/' %inputs/conv.mlir | not spattern-opt --pass-pipeline=lower-to-microkernels 2>&1 | FileCheck %s --check-prefix=CHUNKS
// CHUNKS: error: chunk_filters: filters [1] are in no chunk
