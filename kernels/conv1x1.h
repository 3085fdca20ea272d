/* ABI of the 1x1-conv microkernel, shared with spattern/microkernels/microkernel_abi.py (keep the two in step).
 *
 * A stride-1, unpadded 1x1 convolution over one image in NCHW is a matrix product, out[F, P] = W[F, C] x X[C, P]
 * with P = H * W positions. One call computes one workgroup: a group of filter blocks over a panel of positions.
 * Same five buffers as the pattern conv (each an MLIR memref<?xT> descriptor: base, aligned, offset, size, stride):
 *   in  f32 [C, P]        the input image
 *   w   f32 [FB*C*B + F]  the weights packed per block of B filters, [FB][C][B] (filters past F are zeros),
 *                         then the bias of every filter (a BatchNorm folded in); B = SPG_BLOCK (LAYOUT 0),
 *                         SPG_FBLOCK (LAYOUT 1) or the header's BLOCK (LAYOUT 2)
 *   tab i32 [SPG_H_SIZE]  the header below
 *   res f32 [F, P]        the residual, added before the ReLU when SPG_H_RESIDUAL is set (else not read)
 *   out f32 [F, P]        or [F, OUT_HP, OUT_WP] for a padded output (header)
 * LAYOUT 0 vectorizes over positions (microtiles of 8 filters x vectors of positions), LAYOUT 1 over filters
 * (microtiles of 32 filters x a few positions, for small images whose positions do not fill whole vectors),
 * LAYOUT 2 over filters too, for a single position (a Linear layer at batch 1): blocks of BLOCK filters (a
 * multiple of 16, at most SPG_VBLOCK_MAX, chosen per layer), each block's channel rows contiguous, so that the
 * kernel skips the rows of the channels whose input is zero.
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

#define SPG_ABI_MAGIC 0x53504732 /* "SPG2" */
#define SPG_BLOCK 8              /* filters per block: the weights' packing, LAYOUT 0 */
#ifndef SPG_FBLOCK
#define SPG_FBLOCK 32 /* filters per block, LAYOUT 1 */
#endif
#define SPG_VBLOCK_MAX 1024 /* filters per block, LAYOUT 2: at most this (its accumulators: 4 KiB of stack) */

enum {
  SPG_H_MAGIC = 0,
  SPG_H_C,
  SPG_H_F,
  SPG_H_P,
  SPG_H_BLOCK,
  SPG_H_NBLOCKS,
  SPG_H_BLOCKS_PER_GROUP,
  SPG_H_NPANELS,
  SPG_H_PANEL,
  SPG_H_RELU,
  SPG_H_RESIDUAL,
  SPG_H_H,      /* the image is H x W (P = H * W) */
  SPG_H_W,
  SPG_H_OUT_HP, /* a padded output (OUT_WP != 0): out is [F, OUT_HP, OUT_WP], the outputs at (OUT_TOP, */
  SPG_H_OUT_WP, /* OUT_LEFT) and zeros around them: the next pattern conv's padded input, written in place */
  SPG_H_OUT_TOP, /* of a pad */
  SPG_H_OUT_LEFT,
  SPG_H_LAYOUT, /* 0: vectors over positions; 1: vectors over filters; 2: one position, zero inputs skipped */
  SPG_H_SIZE = 24
};

#endif
