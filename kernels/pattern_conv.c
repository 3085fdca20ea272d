/* Pattern-conv microkernel: a 3x3 convolution whose kernels each keep 4 weights in one of 56 shapes.
 *
 * Why it is fast (PatDNN's scheme): the loop order is tile -> chunk of <= 128 filters -> input channel -> the
 * chunk's kernels on that channel, pre-sorted by pattern. For each channel the 9 shifted input vectors of the
 * tile are loaded once (load redundancy elimination): each run of same-pattern kernels loads its 4 tap rows
 * into registers and every kernel of the run reuses them, and the rows stay in L1 for the next runs; each
 * pattern has its own loop with its 4 taps hard-coded (SPK_PATTERNS), so a kernel costs 4 FMAs per vector
 * and no branch. Accumulators of the chunk live in a stack buffer (in L1 for 64 filters; 128-filter chunks,
 * 57 KiB, spill to L2 but make runs twice as long, which pays: see filter_kernel_reorder.chunk_size).
 *
 * What bounds it: the accumulator load + store per 4 FMAs (the 512-bit stores are the wall, not the FMAs or the
 * loads), and each run's setup, mostly its cache-line-split tap loads (a run costs about one kernel). It runs at
 * about 100-150 GFLOP/s of useful work per AVX-512 core (bench/microkernels.py), half the FMA peak. The
 * output-stationary order, channel pairs, aligned tap copies, all 9 taps in registers and the other variants
 * tried were slower; their figures, and the tuning rounds behind the blocking below (128-filter chunks for
 * >= 256 filters, one pass of just enough vectors for short tiles), are in bench/results/microkernels-tuning.txt.
 *
 * Write-out (spk_write_out): act(acc + bias (+ residual)), the fused epilogue of lower-to-microkernels, into
 * the output or, for a conv whose only user is another pattern conv, straight into that conv's padded input
 * with the zeros around it (no pad copy between the two).
 *
 * Portable C with clang vector extensions: one source for AVX-512 (16 lanes), AVX2 (8) and NEON (4); the ISA is
 * chosen by the compile flags. Freestanding: no libc call (no memset/memcpy idioms), nothing but this symbol
 * exported. Layout and tables: pattern_conv.h.
 */
#include <stddef.h>
#include <stdint.h>

#include "padded_plane.h"
#include "pattern_conv.h"
#include "patterns.h"
#include "simd.h"
#include "sp_check.h"

/* VPS: vectors per sub-tile. A run loads its pattern's 3 off-centre tap rows (3*VPS vectors; the centre tap,
 * in every candidate, is loaded once per channel) into registers and reuses them for every kernel of the run; VPS is as large as the register file allows so that each kernel's
 * fixed costs (4 weight broadcasts, accumulator load/store, index) are spread over 4*VPS FMAs. */
#if defined(__AVX512F__)
#define VPS 6 /* 32 zmm: 24 taps + 4 broadcast weights + 1-2 accumulators (one vector at a time) */
#elif defined(__AVX2__)
#define VPS 2 /* 16 ymm: 8 taps + 2 accumulators + weights */
#elif defined(__ARM_NEON) || defined(__aarch64__)
/* 32 q registers: 24 taps (6 of them the hoisted centre) + 6 accumulators + 1 weight vector = 31, no spill (the
 * disassembly saves only d8-d14, once per tile). 6 vectors, not 4: llvm-mca neoverse-n1 10.59 -> 15.07 cycles per
 * kernel for 1.5x the FMAs (76% -> 80% of the FMA peak), cortex-a55 42% -> 55%, and each run's setup is spread
 * over 6 vectors (bench/results/arm-model-tuning.txt). With 4 scalar weight registers, 6 spilled. */
#define VPS 6
#else
#define VPS 1
#endif
#define SW (VW * VPS) /* sub-tile width in positions */
/* NEON (VPS 6, 24 vectors a tile): a short tile's last pass covers only the vectors left (spk_pass). The x86
 * objects keep their passes as measured (AVX-512 never needs it: 6 vectors are a whole tile). */
#ifndef SPK_TAIL_PASS
#if defined(__aarch64__)
#define SPK_TAIL_PASS 1
#else
#define SPK_TAIL_PASS 0
#endif
#endif
/* Software prefetch of the input rows this many channels ahead (a channel's tap loads would otherwise stall
 * its first kernels: the out-of-order window never reaches the next channel's loads). */
#ifndef SPK_PF_AHEAD
#define SPK_PF_AHEAD 2
#endif
#ifndef SPK_PF_OUT
#define SPK_PF_OUT 1
#endif
#ifndef SPK_HOIST_CENTER
#define SPK_HOIST_CENTER 1
#endif
/* Accumulator row stride: a tile plus one vector, so rows of nearby filters never sit 4 KiB apart (a load
 * 4K-aliasing an in-flight store to another filter's row would wait for it). */
#ifndef ACC_STRIDE
#define ACC_STRIDE (SPK_TILE + 16)
#endif

#if SPK_TILE % SW != 0
#error "SPK_TILE must be a multiple of the sub-tile width"
#endif

typedef struct {
  int C, F, Hp, Wp, Ho, Wo, stride, relu, nchunks, ntiles, tpg;
  const float *res; /* the residual [F, rh, rw] of this image (the Ho x Wo values at (rtop, rleft)), or NULL */
  sp_plane rplane; /* the residual's planes: Ho x Wo values, or another conv's padded output */
  sp_plane oplane; /* output planes, the Ho x Wo outputs in them; padded: the zeros around them (the next conv's
                      padding) are written too */
  const float *w;
  const float *bias;
  const uint8_t *fidx;
  const int32_t *run_start, *run_pid, *run_k, *chunk_fil, *chunk_nf;
} spk_layer;

/* A kernel's 4 weights w0..w3. NEON: one 16-byte load, each weight a lane of it (fmla by element), where
 * scalar loads made clang issue 3 loads, one of them a broadcast (ld1r) that also takes a vector pipe: llvm-mca
 * on neoverse-n1, bench/results/arm-model-tuning.txt. x86: scalars (broadcast FMAs). */
#if defined(__aarch64__)
#define SPK_WEIGHTS(wk)                                         \
  const vf wv = LD(wk);                                         \
  const float w0 = wv[0], w1 = wv[1], w2 = wv[2], w3 = wv[3]
/* The run's weights through a pointer stepped by 4 floats (a post-incremented load), not w + 4 * k, which clang
 * computed per kernel with a sign extension (sbfiz) and an add: -0.45 cycles per kernel in the model. */
#define SPK_WK_INIT(k0) const float *wnext = w + 4 * (size_t)(k0)
#define SPK_WK(k) (wnext += 4, wnext - 4)
#else
#define SPK_WK_INIT(k0) (void)0
#define SPK_WK(k) (w + 4 * (k))
#define SPK_WEIGHTS(wk)                                         \
  const float *wk_ = (wk);                                      \
  const float w0 = wk_[0], w1 = wk_[1], w2 = wk_[2], w3 = wk_[3]
#endif

/* Accumulate one chunk's kernels on channel c into acc[f_local * SPK_TILE + pos], given the 9 tap rows. */
static inline __attribute__((always_inline)) void spk_channel(const spk_layer *L, int chunk, int c,
                                                             const float *rw0, const float *rw1,
                                                             const float *rw2, const int dxs,
                                                             const int NV, const int len,
                                                             float *restrict acc) {
  /* Tap t = 3*dy + dx of position p is at row dy, column dx*dxs + p: row pointers live in registers and the
   * column offsets are constants in every hard-coded pattern loop (dxs is a constant at each call). */
#define TAP(t) (((t) / 3 == 0 ? rw0 : (t) / 3 == 1 ? rw1 : rw2) + ((t) % 3) * dxs)
  const int i = chunk * L->C + c;
  const int r0 = L->run_start[i], r1 = L->run_start[i + 1];
  if (r0 == r1) return;
  const uint8_t *restrict fidx = L->fidx;
  const float *restrict w = L->w;
  /* NV vectors per pass (a constant at each call: VPS, or VPS/2 for a tile's short tail), passes up to len. */
  for (int s = 0; s < len; s += NV * VW) {
    float *restrict as = acc + s;
#if SPK_HOIST_CENTER
    /* Every candidate pattern keeps the centre tap (4): its vectors are loaded once per pass, not per run. */
    vf x4[VPS];
    _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; ++v) x4[v] = LD(TAP(4) + s + v * VW);
#define TAPV(t, v) ((t) == 4 ? x4[v] : LD(TAP(t) + s + (v) * VW))
#else
#define TAPV(t, v) LD(TAP(t) + s + (v) * VW)
#endif
    for (int r = r0; r < r1; ++r) {
      const int k0 = L->run_k[r], k1 = L->run_k[r + 1];
      switch (L->run_pid[r]) {
#define SPK_CASE(id, a, b, cc, d)                                                                    \
  case id: {                                                                                        \
    vf xa[VPS], xb[VPS], xc[VPS], xd[VPS];                                                          \
    _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; ++v) {                               \
      xa[v] = TAPV(a, v);                                                               \
      xb[v] = TAPV(b, v);                                                               \
      xc[v] = TAPV(cc, v);                                                              \
      xd[v] = TAPV(d, v);                                                               \
    }                                                                                               \
    SPK_WK_INIT(k0);                                                                                \
    for (int k = k0; k < k1; ++k) {                                                                 \
      float *ap = as + fidx[k] * ACC_STRIDE;                                                          \
      SPK_WEIGHTS(SPK_WK(k));                                                                       \
      _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; ++v) {                             \
        ST(ap + v * VW, LD(ap + v * VW) + xa[v] * w0 + xb[v] * w1 + xc[v] * w2 + xd[v] * w3);       \
      }                                                                                             \
    }                                                                                               \
  } break;
        SPK_PATTERNS(SPK_CASE)
#undef SPK_CASE
        default: /* spk_check_chunk has refused it already; kept so that no id is ever skipped */
          __builtin_trap();
      }
    }
  }
#undef TAPV
#undef TAP
}

/* A tile's channel pass over its first len positions. Whole tiles: VPS-vector passes. A short tile (a small
 * image's only tile, or the last one) gets one pass of just enough vectors when that is fewer than VPS, so little
 * is computed past its end: 7x7 (63 positions over the padded width) computes 64 instead of 96, 14x14's last
 * tile 32 instead of 48. One copy of the pattern loops per vector count (the branch is per channel and
 * predictable). */
static inline __attribute__((always_inline)) void spk_pass(const spk_layer *L, int chunk, int c,
                                                          const float *r0, const float *r1, const float *r2,
                                                          const int dxs, int len, float *restrict acc) {
  int nv = (len + VW - 1) / VW;
#if SPK_TAIL_PASS
  /* A tile whose vectors are not a multiple of VPS: whole passes, then one pass of just the vectors left, so a
   * 6-vector pass computes no more than the tile's last vector (7x7: 16 vectors, not 18). */
  if (nv > VPS && nv % VPS) {
    const int full = nv / VPS * VPS * VW;
    spk_channel(L, chunk, c, r0, r1, r2, dxs, VPS, full, acc);
    r0 += full, r1 += full, r2 += full, acc += full, len -= full, nv %= VPS;
  }
#endif
  if (nv >= VPS) spk_channel(L, chunk, c, r0, r1, r2, dxs, VPS, len, acc);
#define SPK_NV(k) else if (VPS > (k) && nv == (k)) spk_channel(L, chunk, c, r0, r1, r2, dxs, (k), len, acc);
  SPK_NV(1) SPK_NV(2) SPK_NV(3) SPK_NV(4) SPK_NV(5) SPK_NV(6) SPK_NV(7)
#undef SPK_NV
}

static inline vf spk_vact(vf v, vf b, int relu) {
  v += b;
  if (relu) v = (vf)((vi)v & (vi)(v > (vf){0}));
  return v;
}

/* dst[0..n) = act(src[0..n) + b (+ res[0..n) when res is not NULL)): whole vectors, then one vector overlapping
 * the last (same values written twice) when n >= VW, else scalars. */
static inline void spk_store(float *restrict dst, const float *restrict src, const float *restrict res, int n,
                             float b, int relu) {
  const vf bv = b - (vf){0};
#define SPK_SUM(i) (res ? LD(src + (i)) + LD(res + (i)) : LD(src + (i)))
  int i = 0;
  for (; i + VW <= n; i += VW) ST(dst + i, spk_vact(SPK_SUM(i), bv, relu));
  if (i == n) return;
  if (n >= VW) {
    ST(dst + n - VW, spk_vact(SPK_SUM(n - VW), bv, relu));
    return;
  }
#undef SPK_SUM
  for (; i < n; ++i) {
    const float v = src[i] + b + (res ? res[i] : 0.0f);
    dst[i] = (relu && v < 0.0f) ? 0.0f : v;
  }
}

/* A tile's output segments (runs of one output row): accumulator offset, offset in the residual's plane
 * ([Ho, Wo], or padded), offset in the output plane, length; and the zero spans of a padded output plane that the
 * tile owns, so every element of it is written by exactly one workgroup: a row's left padding by the segment
 * that starts the row, its right padding by the one that ends it, the rows above the first output row and
 * below the last by the segments that start and end the image. */
typedef struct {
  int ns, nz;
  int sa[SPK_TILE], so[SPK_TILE], sp[SPK_TILE], sn[SPK_TILE];
  int zo[4 * SPK_TILE], zn[4 * SPK_TILE];
} spk_segs;

static inline void spk_add_zero(spk_segs *S, int o, int n) {
  if (n > 0) S->zo[S->nz] = o, S->zn[S->nz] = n, ++S->nz;
}

static void spk_add_seg(const spk_layer *L, spk_segs *S, int a, int y, int x, int n) {
  const int ow = L->oplane.w, row = (y + L->oplane.top) * ow;
  S->sa[S->ns] = a, S->so[S->ns] = (y + L->rplane.top) * L->rplane.w + L->rplane.left + x;
  S->sp[S->ns] = row + L->oplane.left + x;
  S->sn[S->ns] = n, ++S->ns;
  if (!L->oplane.pad) return;
  if (x == 0) {
    if (y == 0) spk_add_zero(S, 0, L->oplane.top * ow);
    spk_add_zero(S, row, L->oplane.left);
  }
  if (x + n == L->Wo) {
    spk_add_zero(S, row + L->oplane.left + L->Wo, ow - L->oplane.left - L->Wo);
    if (y == L->Ho - 1) spk_add_zero(S, row + ow, (L->oplane.h - L->oplane.top - L->Ho) * ow);
  }
}

/* Prefetch (for writing) the output lines a tile will store: big layers' outputs are not in cache, and 64
 * planes of read-for-ownership misses at write-out time would stall on the store buffer. */
static void spk_prefetch_out(const spk_layer *L, const spk_segs *S, float *out, int chunk) {
#if SPK_PF_OUT
  const int nf = L->chunk_nf[chunk];
  for (int j = 0; j < nf; ++j) {
    const char *of = (const char *)(out + (size_t)L->chunk_fil[chunk * SPK_CHUNK + j] * L->oplane.h * L->oplane.w);
    for (int i = 0; i < S->ns; ++i)
      for (int o = S->sp[i] * 4; o < (S->sp[i] + S->sn[i]) * 4 + 63; o += 64) __builtin_prefetch(of + o, 1, 2);
  }
#else
  (void)L, (void)S, (void)out, (void)chunk;
#endif
}

/* out = act(acc + bias (+ residual)) for every filter of the chunk, plus the padded output's zero spans. */
static void spk_write_out(const spk_layer *L, const spk_segs *S, float *out, int chunk, const float *acc) {
  const int nf = L->chunk_nf[chunk], relu = L->relu;
  for (int j = 0; j < nf; ++j) {
    const int f = L->chunk_fil[chunk * SPK_CHUNK + j];
    const float b = L->bias[f];
    float *of = out + (size_t)f * L->oplane.h * L->oplane.w;
    const float *rf = L->res ? L->res + (size_t)f * L->rplane.h * L->rplane.w : NULL;
    const float *aj = acc + j * ACC_STRIDE;
    for (int i = 0; i < S->ns; ++i)
      spk_store(of + S->sp[i], aj + S->sa[i], rf ? rf + S->so[i] : NULL, S->sn[i], b, relu);
    for (int z = 0; z < S->nz; ++z) sp_zero(of + S->zo[z], S->zn[z]);
  }
}

/* Stride 1: tile = SPK_TILE consecutive positions of the output over the padded width (q = y * Wp + x);
 * columns x >= Wo are computed and dropped. */
static void spk_tile_s1(const spk_layer *L, const float *in, float *out, int chunk, int tile,
                        float *restrict acc) {
  const int nf = L->chunk_nf[chunk], Wp = L->Wp, plane = L->Hp * Wp;
  const int q0 = tile * SPK_TILE, qend = L->Ho * Wp, q1 = q0 + SPK_TILE < qend ? q0 + SPK_TILE : qend;
  const int len = q1 - q0;
  /* Row segments of the tile that are real outputs (x < Wo): acc offset, output offset, length. */
  const int Wo = L->Wo;
  spk_segs S;
  S.ns = S.nz = 0;
  for (int q = q0; q < q1;) {
    const int y = q / Wp, x = q - y * Wp;
    if (x >= Wo) { q = (y + 1) * Wp; continue; }
    const int e = y * Wp + Wo < q1 ? y * Wp + Wo : q1;
    spk_add_seg(L, &S, q - q0, y, x, e - q);
    q = e;
  }
  spk_prefetch_out(L, &S, out, chunk);
  for (int j = 0; j < nf * ACC_STRIDE; j += VW) ST(acc + j, (vf){0});
  for (int c = 0; c < L->C; ++c) {
    const float *base = in + (size_t)c * plane + q0;
    if (c + SPK_PF_AHEAD < L->C) {
      const char *nb = (const char *)(base + (size_t)SPK_PF_AHEAD * plane);
      for (int dy = 0; dy < 3; ++dy)
        for (int b = 0; b < (SPK_TILE + 2) * 4 + 63; b += 64) __builtin_prefetch(nb + dy * Wp * 4 + b, 0, 3);
    }
    spk_pass(L, chunk, c, base, base + Wp, base + 2 * Wp, 1, len, acc);
  }
  spk_write_out(L, &S, out, chunk, acc);
}

/* Stride 2: tile = SPK_TILE consecutive outputs of the flattened [Ho, Wo] output. Per channel the 9 taps are
 * de-interleaved once into a stack buffer (row segments of the tile: two vector loads and an even/odd shuffle
 * per tap row and vector of outputs), after which the channel loop is the same as for stride 1, and the
 * write-out is one contiguous run per filter (per output row into a padded output). Tap rows are TSTR apart:
 * a segment's last vector may spill up to VW - 1 positions past its end (overwritten by the next segment, or
 * unused past the tile). */
#define TSTR (SPK_TILE + VW)
static void spk_tile_s2(const spk_layer *L, const float *in, float *out, int chunk, int tile,
                        float *restrict acc) {
  const int nf = L->chunk_nf[chunk], Wp = L->Wp, plane = L->Hp * Wp, Wo = L->Wo, HW = L->Ho * L->Wo;
  const int q0 = tile * SPK_TILE, n = HW - q0 < SPK_TILE ? HW - q0 : SPK_TILE;
  float taps[9 * TSTR] __attribute__((aligned(64)));
  for (int j = 0; j < 9 * TSTR; j += VW) ST(taps + j, (vf){0}); /* finite values past the last output */
  /* Row segments of the tile: tile offset, input offset of the first output's window, length. Output: per row
   * into a padded output or with a padded residual, else one contiguous run (the flattened output is the
   * tile's order). */
  int sj[SPK_TILE], si[SPK_TILE], sn[SPK_TILE], ns = 0;
  spk_segs S;
  S.ns = S.nz = 0;
  const int rows = L->oplane.pad || L->rplane.pad; /* a padded output or residual: one segment per row */
  if (!rows) spk_add_seg(L, &S, 0, q0 / Wo, q0 % Wo, n);
  for (int q = q0; q < q0 + n;) {
    const int y = q / Wo, x = q - y * Wo, e = y * Wo + Wo < q0 + n ? y * Wo + Wo : q0 + n;
    sj[ns] = q - q0, si[ns] = 2 * y * Wp + 2 * x, sn[ns] = e - q, ++ns;
    if (rows) spk_add_seg(L, &S, q - q0, y, x, e - q);
    q = e;
  }
  spk_prefetch_out(L, &S, out, chunk);
  for (int j = 0; j < nf * ACC_STRIDE; j += VW) ST(acc + j, (vf){0});
  for (int c = 0; c < L->C; ++c) {
    const float *base = in + (size_t)c * plane;
    for (int g = 0; g < ns; ++g) {
      for (int dy = 0; dy < 3; ++dy) {
        const float *row = base + si[g] + dy * Wp;
        float *d0 = taps + 3 * dy * TSTR + sj[g], *d1 = d0 + TSTR, *d2 = d1 + TSTR;
        for (int i = 0; i < sn[g]; i += VW) {
          const vf a = LD(row + 2 * i), b = LD(row + 2 * i + VW);
          const vf a2 = LD(row + 2 * i + 2), b2 = LD(row + 2 * i + 2 + VW);
          ST(d0 + i, SP_EVEN(a, b));
          ST(d1 + i, SP_ODD(a, b));
          ST(d2 + i, SP_EVEN(a2, b2));
        }
      }
    }
    spk_pass(L, chunk, c, taps, taps + 3 * TSTR, taps + 6 * TSTR, TSTR, n, acc);
  }
  spk_write_out(L, &S, out, chunk, acc);
}

/* The header of a call (pattern_conv.h), checked once per call: every slot the kernel reads holds a value it
 * understands, the tables it points at lie inside the table buffer (t_n words) and the buffers are as large as
 * the geometry says (in_n, w_n, r_n, o_n floats), so no read or write of the call leaves its buffers. Traps
 * (sp_check.h) otherwise. */
SP_CHECKS static void spk_check_header(const int32_t *h, size_t t_n, size_t in_n, size_t w_n, size_t r_n,
                                       size_t o_n) {
  SP_CHECK(t_n >= SPK_H_SIZE);
  SP_CHECK(h[SPK_H_MAGIC] == SPK_ABI_MAGIC && h[SPK_H_TILE] == SPK_TILE && h[SPK_H_CHUNK] == SPK_CHUNK);
  const int32_t N = h[SPK_H_N], C = h[SPK_H_C], F = h[SPK_H_F], Hp = h[SPK_H_HP], Wp = h[SPK_H_WP];
  const int32_t Ho = h[SPK_H_HO], Wo = h[SPK_H_WO], stride = h[SPK_H_STRIDE], nch = h[SPK_H_NCHUNKS];
  const int32_t ntiles = h[SPK_H_NTILES], ngroups = h[SPK_H_NGROUPS], tpg = h[SPK_H_TILES_PER_GROUP];
  const int32_t K = h[SPK_H_K];
  const int32_t big = 1 << 24; /* any real layer's dimension is far below this; products below stay in int */
  SP_CHECK(sp_in(N, 1, big) && sp_in(C, 1, big) && sp_in(F, 1, big) && sp_in(Ho, 1, 1 << 15) &&
           sp_in(Wo, 1, 1 << 15) && sp_in(Hp, 1, 1 << 15) && sp_in(Wp, 1, 1 << 15));
  SP_CHECK((stride == 1 || stride == 2) && sp_in(h[SPK_H_RELU], 0, 1) && sp_in(h[SPK_H_RESIDUAL], 0, 1));
  /* the 3x3 windows of every output, and the whole tiles' and vectors' reads past the last row, inside a plane */
  const int64_t plane = (int64_t)Hp * Wp;
  if (stride == 1) {
    SP_CHECK(Wp >= Wo + 2 && Hp >= Ho + 2);
    SP_CHECK(ntiles == ((int64_t)Ho * Wp + SPK_TILE - 1) / SPK_TILE);
    SP_CHECK((int64_t)ntiles * SPK_TILE + 2 * Wp + 2 <= plane);
  } else {
    SP_CHECK(Wp >= 2 * Wo + 1 && Hp >= 2 * Ho + 1);
    SP_CHECK(ntiles == ((int64_t)Ho * Wo + SPK_TILE - 1) / SPK_TILE);
    SP_CHECK(2 * (int64_t)Ho * Wp + 2 * Wo + 2 + 4 * VW <= plane);
  }
  /* the work split: every tile in exactly one group, no empty group */
  SP_CHECK(sp_in(nch, 1, F) && sp_in(ngroups, 1, ntiles) && sp_in(tpg, 1, ntiles));
  SP_CHECK((int64_t)ngroups * tpg >= ntiles && (int64_t)(ngroups - 1) * tpg < ntiles);
  SP_CHECK(K >= 0 && (int64_t)K <= (int64_t)F * C);
  /* the tables: fidx (K bytes), run_start, run_pid, run_k, chunk_fil, chunk_nf, after the header */
  const int64_t nrs = (int64_t)nch * C + 1;
  SP_CHECK(nrs < (1 << 30));
  SP_CHECK(h[SPK_H_OFF_FIDX] >= SPK_H_SIZE && sp_fits(h[SPK_H_OFF_FIDX], (K + 3) / 4, t_n));
  SP_CHECK(h[SPK_H_OFF_RUN_START] >= SPK_H_SIZE && sp_fits(h[SPK_H_OFF_RUN_START], nrs, t_n));
  SP_CHECK(h[SPK_H_OFF_CHUNK_FIL] >= SPK_H_SIZE && sp_fits(h[SPK_H_OFF_CHUNK_FIL], (int64_t)nch * SPK_CHUNK, t_n));
  SP_CHECK(h[SPK_H_OFF_CHUNK_NF] >= SPK_H_SIZE && sp_fits(h[SPK_H_OFF_CHUNK_NF], nch, t_n));
  const int32_t *run_start = h + h[SPK_H_OFF_RUN_START];
  const int32_t R = run_start[nrs - 1]; /* runs in all */
  SP_CHECK(run_start[0] == 0 && sp_in(R, 0, K));
  SP_CHECK(h[SPK_H_OFF_RUN_PID] >= SPK_H_SIZE && sp_fits(h[SPK_H_OFF_RUN_PID], R, t_n));
  SP_CHECK(h[SPK_H_OFF_RUN_K] >= SPK_H_SIZE && sp_fits(h[SPK_H_OFF_RUN_K], (int64_t)R + 1, t_n));
  const int32_t *run_k = h + h[SPK_H_OFF_RUN_K];
  SP_CHECK(run_k[0] == 0 && run_k[R] == K);
  /* the chunks: 1..SPK_CHUNK filters each, F in all */
  const int32_t *chunk_nf = h + h[SPK_H_OFF_CHUNK_NF];
  int64_t nf_sum = 0;
  int bad = 0;
  for (int i = 0; i < nch; ++i) nf_sum += chunk_nf[i], bad |= !sp_in(chunk_nf[i], 1, SPK_CHUNK);
  SP_CHECK(!bad && nf_sum == F);
  /* the buffers */
  SP_CHECK(sp_plane_valid(h + SPK_H_OUT_HP, Ho, Wo) && sp_plane_valid(h + SPK_H_RES_HP, Ho, Wo));
  const sp_plane op = sp_plane_at(h + SPK_H_OUT_HP, Ho, Wo), rp = sp_plane_at(h + SPK_H_RES_HP, Ho, Wo);
  SP_CHECK(sp_mul(sp_mul((size_t)N, (size_t)C), (size_t)plane) <= in_n);
  SP_CHECK(sp_mul(4, (size_t)K) + (size_t)F <= w_n);
  SP_CHECK(sp_mul(sp_mul((size_t)N, (size_t)F), sp_mul((size_t)op.h, (size_t)op.w)) <= o_n);
  if (h[SPK_H_RESIDUAL]) SP_CHECK(sp_mul(sp_mul((size_t)N, (size_t)F), sp_mul((size_t)rp.h, (size_t)rp.w)) <= r_n);
}

/* The tables of one chunk, checked once per call before its tiles run: its filters are distinct (ascending)
 * and inside F; its runs, in order, are non-empty ascending kernel ranges inside K (the packer makes no empty
 * run: one would hand its kernels to the next run's pattern) with a known pattern id; each kernel's
 * chunk-local filter is one of the chunk's filters. The loops are branch-free (one flag), a few cycles per run
 * and kernel against a tile's 4 FMAs per vector for each. Traps otherwise. */
SP_CHECKS static void spk_check_chunk(const spk_layer *L, int chunk, int K) {
  const int nf = L->chunk_nf[chunk];
  const int32_t *fil = L->chunk_fil + chunk * SPK_CHUNK;
  int bad = fil[0] < 0 || fil[nf - 1] >= L->F;
  for (int j = 1; j < nf; ++j) bad |= fil[j] <= fil[j - 1];
  const int r0 = L->run_start[chunk * L->C], r1 = L->run_start[(chunk + 1) * L->C];
  bad |= r0 < 0 || r0 > r1 || r1 > L->run_start[L->nchunks * L->C];
  for (int i = chunk * L->C; i < (chunk + 1) * L->C; ++i) bad |= L->run_start[i + 1] < L->run_start[i];
  SP_CHECK(!bad && L->run_k[r0] >= 0);
  for (int r = r0; r < r1; ++r)
    bad |= (L->run_k[r + 1] <= L->run_k[r]) | ((uint32_t)L->run_pid[r] >= SPK_NUM_PATTERNS);
  SP_CHECK(!bad && L->run_k[r1] <= K);
  const uint8_t nfb = (uint8_t)nf; /* nf <= SPK_CHUNK = 128 */
  for (int k = L->run_k[r0]; k < L->run_k[r1]; ++k) bad |= L->fidx[k] >= nfb;
  SP_CHECK(!bad);
}

/* Entry point, one workgroup (pattern_conv.h; the signature: SP_ENTRY, simd.h). Workgroup id = (n * ngroups +
 * group) * nchunks + chunk. A header or table the kernel does not understand, or a workgroup id past the work
 * split, traps (sp_check.h). */
SP_ENTRY(spattern_pattern_conv) {
  const int32_t *h = t_a + t_o;
  spk_check_header(h, t_n, in_n, w_n, r_n, o_n);
  spk_layer L;
  L.C = h[SPK_H_C];
  L.F = h[SPK_H_F];
  L.Hp = h[SPK_H_HP];
  L.Wp = h[SPK_H_WP];
  L.Ho = h[SPK_H_HO];
  L.Wo = h[SPK_H_WO];
  L.stride = h[SPK_H_STRIDE];
  L.relu = h[SPK_H_RELU];
  L.nchunks = h[SPK_H_NCHUNKS];
  L.ntiles = h[SPK_H_NTILES];
  L.tpg = h[SPK_H_TILES_PER_GROUP];
  L.w = w_a + w_o;
  L.bias = L.w + 4 * (size_t)h[SPK_H_K];
  L.fidx = (const uint8_t *)(h + h[SPK_H_OFF_FIDX]);
  L.run_start = h + h[SPK_H_OFF_RUN_START];
  L.run_pid = h + h[SPK_H_OFF_RUN_PID];
  L.run_k = h + h[SPK_H_OFF_RUN_K];
  L.chunk_fil = h + h[SPK_H_OFF_CHUNK_FIL];
  L.chunk_nf = h + h[SPK_H_OFF_CHUNK_NF];
  const int ngroups = h[SPK_H_NGROUPS];
  SP_CHECK(wg < sp_mul(sp_mul((size_t)h[SPK_H_N], (size_t)ngroups), (size_t)L.nchunks));
  const int chunk = (int)(wg % (size_t)L.nchunks);
  const int rest = (int)(wg / (size_t)L.nchunks);
  const int group = rest % ngroups, n = rest / ngroups;
  spk_check_chunk(&L, chunk, h[SPK_H_K]);
  const float *in = in_a + in_o + (size_t)n * L.C * L.Hp * L.Wp;
  L.oplane = sp_plane_at(h + SPK_H_OUT_HP, L.Ho, L.Wo);
  float *out = o_a + o_o + (size_t)n * L.F * L.oplane.h * L.oplane.w;
  L.rplane = sp_plane_at(h + SPK_H_RES_HP, L.Ho, L.Wo);
  L.res = h[SPK_H_RESIDUAL] ? r_a + r_o + (size_t)n * L.F * L.rplane.h * L.rplane.w : NULL;
  float acc[SPK_CHUNK * ACC_STRIDE] __attribute__((aligned(64)));
  const int t0 = group * L.tpg, t1 = t0 + L.tpg < L.ntiles ? t0 + L.tpg : L.ntiles;
  for (int t = t0; t < t1; ++t) {
    if (L.stride == 1)
      spk_tile_s1(&L, in, out, chunk, t, acc);
    else
      spk_tile_s2(&L, in, out, chunk, t, acc);
  }
}
