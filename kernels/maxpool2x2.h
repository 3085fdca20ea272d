/* ABI of the 2x2 / stride-2 max-pool microkernel, shared with spattern/microkernels/maxpool_abi.py (keep the two in step).
 *
 * One image in NCHW, [C, H, W] -> [C, H / 2, W / 2] (floor: an odd last row or column is dropped, as torch's
 * MaxPool2d(2) does). Same five buffers as the other kernels (each an MLIR memref<?xT> descriptor: base, aligned,
 * offset, size, stride):
 *   in  f32 [C, H, W]     the input
 *   w   f32 [1]           unused (the ABI's weights slot)
 *   tab i32 [SPM_H_SIZE]  the header below
 *   res f32               unused
 *   out f32 [C, HO, WO]   or [C, OUT_HP, OUT_WP] for a padded output (header): the next pattern conv's padded
 *                         input, the zeros around the outputs written too
 * Workgroup id = channel group: channels [wg * CPG, +CPG).
 * What the kernel checks (once per call; it traps on any failure, kernels/sp_check.h): the magic, HO = H / 2 and
 * WO = W / 2, CPG >= 1 and a workgroup id with channels, the output plane, and buffer sizes (in, out).
 */
#ifndef SPATTERN_MAXPOOL2X2_H
#define SPATTERN_MAXPOOL2X2_H

#define SPM_ABI_MAGIC 0x53504d31 /* "SPM1" */

enum {
  SPM_H_MAGIC = 0,
  SPM_H_C,
  SPM_H_H,
  SPM_H_W,
  SPM_H_HO,
  SPM_H_WO,
  SPM_H_CPG, /* channels per workgroup */
  SPM_H_OUT_HP, /* a padded output (OUT_WP != 0): out is [C, OUT_HP, OUT_WP], the outputs at (OUT_TOP, OUT_LEFT) */
  SPM_H_OUT_WP,
  SPM_H_OUT_TOP,
  SPM_H_OUT_LEFT,
  SPM_H_SIZE = 16
};

#endif
