// The schedule tables' shapes and ranges are dialect invariants (their mutual agreement is lower-to-microkernels'
// PlanError, lower-to-microkernels-bad-table.mlir): chunk sizes that do not add up to the chunk table,
// RUN: sed -e 's/tensor<2x2xi8>,/tensor<2x2xi8>, chunk_filters = dense<[0, 1]> : tensor<2xi32>, chunk_sizes = dense<[1, 2]> : tensor<2xi32>,/' %inputs/conv.mlir | not spattern-opt --verify-only 2>&1 | FileCheck %s --check-prefix=CHUNKS
// CHUNKS: error: sparse_pattern.conv2d {{.*}}chunk_sizes [1, 2] must be >= 1 and add up to the 2 entries
// one chunk table without the other,
// RUN: sed -e 's/tensor<2x2xi8>,/tensor<2x2xi8>, chunk_sizes = dense<[2]> : tensor<1xi32>,/' %inputs/conv.mlir | not spattern-opt --verify-only 2>&1 | FileCheck %s --check-prefix=HALF
// HALF: error: sparse_pattern.conv2d {{.*}}chunk_filters and chunk_sizes come together
// a run past the 3 kept kernels,
// RUN: sed -e 's/tensor<2x2xi8>,/tensor<2x2xi8>, runs = dense<[[0, 0, 4]]> : tensor<1x3xi32>,/' %inputs/conv.mlir | not spattern-opt --verify-only 2>&1 | FileCheck %s --check-prefix=RUNS
// RUNS: error: sparse_pattern.conv2d {{.*}}runs reach past the 3 kept kernels
// marks that are not one per run,
// RUN: sed -e 's/tensor<2x2xi8>,/tensor<2x2xi8>, runs = dense<[[0, 0, 3]]> : tensor<1x3xi32>, run_taps = dense<[58, 0]> : tensor<2xi32>,/' %inputs/conv.mlir | not spattern-opt --verify-only 2>&1 | FileCheck %s --check-prefix=MARKS
// MARKS: error: sparse_pattern.conv2d {{.*}}run_taps must hold one mark per run (1)
// and a filter byte table of the wrong length.
// RUN: sed -e 's/tensor<2x2xi8>,/tensor<2x2xi8>, kernel_filter = dense<[0, 1]> : tensor<2xi32>,/' %inputs/conv.mlir | not spattern-opt --verify-only 2>&1 | FileCheck %s --check-prefix=FIDX
// FIDX: error: sparse_pattern.conv2d {{.*}}kernel_filter must be one byte (0..255) per kept kernel (3)
// A complete, consistent set verifies.
// RUN: sed -e 's/tensor<2x2xi8>,/tensor<2x2xi8>, chunk_filters = dense<[0, 1]> : tensor<2xi32>, chunk_sizes = dense<[2]> : tensor<1xi32>, runs = dense<[[0, 0, 3]]> : tensor<1x3xi32>, run_taps = dense<[0]> : tensor<1xi32>, kernel_filter = dense<[0, 1, 0]> : tensor<3xi32>,/' %inputs/conv.mlir | spattern-opt --verify-only 2>&1 | FileCheck %s --check-prefix=OK
// OK-NOT: error
