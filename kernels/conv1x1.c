/* 1x1-conv microkernel: out[F, P] = act(W[F, C] x X[C, P] + bias (+ residual)) in NCHW, one image.
 *
 * Why: the 1x1 convs between pattern convs (ResNet-50's bottlenecks, ResNet-18's downsamples) are most of a
 * bottleneck network's MACs. IREE compiled them (as conv-1x1-to-matmul's NCHW matmuls) at 29-50% of the FMA
 * peak, with data-tiling copies (encode dispatches) around each.
 * Here a register-blocked GEMM microtile of SPG_BLOCK filters x NV vectors of positions accumulates in registers
 * over all C input channels: per channel NV vector loads and 8 weight broadcasts feed 8 * NV FMAs. The weights
 * of a block (packed [C][8], C * 32 bytes) stay in L1; a microtile's input, copied into a contiguous buffer
 * when it fits, is reused by every block of the workgroup. The write-out applies the folded BatchNorm's bias,
 * the residual and the ReLU.
 *
 * Measured in IREE (bench/conv1x1.py, one thread, ResNet-50's 1x1 shapes): 89-126 GFLOP/s, 1.05-1.45x IREE's
 * matmul on the same convs (bench/results/session7-conv1x1-kernel.txt).
 *
 * A 1x1 conv whose only user is a pattern conv writes that conv's padded input (the zeros around the outputs
 * included, as the pattern kernel's padded outputs do), so no pad copy runs between the two.
 *
 * Positions that do not fill a vector: the last vector of a row of P overlaps the previous one (the same values
 * written twice) when P >= VW, else scalars.
 *
 * Layout 1 (small images, conv1x1_abi.filter_layout): vectors run over filters instead, a microtile of 32 filters
 * x NPF positions, so a 7x7 image wastes no lane (layout 0 computes 64 for 49) and a 3x3 one needs no scalars.
 * Its weights are packed [F/32][C][32]; channels go in steps of SPG_KC so a step's weights stay in L1 for every
 * microtile; the write-out transposes through a stack tile (ResNet-50 at 96x96 ran 4x faster with it:
 * bench/results/microkernels-tuning.txt). Images smaller than the microtile get one microtile of their size; a
 * single position is a matrix-vector product with its own loop, spg_fvec.
 *
 * Layout 2 (one position: a Linear layer at batch 1, which lower-linear-to-microkernels lowers to this kernel,
 * and the layout conv1x1_abi.choose_layout picks for it): a matrix-vector product that reads only the weights
 * of nonzero inputs (spg_vblock), about half of them after a ReLU.
 *
 * Portable C with clang vector extensions (AVX-512, AVX2, NEON by the compile flags), freestanding, as
 * kernels/pattern_conv.c. Layout: conv1x1.h.
 */
#include <stddef.h>
#include <stdint.h>

#include "conv1x1.h"
#include "padded_plane.h"
#include "simd.h"
#include "sp_check.h"

/* NV: vectors of positions per microtile; SPG_BLOCK * NV accumulators live in registers. */
#if defined(__AVX512F__)
#ifndef NV
#define NV 2 /* 32 zmm: 16 accumulators + 2 inputs + broadcasts */
#endif
#elif defined(__AVX2__)
#define NV 1 /* 16 ymm: 8 accumulators + 1 input + broadcasts */
#elif defined(__ARM_NEON) || defined(__aarch64__)
#define NV 2 /* 32 q registers: 16 accumulators + 2 inputs + weights */
#else
#define NV 1
#endif

/* LAYOUT 1 (conv1x1.h): a microtile is SPG_FBLOCK filters (FV vectors) x NPF positions, NPF * FV accumulators. */
#define FV (SPG_FBLOCK / VW)
#ifndef NPF
#if defined(__AVX512F__)
#define NPF 7 /* 14 accumulators + 2 weight vectors + broadcasts; 7 divides ResNet's image sizes (224 = 32 x 7) */
#else
#define NPF 2 /* AVX2: 8 accumulators + 4 weight vectors; NEON: 16 + 8 */
#endif
#endif
#ifndef SPG_KC
#define SPG_KC 128 /* LAYOUT 1: channels per step (their weights: 16 KiB; 64 measured 2-10% slower) */
#endif
#ifndef SPG_FSUB
#define SPG_FSUB 16 /* LAYOUT 1: microtiles per sub-panel (accumulators: NPF x 2 KiB each) */
#endif

#ifndef SPG_PACK
#define SPG_PACK 1 /* copy a microtile's input into a contiguous buffer (p-outer order) */
#endif
#ifndef SPG_UNROLL
#define SPG_UNROLL 4 /* channels per loop iteration: fewer loop instructions competing with the FMAs */
#endif
#ifndef SPG_L1_INPUT
#define SPG_L1_INPUT (32 * 1024) /* bytes of a microtile's input that stay in L1 while all blocks pass over it */
#endif

typedef struct {
  int C, F, P, relu;
  int H, W;
  sp_plane oplane; /* output planes with the H x W outputs in them (padded: and the zeros around them) */
  const float *in, *w, *bias, *res;
  float *out;
} spg_layer;

/* dst[0..n) = src[0..n) */
static inline void spg_copy(float *restrict dst, const float *restrict src, int n) {
  int i = 0;
  for (; i + VW <= n; i += VW) ST(dst + i, LD(src + i));
  for (; i < n; ++i) dst[i] = src[i];
}

/* A padded output plane gets positions [p, p + n) (values in src) row segment by row segment. */
static void spg_store_padded(const spg_layer *L, float *plane, const float *src, int p, int n) {
  for (int q = p; q < p + n;) {
    const int y = q / L->W, x = q - y * L->W;
    const int len = L->W - x < p + n - q ? L->W - x : p + n - q;
    spg_copy(plane + (size_t)(y + L->oplane.top) * L->oplane.w + L->oplane.left + x, src + (q - p), len);
    q += len;
  }
}

/* The zeros around the outputs of one filter's padded plane that the panel [p0, p1) owns. */
static void spg_zero_border(const spg_layer *L, float *plane, int p0, int p1) {
  const int W = L->W, ow = L->oplane.w, right = ow - L->oplane.left - W;
  for (int y = (p0 + W - 1) / W; y * W < p1; ++y) { /* rows starting in the panel */
    if (y == 0) sp_zero(plane, L->oplane.top * ow);
    sp_zero(plane + (size_t)(y + L->oplane.top) * ow, L->oplane.left);
  }
  for (int y = p0 / W; y * W + W - 1 < p1; ++y) { /* rows ending in the panel */
    if (y * W + W - 1 < p0) continue;
    sp_zero(plane + (size_t)(y + L->oplane.top) * ow + L->oplane.left + W, right);
    if (y == L->H - 1) sp_zero(plane + (size_t)(L->H + L->oplane.top) * ow, (L->oplane.h - L->oplane.top - L->H) * ow);
  }
}

static inline vf spg_act(vf v, int relu) {
  if (relu) v = (vf)((vi)v & (vi)(v > (vf){0}));
  return v;
}

/* Filters [8b, 8b + 8) at the nt vectors of positions starting at p, whose input rows (one per channel) start
 * at x, xs floats apart. */
static inline __attribute__((always_inline)) void spg_tile(const spg_layer *L, int b, int p, const int nt,
                                                          const float *restrict x, const size_t xs) {
  vf acc[SPG_BLOCK][NV];
  _Pragma("clang loop unroll(full)") for (int f = 0; f < SPG_BLOCK; ++f)
    _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; ++v) acc[f][v] = (vf){0};
  const float *restrict wb = L->w + (size_t)b * L->C * SPG_BLOCK;
  const size_t P = (size_t)L->P;
  _Pragma("clang loop unroll_count(SPG_UNROLL)") for (int c = 0; c < L->C; ++c) {
    vf xv[NV];
    _Pragma("clang loop unroll(full)") for (int v = 0; v < nt; ++v) xv[v] = LD(x + c * xs + v * VW);
    _Pragma("clang loop unroll(full)") for (int f = 0; f < SPG_BLOCK; ++f) {
      const float wf = wb[c * SPG_BLOCK + f];
      _Pragma("clang loop unroll(full)") for (int v = 0; v < nt; ++v) acc[f][v] = acc[f][v] + xv[v] * wf;
    }
  }
  const int nf = L->F - b * SPG_BLOCK < SPG_BLOCK ? L->F - b * SPG_BLOCK : SPG_BLOCK;
  /* Unrolled, so that acc is never indexed at run time and stays in registers (else clang keeps it on the
   * stack and, with 24 accumulators, spills one per FMA). */
  _Pragma("clang loop unroll(full)") for (int f = 0; f < SPG_BLOCK; ++f) {
    if (f < nf) {
      const size_t row = (size_t)(b * SPG_BLOCK + f) * P + p;
      const vf bias = L->bias[b * SPG_BLOCK + f] - (vf){0};
      vf y[NV];
      _Pragma("clang loop unroll(full)") for (int v = 0; v < nt; ++v) {
        y[v] = acc[f][v] + bias;
        if (L->res) y[v] += LD(L->res + row + v * VW);
        y[v] = spg_act(y[v], L->relu);
        if (!L->oplane.pad) ST(L->out + row + v * VW, y[v]);
      }
      if (L->oplane.pad) {
        float buf[NV * VW] __attribute__((aligned(64)));
        _Pragma("clang loop unroll(full)") for (int v = 0; v < nt; ++v) ST(buf + v * VW, y[v]);
        spg_store_padded(L, L->out + (size_t)(b * SPG_BLOCK + f) * L->oplane.h * L->oplane.w, buf, p, nt * VW);
      }
    }
  }
}

/* The microtiles (start, vectors) that cover positions [p, min(p + NV * VW, p1)) of a panel ending at p1: one
 * whole microtile when it fits; a panel's last, partial one is one vector when that covers it, else moves back
 * to end at p1 (overlapping the one before: the same values written twice) when P allows, else single vectors,
 * the last one again ending at p1. Needs P >= VW. Returns how many (at most NV + 1). */
static int spg_microtiles(const spg_layer *L, int p, int p1, int *q, int *nt) {
  int n = 0;
  if (p + NV * VW <= p1) {
    q[n] = p, nt[n++] = NV;
  } else if (p + VW >= p1) {
    q[n] = p1 - VW, nt[n++] = 1;
  } else if (L->P >= NV * VW) {
    q[n] = p1 - NV * VW, nt[n++] = NV;
  } else {
    for (; p + VW <= p1; p += VW) q[n] = p, nt[n++] = 1;
    if (p < p1) q[n] = p1 - VW, nt[n++] = 1;
  }
  return n;
}

/* Every block of [b0, b1) over the microtile (q, nt); x: its input rows, xs floats apart. */
static void spg_blocks(const spg_layer *L, int b0, int b1, int q, int nt, const float *x, size_t xs) {
  for (int b = b0; b < b1; ++b) {
    if (nt == NV)
      spg_tile(L, b, q, NV, x, xs);
    else
      spg_tile(L, b, q, 1, x, xs);
  }
}

/* LAYOUT 1: filters [32b, 32b + 32) at positions [p, p + NPF), channels [k0, k1), accumulated into the tile
 * slot t (NPF x SPG_FBLOCK floats; zeros first when k0 == 0). Per channel FV weight vectors and NPF input
 * broadcasts feed NPF * FV FMAs; no lane is wasted however few positions the image has (a 7x7 image in vectors
 * of 16 positions computes 64 for 49), which is why small images use this layout. */
static inline __attribute__((always_inline)) void spg_fmicro(const spg_layer *L, int b, int p, int k0, int k1,
                                                            const int np, float *restrict t) {
  vf acc[NPF][FV];
  _Pragma("clang loop unroll(full)") for (int j = 0; j < np; ++j)
    _Pragma("clang loop unroll(full)") for (int v = 0; v < FV; ++v)
      acc[j][v] = k0 ? LD(t + j * SPG_FBLOCK + v * VW) : (vf){0};
  const float *restrict wb = L->w + (size_t)b * L->C * SPG_FBLOCK;
  const float *restrict x = L->in + p;
  const size_t P = (size_t)L->P;
  _Pragma("clang loop unroll_count(SPG_UNROLL)") for (int c = k0; c < k1; ++c) {
    vf wv[FV];
    _Pragma("clang loop unroll(full)") for (int v = 0; v < FV; ++v) wv[v] = LD(wb + c * SPG_FBLOCK + v * VW);
    _Pragma("clang loop unroll(full)") for (int j = 0; j < np; ++j) {
      const float xs = x[c * P + j];
      _Pragma("clang loop unroll(full)") for (int v = 0; v < FV; ++v) acc[j][v] = acc[j][v] + wv[v] * xs;
    }
  }
  _Pragma("clang loop unroll(full)") for (int j = 0; j < np; ++j)
    _Pragma("clang loop unroll(full)") for (int v = 0; v < FV; ++v) ST(t + j * SPG_FBLOCK + v * VW, acc[j][v]);
}

/* spg_fmicro for one position in layout 1 (pack_conv1x1 picks layout 2 for one position since session 10; this
 * loop runs where layout 1 is asked for): a matrix-vector product, bound by streaming the weights (2 vectors per
 * channel for 2 FMAs). The channels are cut into SPG_GEMV_STREAMS segments walked side by
 * side, each with its own accumulators: that many sequential streams from memory at once (one stream is
 * limited by how far ahead the hardware prefetcher runs), and no FMA latency chain holding back the loads.
 * Measured (VGG-16's 25088 -> 4096 layer, 411 MB, ctypes): 1 / 2 / 4 / 8 streams 12.8 / 13.3 / 14.3 / 14.5 GB/s
 * on one thread, 24.1 / 25.2 / 25.7 / 26.4 on two (torch's matrix-vector product: 15-16 and 29.5); software
 * prefetch 512-8192 bytes ahead in each stream made it slower (0.87x to 0.35x). */
#ifndef SPG_GEMV_STREAMS
#define SPG_GEMV_STREAMS 4
#endif
static void spg_fvec(const spg_layer *L, int b, int p, int k0, int k1, float *restrict t) {
  vf acc[SPG_GEMV_STREAMS][FV];
  _Pragma("clang loop unroll(full)") for (int a = 0; a < SPG_GEMV_STREAMS; ++a)
    _Pragma("clang loop unroll(full)") for (int v = 0; v < FV; ++v)
      acc[a][v] = a == 0 && k0 ? LD(t + v * VW) : (vf){0};
  const float *restrict wb = L->w + (size_t)b * L->C * SPG_FBLOCK;
  const float *restrict x = L->in + p;
  const size_t P = (size_t)L->P;
  const int seg = (k1 - k0) / SPG_GEMV_STREAMS;
  for (int i = 0; i < seg; ++i) {
    _Pragma("clang loop unroll(full)") for (int a = 0; a < SPG_GEMV_STREAMS; ++a) {
      const int c = k0 + a * seg + i;
      const float xs = x[c * P];
      _Pragma("clang loop unroll(full)") for (int v = 0; v < FV; ++v)
        acc[a][v] = acc[a][v] + LD(wb + (size_t)c * SPG_FBLOCK + v * VW) * xs;
    }
  }
  for (int c = k0 + SPG_GEMV_STREAMS * seg; c < k1; ++c) {
    const float xs = x[c * P];
    _Pragma("clang loop unroll(full)") for (int v = 0; v < FV; ++v)
      acc[0][v] = acc[0][v] + LD(wb + (size_t)c * SPG_FBLOCK + v * VW) * xs;
  }
  _Pragma("clang loop unroll(full)") for (int a = 1; a < SPG_GEMV_STREAMS; ++a)
    _Pragma("clang loop unroll(full)") for (int v = 0; v < FV; ++v) acc[0][v] += acc[a][v];
  _Pragma("clang loop unroll(full)") for (int v = 0; v < FV; ++v) ST(t + v * VW, acc[0][v]);
}

/* spg_fmicro over np positions (NPF, or a whole image of fewer: a 2x2 map, or a Linear layer's single position),
 * one copy of the loop per count so that the accumulators stay in registers. */
static void spg_fmicro_n(const spg_layer *L, int b, int p, int k0, int k1, int np, float *restrict t) {
  if (np >= NPF) spg_fmicro(L, b, p, k0, k1, NPF, t);
  else if (np == 1) spg_fvec(L, b, p, k0, k1, t);
#define SPG_NP(k) else if (NPF > (k) && np == (k)) spg_fmicro(L, b, p, k0, k1, (k), t);
  SPG_NP(2) SPG_NP(3) SPG_NP(4) SPG_NP(5) SPG_NP(6)
#undef SPG_NP
}

/* LAYOUT 1's write-out of a tile slot (positions [p, p + np) of block b): transposed to np outputs per filter
 * row (NCHW), with the bias, residual and ReLU. */
static void spg_fstore(const spg_layer *L, int b, int p, int np, const float *t) {
  const int f0 = b * SPG_FBLOCK, nf = L->F - f0 < SPG_FBLOCK ? L->F - f0 : SPG_FBLOCK;
  for (int f = 0; f < nf; ++f) {
    const float bias = L->bias[f0 + f];
    const size_t row = (size_t)(f0 + f) * L->P + p;
    float y[NPF];
    for (int j = 0; j < np; ++j) {
      float v = t[j * SPG_FBLOCK + f] + bias;
      if (L->res) v += L->res[row + j];
      y[j] = (L->relu && v < 0.0f) ? 0.0f : v;
    }
    if (L->oplane.pad) {
      spg_store_padded(L, L->out + (size_t)(f0 + f) * L->oplane.h * L->oplane.w, y, p, np);
    } else {
      for (int j = 0; j < np; ++j) L->out[row + j] = y[j];
    }
  }
}

/* LAYOUT 1, block b over positions [p0, p1): sub-panels of up to SPG_FSUB microtiles of np = min(NPF, p1 - p0)
 * positions (the last one moved back to end at p1), their accumulators in a stack tile, over the channels in
 * steps of SPG_KC, so that a step's weights (SPG_KC x 32 floats) stay in L1 for every microtile of the
 * sub-panel. */
static void spg_fblock(const spg_layer *L, int b, int p0, int p1) {
  float tile[SPG_FSUB * NPF * SPG_FBLOCK] __attribute__((aligned(64)));
  const int np = p1 - p0 < NPF ? p1 - p0 : NPF;
  for (int ps = p0; ps < p1; ps += SPG_FSUB * np) {
    int q[SPG_FSUB], nm = 0;
    for (int p = ps; p < p1 && nm < SPG_FSUB; p += np) q[nm++] = p + np <= p1 ? p : p1 - np;
    const int kc = np == 1 ? L->C : SPG_KC; /* one position: no other microtile reuses a step's weights */
    for (int k0 = 0; k0 < L->C; k0 += kc) {
      const int k1 = k0 + kc < L->C ? k0 + kc : L->C;
      for (int i = 0; i < nm; ++i) spg_fmicro_n(L, b, q[i], k0, k1, np, tile + i * NPF * SPG_FBLOCK);
    }
    for (int i = 0; i < nm; ++i) spg_fstore(L, b, q[i], np, tile + i * NPF * SPG_FBLOCK);
  }
}

/* LAYOUT 2: one position (a Linear layer at batch 1, or a 1x1 image), filters [bs*b, bs*b + bs) with bs the
 * header's block. A matrix-vector product is bound by streaming the weights, and the input of a Linear layer
 * after a ReLU (and a max pool) is about half zeros, so this layout skips them: a block's weights are packed
 * [C][bs], one contiguous row of bs filters per channel (up to 4 KiB: the hardware prefetcher streams a row and
 * nothing past it), and only the rows of nonzero inputs are read. The nonzero channels are gathered branch-free
 * in steps of SPG_VSTEP and taken SPG_VROWS at a time: that many streams from memory at once, and one
 * accumulator load and store (in L1) per SPG_VROWS FMAs.
 * Exact but for the order of the sums; a zero input times an infinite or NaN weight, which would make NaN, is
 * skipped. Measured (VGG-16's 25088 -> 4096 layer, 411 MB, half its inputs zero, a C harness, two threads):
 * 1.5-2.3x spg_fvec's layout with 256-1024 filters per block (1024 best); 1.04-1.17x with no zero input. */
#ifndef SPG_VSTEP
#define SPG_VSTEP 256
#endif
#define SPG_VROWS 4

/* acc[0..bs) += the rows of channels ch[0..SPG_VROWS) times their inputs. */
static inline void spg_vrows(const float *restrict wb, int bs, const float *restrict x, const int *ch,
                             float *restrict acc) {
  const float *restrict r0 = wb + (size_t)ch[0] * bs, *restrict r1 = wb + (size_t)ch[1] * bs;
  const float *restrict r2 = wb + (size_t)ch[2] * bs, *restrict r3 = wb + (size_t)ch[3] * bs;
  const float x0 = x[ch[0]], x1 = x[ch[1]], x2 = x[ch[2]], x3 = x[ch[3]];
  for (int f = 0; f < bs; f += VW)
    ST(acc + f, LD(acc + f) + LD(r0 + f) * x0 + LD(r1 + f) * x1 + LD(r2 + f) * x2 + LD(r3 + f) * x3);
}

static void spg_vblock(const spg_layer *L, int b, int bs) {
  float acc[SPG_VBLOCK_MAX] __attribute__((aligned(64)));
  for (int f = 0; f < bs; f += VW) ST(acc + f, (vf){0});
  const float *restrict wb = L->w + (size_t)b * L->C * bs;
  const float *restrict x = L->in;
  int ch[SPG_VSTEP + SPG_VROWS], n = 0; /* nonzero channels not yet taken (fewer than SPG_VROWS between steps) */
  for (int c0 = 0; c0 < L->C; c0 += SPG_VSTEP) {
    const int c1 = c0 + SPG_VSTEP < L->C ? c0 + SPG_VSTEP : L->C;
    for (int c = c0; c < c1; ++c) ch[n] = c, n += x[c] != 0.0f;
    int i = 0;
    for (; i + SPG_VROWS <= n; i += SPG_VROWS) spg_vrows(wb, bs, x, ch + i, acc);
    for (int j = 0; i + j < n; ++j) ch[j] = ch[i + j];
    n -= i;
  }
  for (int j = 0; j < n; ++j) { /* the last 1-3 rows */
    const float *restrict r = wb + (size_t)ch[j] * bs, xj = x[ch[j]];
    for (int f = 0; f < bs; f += VW) ST(acc + f, LD(acc + f) + LD(r + f) * xj);
  }
  const int f0 = b * bs, nf = L->F - f0 < bs ? L->F - f0 : bs;
  for (int f = 0; f < nf; ++f) {
    float v = acc[f] + L->bias[f0 + f] + (L->res ? L->res[f0 + f] : 0.0f);
    v = (L->relu && v < 0.0f) ? 0.0f : v;
    if (L->oplane.pad)
      spg_store_padded(L, L->out + (size_t)(f0 + f) * L->oplane.h * L->oplane.w, &v, 0, 1);
    else
      L->out[f0 + f] = v;
  }
}

/* Fewer positions than one vector (P < VW): scalars. */
static void spg_scalar(const spg_layer *L, int b, int p0, int p1) {
  const int nf = L->F - b * SPG_BLOCK < SPG_BLOCK ? L->F - b * SPG_BLOCK : SPG_BLOCK;
  const float *wb = L->w + (size_t)b * L->C * SPG_BLOCK;
  for (int f = 0; f < nf; ++f) {
    const size_t row = (size_t)(b * SPG_BLOCK + f) * L->P;
    for (int p = p0; p < p1; ++p) {
      float s = 0.0f;
      for (int c = 0; c < L->C; ++c) s += wb[c * SPG_BLOCK + f] * L->in[(size_t)c * L->P + p];
      s += L->bias[b * SPG_BLOCK + f] + (L->res ? L->res[row + p] : 0.0f);
      s = (L->relu && s < 0.0f) ? 0.0f : s;
      if (L->oplane.pad)
        spg_store_padded(L, L->out + (size_t)(b * SPG_BLOCK + f) * L->oplane.h * L->oplane.w, &s, p, 1);
      else
        L->out[row + p] = s;
    }
  }
}

/* The header of a call (conv1x1.h), checked once per call: a layout, block and work split the kernel
 * understands, and buffers as large as the header says (in_n, w_n, r_n, o_n floats), so no read or write of
 * the call leaves its buffers. Traps (sp_check.h) otherwise. Returns the block (filters per packed block). */
SP_CHECKS static int spg_check_header(const int32_t *h, size_t t_n, size_t in_n, size_t w_n, size_t r_n, size_t o_n) {
  SP_CHECK(t_n >= SPG_H_SIZE && h[SPG_H_MAGIC] == SPG_ABI_MAGIC);
  const int32_t layout = h[SPG_H_LAYOUT], bs = h[SPG_H_BLOCK];
  SP_CHECK(sp_in(layout, 0, 2));
  SP_CHECK(layout == 2 ? sp_in(bs, 16, SPG_VBLOCK_MAX) && bs % 16 == 0 && h[SPG_H_P] == 1
                       : bs == (layout ? SPG_FBLOCK : SPG_BLOCK));
  const int32_t C = h[SPG_H_C], F = h[SPG_H_F], P = h[SPG_H_P], Hi = h[SPG_H_H], Wi = h[SPG_H_W];
  const int32_t big = 1 << 24; /* any real layer's dimension is far below this */
  SP_CHECK(sp_in(C, 1, big) && sp_in(F, 1, big) && sp_in(Hi, 1, 1 << 15) && sp_in(Wi, 1, 1 << 15) &&
           P == Hi * Wi);
  SP_CHECK(sp_in(h[SPG_H_RELU], 0, 1) && sp_in(h[SPG_H_RESIDUAL], 0, 1));
  const int32_t nblocks = h[SPG_H_NBLOCKS], bpg = h[SPG_H_BLOCKS_PER_GROUP];
  const int32_t npanels = h[SPG_H_NPANELS], panel = h[SPG_H_PANEL];
  /* the work split: every filter block and position in exactly one workgroup, none empty */
  SP_CHECK(nblocks == (F + bs - 1) / bs && sp_in(bpg, 1, nblocks));
  SP_CHECK(sp_in(npanels, 1, P) && sp_in(panel, 1, P) && (int64_t)npanels * panel <= P);
  SP_CHECK(sp_plane_valid(h + SPG_H_OUT_HP, Hi, Wi));
  const sp_plane op = sp_plane_at(h + SPG_H_OUT_HP, Hi, Wi);
  SP_CHECK(sp_mul((size_t)C, (size_t)P) <= in_n);
  SP_CHECK(sp_mul(sp_mul((size_t)nblocks, (size_t)C), (size_t)bs) + (size_t)F <= w_n);
  SP_CHECK(sp_mul((size_t)F, sp_mul((size_t)op.h, (size_t)op.w)) <= o_n);
  if (h[SPG_H_RESIDUAL]) SP_CHECK(sp_mul((size_t)F, (size_t)P) <= r_n);
  return bs;
}

/* Entry point, one workgroup (conv1x1.h; the signature: SP_ENTRY, simd.h). A header the kernel does not
 * understand, or a workgroup id past the work split, traps (sp_check.h). */
SP_ENTRY(spattern_conv1x1) {
  const int32_t *h = t_a + t_o;
  const int bs = spg_check_header(h, t_n, in_n, w_n, r_n, o_n);
  const int layout = h[SPG_H_LAYOUT];
  spg_layer L;
  L.C = h[SPG_H_C];
  L.F = h[SPG_H_F];
  L.P = h[SPG_H_P];
  L.relu = h[SPG_H_RELU];
  L.in = in_a + in_o;
  L.w = w_a + w_o;
  L.bias = L.w + (size_t)h[SPG_H_NBLOCKS] * L.C * bs;
  L.res = h[SPG_H_RESIDUAL] ? r_a + r_o : NULL;
  L.out = o_a + o_o;
  L.H = h[SPG_H_H];
  L.W = h[SPG_H_W];
  L.oplane = sp_plane_at(h + SPG_H_OUT_HP, L.H, L.W);
  const int npanels = h[SPG_H_NPANELS], panel = h[SPG_H_PANEL], bpg = h[SPG_H_BLOCKS_PER_GROUP];
  SP_CHECK(wg / (size_t)npanels < (size_t)(h[SPG_H_NBLOCKS] + bpg - 1) / (size_t)bpg);
  const int group = (int)(wg / (size_t)npanels), pi = (int)(wg % (size_t)npanels);
  const int b0 = group * bpg, b1 = b0 + bpg < h[SPG_H_NBLOCKS] ? b0 + bpg : h[SPG_H_NBLOCKS];
  const int p0 = pi * panel, p1 = pi == npanels - 1 ? L.P : p0 + panel; /* the last panel takes the rest */
  if (L.oplane.pad) {
    const int f1 = b1 * bs < L.F ? b1 * bs : L.F;
    for (int f = b0 * bs; f < f1; ++f) spg_zero_border(&L, L.out + (size_t)f * L.oplane.h * L.oplane.w, p0, p1);
  }
  if (layout == 2) {
    for (int b = b0; b < b1; ++b) spg_vblock(&L, b, bs);
    return;
  }
  if (layout) {
    for (int b = b0; b < b1; ++b) spg_fblock(&L, b, p0, p1);
    return;
  }
  if (L.P < VW) {
    for (int b = b0; b < b1; ++b) spg_scalar(&L, b, p0, p1);
    return;
  }
  /* Which operand stays in L1: a microtile's input (C x NV vectors) when it fits, copied into a contiguous
   * buffer and walked by every block of the group; else a block's weights (C x 8), walking the panel's rows
   * in place (the input then in L2). */
  int q[NV + 1], nt[NV + 1];
  if ((size_t)L.C * NV * VW * 4 <= SPG_L1_INPUT) {
    float buf[SPG_L1_INPUT / 4] __attribute__((aligned(64)));
    for (int p = p0; p < p1; p += NV * VW) {
      const int n = spg_microtiles(&L, p, p1, q, nt);
      for (int i = 0; i < n; ++i) {
#if SPG_PACK
        for (int c = 0; c < L.C; ++c)
          for (int v = 0; v < nt[i]; ++v) ST(buf + c * NV * VW + v * VW, LD(L.in + (size_t)c * L.P + q[i] + v * VW));
        spg_blocks(&L, b0, b1, q[i], nt[i], buf, NV * VW);
#else
        (void)buf;
        spg_blocks(&L, b0, b1, q[i], nt[i], L.in + q[i], L.P);
#endif
      }
    }
  } else {
    for (int b = b0; b < b1; ++b)
      for (int p = p0; p < p1; p += NV * VW) {
        const int n = spg_microtiles(&L, p, p1, q, nt);
        for (int i = 0; i < n; ++i) spg_blocks(&L, b, b + 1, q[i], nt[i], L.in + q[i], L.P);
      }
  }
}
