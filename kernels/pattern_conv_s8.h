/* ABI of the int8 pattern-conv microkernel (packer: spattern/microkernels/pattern_s8_abi.py; its magic number,
 * SPQ_TILE, SPQ_CHUNK, SPQ_PREP_SLOTS and the header slots SPQ_H_* are generated into abi_slots.h).
 *
 * One call computes one workgroup: one image n, one group of spatial tiles, one chunk of <= SPQ_CHUNK filters.
 * Buffers (MLIR memref<?xT> descriptors: base, aligned, offset, size, stride; sizes in elements):
 *   in  u8  [N, C, Hp, Wp]  the input, padded with its zero point (real 0), with whole tiles readable past the last
 *                           row (spattern.microkernels.microkernel_abi.ConvGeometry.pads, as for fp32)
 *   w   i32 [K + 3F]        per kernel its 4 int8 weights in tap order as one word (byte j: tap j), kernels ordered
 *                           (chunk, channel block, chunk-local filter, channel); then per filter the int32 bias
 *                           (zero point folded in, qarith.fold_bias), the sum of its int8 weights (the SDOT
 *                           objects' correction for activations biased by -128) and its float32 multiplier M
 *   tab i32                 header (SPQ_H_*) and the tables it points at
 *   res u8  [N, F, Ho, Wo]  the residual (RESIDUAL 1; or a padded plane, RES_*), else any buffer
 *   out u8  [N, F, Ho, Wo]  or a padded plane (OUT_*) whose border is written with PAD_VALUE
 * Tables: chunk_fil[nch * SPQ_CHUNK] (global filter of each chunk-local filter), chunk_nf[nch];
 *   chunk_blk[nch + 1]: the channel blocks of chunk i are chunk_blk[i] .. chunk_blk[i + 1] - 1 (at least one);
 *   blk_slot[nblocks + 1]: the slots of block b are blk_slot[b] .. blk_slot[b + 1] - 1 (<= SPQ_PREP_SLOTS), each a
 *   (slot_ch, slot_pid) pair, channels ascending within a block; fk_start[nblocks * SPQ_CHUNK + 1]: the kernels
 *   of block b and chunk-local filter j are fk_start[b * SPQ_CHUNK + j] .. fk_start[b * SPQ_CHUNK + j + 1] - 1;
 *   kslot[K], one byte each: a kernel's slot, local to its block.
 * Arithmetic (spattern/qarith.py, bit for bit): acc = bias + sum(x_q * w_q) in int32;
 *   c = clamp(round_half_even(float32(acc) * M) + ZP_C, LO_C, HI_C); with RESIDUAL:
 *   y = clamp((((c - ZP_C) * ADD_MA + (r - ZP_R) * ADD_MB + 2^(ADD_SHIFT - 1)) >> ADD_SHIFT) + ZP_Y, LO_Y, HI_Y).
 * The kernel traps (sp_check.h) on a header, table or buffer it does not understand.
 */
#ifndef SPATTERN_PATTERN_CONV_S8_H
#define SPATTERN_PATTERN_CONV_S8_H

#include "abi_slots.h"

#endif
