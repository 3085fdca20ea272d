/* ABI of the 1x1-conv microkernel. Its magic number, SPG_BLOCK, SPG_FBLOCK, SPG_VBLOCK_MAX and the header slots
 * SPG_H_* are generated from spattern/microkernels/conv1x1_abi.py into abi_slots.h (kernels/gen_headers.py).
 *
 * A stride-1, unpadded 1x1 convolution over one image in NCHW is a matrix product, out[F, P] = W[F, C] x X[C, P]
 * with P = H * W positions. One call computes one workgroup: a group of filter blocks over a panel of positions.
 * Same five buffers as the pattern conv (each an MLIR memref<?xT> descriptor: base, aligned, offset, size, stride):
 *   in  f32 [C, P]        the input image
 *   w   f32 [FB*C*B + F]  the weights packed per block of B filters, [FB][C][B] (filters past F are zeros),
 *                         then the bias of every filter (a BatchNorm folded in); B = SPG_BLOCK (LAYOUT 0),
 *                         SPG_FBLOCK (LAYOUT 1) or the header's BLOCK (LAYOUT 2)
 *   tab i32 [SPG_H_SIZE]  the header (SPG_H_*, abi_slots.h)
 *   res f32 [F, P]        the residual, added before the ReLU when SPG_H_RESIDUAL is set (else not read)
 *   out f32 [F, P]        or [F, OUT_HP, OUT_WP] for a padded output (header)
 * LAYOUT 0 vectorizes over positions (microtiles of 8 filters x vectors of positions), LAYOUT 1 over filters
 * (microtiles of 32 filters x a few positions, for small images whose positions do not fill whole vectors),
 * LAYOUT 2 over filters too, for a single position (a Linear layer at batch 1): blocks of BLOCK filters (a
 * multiple of 16, at most SPG_VBLOCK_MAX, chosen per layer), each block's channel rows contiguous, so that the
 * kernel skips the rows of the channels whose input is zero.
 * Header slots (abi_slots.h): C, F, P positions of an H x W image, the layout's BLOCK and NBLOCKS, the work split
 * (BLOCKS_PER_GROUP, NPANELS, PANEL), RELU, RESIDUAL, LAYOUT; a padded output (OUT_WP != 0): out is
 * [F, OUT_HP, OUT_WP], the outputs at (OUT_TOP, OUT_LEFT) and zeros around them, the next pattern conv's padded
 * input written in place of a pad. SPG_BLOCK: filters per block, layout 0; SPG_FBLOCK: layout 1; layout 2 at
 * most SPG_VBLOCK_MAX (its accumulators: 4 KiB of stack).
 * Workgroup id = group * npanels + panel: filter blocks [group * blocks_per_group, +blocks_per_group) over
 * positions [panel * panel_len, +panel_len) (the last panel: to P). A padded output's zeros are written by the
 * workgroups whose panel holds the first (top rows, left column) or last (right column, bottom rows) position
 * of an image row.
 * What the kernel checks (once per call; it traps on any failure, kernels/sp_check.h, and never returns with its
 * output untouched): the magic; LAYOUT 0, 1 or 2 and its BLOCK (SPG_BLOCK, SPG_FBLOCK; layout 2: a multiple of 16
 * up to SPG_VBLOCK_MAX and P = 1); P = H * W; NBLOCKS = ceil(F / BLOCK); a work split whose panels fit in P and a
 * workgroup id inside it; buffers at least as large as the header says (in, w, out; res when RESIDUAL).
 */
#ifndef SPATTERN_CONV1X1_H
#define SPATTERN_CONV1X1_H

#include "abi_slots.h"

#endif
