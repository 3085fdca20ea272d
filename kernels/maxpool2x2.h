/* ABI of the 2x2 / stride-2 max-pool microkernel. Its magic number and the header slots SPM_H_* are generated
 * from spattern/microkernels/maxpool_abi.py into abi_slots.h (kernels/gen_headers.py).
 *
 * One image in NCHW, [C, H, W] -> [C, H / 2, W / 2] (floor: an odd last row or column is dropped, as torch's
 * MaxPool2d(2) does). Same five buffers as the other kernels (each an MLIR memref<?xT> descriptor: base, aligned,
 * offset, size, stride):
 *   in  f32 [C, H, W]     the input
 *   w   f32 [1]           unused (the ABI's weights slot)
 *   tab i32 [SPM_H_SIZE]  the header (SPM_H_*, abi_slots.h)
 *   res f32               unused
 *   out f32 [C, HO, WO]   or [C, OUT_HP, OUT_WP] for a padded output (header): the next pattern conv's padded
 *                         input, the zeros around the outputs written too
 * Header slots (abi_slots.h): C, H, W, HO, WO, CPG channels per workgroup; a padded output (OUT_WP != 0): out is
 * [C, OUT_HP, OUT_WP], the outputs at (OUT_TOP, OUT_LEFT).
 * Workgroup id = channel group: channels [wg * CPG, +CPG).
 * What the kernel checks (once per call; it traps on any failure, kernels/sp_check.h): the magic, HO = H / 2 and
 * WO = W / 2, CPG >= 1 and a workgroup id with channels, the output plane, and buffer sizes (in, out).
 */
#ifndef SPATTERN_MAXPOOL2X2_H
#define SPATTERN_MAXPOOL2X2_H

#include "abi_slots.h"

#endif
