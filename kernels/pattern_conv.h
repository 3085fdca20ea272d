/* ABI of the pattern-conv microkernel, shared with spattern/microkernels/microkernel_abi.py (keep the two in step).
 *
 * One call computes one workgroup: one image n, one group of spatial tiles, one chunk of <= SPK_CHUNK filters.
 * Buffers (each passed as an MLIR memref<?xT> descriptor: base, aligned, offset, size, stride):
 *   in  f32 [N, C, Hp, Wp]  input, already padded (top/left by the conv's padding; bottom/right with enough
 *                           extra zeros that whole tiles may be read past the last row)
 *   w   f32 [4*K + F]       FKW: 4 weights per kept kernel in tap order, kernels ordered (chunk, channel,
 *                           pattern, filter); then the bias of every filter
 *   tab i32                 header (SPK_H_* below) followed by the index tables it points at
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

#define SPK_ABI_MAGIC 0x53504b33 /* "SPK3" */
#define SPK_TILE 96              /* output positions per tile (stride 1: flattened padded width; stride 2:
                                    flattened output) */
#define SPK_CHUNK 128            /* filters per chunk, at most (the packer uses 64 or 128: microkernel_abi.py
                                    chunk_size); the accumulator buffer is sized for it */

enum {
  SPK_H_MAGIC = 0,
  SPK_H_N,
  SPK_H_C,
  SPK_H_F,
  SPK_H_HP,
  SPK_H_WP,
  SPK_H_HO,
  SPK_H_WO,
  SPK_H_STRIDE,
  SPK_H_RELU,
  SPK_H_NCHUNKS,
  SPK_H_NTILES,
  SPK_H_NGROUPS,
  SPK_H_TILES_PER_GROUP,
  SPK_H_K,
  SPK_H_OFF_FIDX,
  SPK_H_OFF_RUN_START,
  SPK_H_OFF_RUN_PID,
  SPK_H_OFF_RUN_K,
  SPK_H_OFF_CHUNK_FIL,
  SPK_H_OFF_CHUNK_NF,
  SPK_H_TILE,
  SPK_H_CHUNK,
  SPK_H_RESIDUAL, /* 1: add res (before the ReLU, if SPK_H_RELU) */
  SPK_H_OUT_HP,   /* a padded output (OUT_WP != 0): out is [N, F, OUT_HP, OUT_WP], the outputs at (OUT_TOP, */
  SPK_H_OUT_WP,   /* OUT_LEFT) and zeros around them: the next conv's padded input, written in place of a pad */
  SPK_H_OUT_TOP,
  SPK_H_OUT_LEFT,
  SPK_H_RES_HP,   /* a padded residual (RES_WP != 0): res is [N, F, RES_HP, RES_WP] with the Ho x Wo values */
  SPK_H_RES_WP,   /* at (RES_TOP, RES_LEFT): another conv's padded output, read in place of its interior */
  SPK_H_RES_TOP,
  SPK_H_RES_LEFT,
  SPK_H_SIZE = 32
};

#endif
