/* ABI of the pattern-conv microkernel. Its magic number, SPK_TILE, SPK_CHUNK and the header slots SPK_H_* are
 * generated from spattern/microkernels/microkernel_abi.py into abi_slots.h (kernels/gen_headers.py).
 *
 * One call computes one workgroup: one image n, one group of spatial tiles, one chunk of <= SPK_CHUNK filters.
 * Buffers (each passed as an MLIR memref<?xT> descriptor: base, aligned, offset, size, stride):
 *   in  f32 [N, C, Hp, Wp]  input, already padded (top/left by the conv's padding; bottom/right with enough
 *                           extra zeros that whole tiles may be read past the last row)
 *   w   f32 [4*K + F]       FKW: 4 weights per kept kernel in tap order, kernels ordered (chunk, channel,
 *                           pattern, filter); then the bias of every filter
 *   tab i32                 header (SPK_H_*, abi_slots.h) followed by the index tables it points at
 *   res f32 [N, F, Ho, Wo]  the residual, added before the ReLU when SPK_H_RESIDUAL is set (else any buffer:
 *                           not read); or [N, F, RES_HP, RES_WP], a padded residual (header)
 *   out f32 [N, F, Ho, Wo]  or [N, F, OUT_HP, OUT_WP] for a padded output (header)
 * Tables (offsets into tab, from the header):
 *   fidx[K]            chunk-local filter index (0..SPK_CHUNK-1) of each kernel, one byte each (4 per table
 *                      word, in memory order): a quarter of the bytes of an i32 index next to 16 bytes of weights
 *   run_start[nch*C+1] runs of (chunk, channel) i: run_start[i] .. run_start[i+1]-1
 *   run_pid[R]         global pattern id of a run (all its kernels share it)
 *   run_k[R+1]         kernels of run r: run_k[r] .. run_k[r+1]-1
 *   chunk_fil[nch*SPK_CHUNK] global filter of each chunk-local filter; chunk_nf[nch]: filters in the chunk
 * Header slots (abi_slots.h): the shapes (N, C, F, HP, WP, HO, WO), STRIDE, RELU, the work split (NCHUNKS, NTILES,
 * NGROUPS, TILES_PER_GROUP), K kept kernels, the tables' offsets (OFF_*), TILE and CHUNK as the packer saw them;
 * RESIDUAL 1: add res (before the ReLU, if RELU). A padded output (OUT_WP != 0): out is [N, F, OUT_HP, OUT_WP],
 * the outputs at (OUT_TOP, OUT_LEFT) and zeros around them, the next conv's padded input written in place of a
 * pad. A padded residual (RES_WP != 0): res is [N, F, RES_HP, RES_WP] with the Ho x Wo values at (RES_TOP,
 * RES_LEFT), another conv's padded output read in place of its interior. SPK_TILE: output positions per tile
 * (stride 1: flattened padded width; stride 2: flattened output); SPK_CHUNK: filters per chunk at most (the packer
 * uses 64 or 128: microkernel_abi.chunk_size), which sizes the accumulator buffer.
 * What the kernel checks (once per call; it traps on any failure, kernels/sp_check.h, and never returns with its
 * output untouched): the magic, SPK_TILE and SPK_CHUNK; stride 1 or 2, RELU and RESIDUAL 0 or 1; a geometry whose
 * windows and whole-tile reads fit the padded input (NTILES as the packer computes it); a work split that gives
 * every tile one group and the workgroup id a (n, group, chunk); tables inside tab (t_n words, the memref's
 * size); chunks of 1..SPK_CHUNK filters, F in all, each chunk's filters ascending and < F; per chunk, runs of at
 * least one kernel each, ascending, with pattern ids 0..SPK_NUM_PATTERNS-1 and fidx below the chunk's count;
 * buffers at least as large as the header's shapes say (in, w, out; res when RESIDUAL).
 */
#ifndef SPATTERN_PATTERN_CONV_H
#define SPATTERN_PATTERN_CONV_H

#include "abi_slots.h"

#endif
