/* int8 pattern-conv microkernel: a 3x3 conv whose kernels each keep 4 int8 weights, on u8 activations.
 *
 * Why it is fast: a kernel's 4 products for one output position are one 4-way dot product (x86 VPDPBUSD,
 * AVX-512 VNNI; ARM SDOT, dotprod), so a kernel costs one instruction per vector of positions where fp32 needs 4
 * FMAs. For that, each (channel, pattern) "slot" of a channel block gets its 4 tap rows interleaved once per tile
 * (byte j of position i's 4-byte group is tap j at i): every kernel of that slot reads the same prepared vectors
 * as its memory operand, and its 4 weights are one broadcast 32-bit word. The loop order is output-stationary:
 * one filter's accumulators (6 zmm: 96 positions) stay in registers across all its kernels of a channel block,
 * since the channel-outer order of the fp32 kernel (accumulators loaded and stored around each kernel) gained
 * only 1.25x over fp32 in int8 (issue 21). Blocks keep the prepared vectors in L1/L2 (SPQ_PREP_SLOTS slots, 48 KiB);
 * 128-filter chunks (57 KiB of int32 accumulators) share each prepared slot among twice the kernels of 64-filter
 * ones, which paid on 512-channel layers (bench/results/int8-kernel.txt). Stack: about 106 KiB per call.
 *
 * Epilogue: the requantization of spattern/qarith.py (float32 multiply, round half even, zero point, clamp) and
 * optionally the integer residual add, written as u8 into the output or straight into the next conv's padded
 * input (the border holding its zero point).
 *
 * ISAs (the compile flags choose): AVX-512 VNNI; aarch64 dotprod (SDOT is s8 x s8, so the preparation biases the
 * activations by -128 and the epilogue adds 128 * sum(w) back: exact); anything else a portable C dot product
 * (the AVX2 object: correct, not tuned). Freestanding. Layout and tables: pattern_conv_s8.h.
 */
#include <stddef.h>
#include <stdint.h>

#include "padded_plane.h"
#include "pattern_conv_s8.h"
#include "patterns.h"
#include "sp_check.h"

#if defined(__AVX512VNNI__) && defined(__AVX512F__)
#define QL 16 /* int32 lanes per vector */
typedef int32_t vq __attribute__((vector_size(64)));
#define BCAST(word) ((vq){0} + (word))
#define DOT(acc, p, wv) __builtin_ia32_vpdpbusd512((acc), *(const vq *)(p), (wv))
#define SDOT_BIAS 0
#elif defined(__ARM_FEATURE_DOTPROD)
#include <arm_neon.h>
#define QL 4
typedef int32x4_t vq;
#define BCAST(word) vdupq_n_s32(word)
#define DOT(acc, p, wv) vdotq_s32((acc), vld1q_s8((const int8_t *)(p)), vreinterpretq_s8_s32(wv))
#define SDOT_BIAS 1
#else
#define QL 8
typedef int32_t vq __attribute__((vector_size(32)));
#define BCAST(word) ((vq){0} + (word))
static inline vq spq_dot_c(vq acc, const uint8_t *p, vq wv) {
  const int32_t w = wv[0];
  const int8_t w0 = (int8_t)w, w1 = (int8_t)(w >> 8), w2 = (int8_t)(w >> 16), w3 = (int8_t)(w >> 24);
  for (int l = 0; l < QL; ++l)
    acc[l] += p[4 * l] * w0 + p[4 * l + 1] * w1 + p[4 * l + 2] * w2 + p[4 * l + 3] * w3;
  return acc;
}
#define DOT(acc, p, wv) spq_dot_c((acc), (p), (wv))
#define SDOT_BIAS 0
#endif
#define NV (SPQ_TILE / QL) /* accumulator vectors of one filter: a whole tile (6 zmm, 24 q registers) */
#define PREP_BYTES (SPQ_TILE * 4)
#define ACC_STRIDE (SPQ_TILE + 16) /* room for a 16-lane epilogue vector past a segment's end */
#define TSTR (SPQ_TILE + 16)       /* stride-2 tap rows */

typedef uint8_t v16b __attribute__((vector_size(16)));
typedef uint8_t v16bu __attribute__((vector_size(16), aligned(1)));
typedef uint8_t v32b __attribute__((vector_size(32)));
typedef uint16_t v16h __attribute__((vector_size(32)));
typedef uint16_t v32h __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef int32_t v16iu __attribute__((vector_size(64), aligned(4)));
typedef float v16f __attribute__((vector_size(64)));

#if defined(__aarch64__)
#define SP_EXPORT __attribute__((visibility("hidden")))
#else
#define SP_EXPORT __attribute__((visibility("default")))
#endif

static const uint8_t spq_taps[SPK_NUM_PATTERNS][4] = {
#define SPQ_TAP_ROW(id, a, b, c, d) {a, b, c, d},
    SPK_PATTERNS(SPQ_TAP_ROW)
#undef SPQ_TAP_ROW
};

typedef struct {
  int C, F, Hp, Wp, Ho, Wo, stride, nchunks, ntiles, tpg, K;
  const int32_t *wq, *bias, *wsum;
  const float *mult;
  const int32_t *chunk_fil, *chunk_nf, *chunk_blk, *blk_slot, *slot_ch, *slot_pid, *fk_start;
  const uint8_t *kslot;
  int zp_c, lo_c, hi_c, residual, zp_r, zp_y, lo_y, hi_y, ma, mb, shift, pad_value;
  const uint8_t *res;
  sp_plane rplane, oplane;
} spq_layer;

/* One slot's prepared vectors: dst[4i + j] = taps j at position i, for the tile's positions. */
static inline void spq_prepare(uint8_t *restrict dst, const uint8_t *t0, const uint8_t *t1, const uint8_t *t2,
                               const uint8_t *t3) {
  for (int g = 0; g < SPQ_TILE; g += 16) {
    const v16b a = *(const v16bu *)(t0 + g), b = *(const v16bu *)(t1 + g);
    const v16b c = *(const v16bu *)(t2 + g), d = *(const v16bu *)(t3 + g);
    const v32b ab = __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23, 8, 24, 9,
                                            25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const v32b cd = __builtin_shufflevector(c, d, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23, 8, 24, 9,
                                            25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    v32h q = __builtin_shufflevector((v16h)ab, (v16h)cd, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23, 8,
                                     24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
#if SDOT_BIAS
    q ^= (v32h){0} + 0x8080; /* u8 -> s8 as x - 128 */
#endif
    *(v32h *)(dst + 4 * g) = q;
  }
}

/* The chunk's kernels of one block, output-stationary: acc[j] (+)= the dot products of filter j's kernels. */
static inline void spq_block(const spq_layer *L, int chunk, int blk, int first, const uint8_t *restrict prep,
                             int32_t *restrict acc) {
  const int nf = L->chunk_nf[chunk];
  const int32_t *fk = L->fk_start + (size_t)blk * SPQ_CHUNK;
  for (int j = 0; j < nf; ++j) {
    int32_t *aj = acc + j * ACC_STRIDE;
    vq a[NV];
    if (first) {
      const int f = L->chunk_fil[chunk * SPQ_CHUNK + j];
      const int32_t b0 = L->bias[f] + (SDOT_BIAS ? 128 * L->wsum[f] : 0);
      _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; ++v) a[v] = BCAST(b0);
    } else {
      _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; ++v) __builtin_memcpy(&a[v], aj + v * QL, sizeof(vq));
    }
    for (int k = fk[j]; k < fk[j + 1]; ++k) {
      const uint8_t *p = prep + (size_t)L->kslot[k] * PREP_BYTES;
      const vq wv = BCAST(L->wq[k]);
      _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; ++v) a[v] = DOT(a[v], p + v * 4 * QL, wv);
    }
    _Pragma("clang loop unroll(full)") for (int v = 0; v < NV; ++v) __builtin_memcpy(aj + v * QL, &a[v], sizeof(vq));
  }
}

/* A tile's row segments of real outputs: accumulator offset, output row y, column x, length. */
typedef struct {
  int ns;
  int sa[SPQ_TILE], sy[SPQ_TILE], sx[SPQ_TILE], sn[SPQ_TILE];
} spq_segs;

static inline __attribute__((always_inline)) v16i spq_requant(v16i acc, float m, int zp, int lo, int hi) {
  v16f x = __builtin_convertvector(acc, v16f) * m;
  x = __builtin_elementwise_max(__builtin_elementwise_min(x, (v16f){0} + 1e9f), (v16f){0} - 1e9f);
  v16i y = __builtin_convertvector(__builtin_elementwise_roundeven(x), v16i) + zp;
  return __builtin_elementwise_max(__builtin_elementwise_min(y, (v16i){0} + hi), (v16i){0} + lo);
}

static inline void spq_fill(uint8_t *dst, int n, uint8_t v) {
  for (int i = 0; i < n; ++i) dst[i] = v;
}

/* out = requant(acc) (+ residual add) for the chunk's filters over the tile's segments, and the padded output's
 * border spans this tile owns (as the fp32 kernel: each border byte written by exactly one workgroup). */
static void spq_write_out(const spq_layer *L, const spq_segs *S, uint8_t *out, int chunk, const int32_t *acc) {
  const int nf = L->chunk_nf[chunk];
  const int ow = L->oplane.w, oh = L->oplane.h;
  const uint8_t pv = (uint8_t)L->pad_value;
  for (int j = 0; j < nf; ++j) {
    const int f = L->chunk_fil[chunk * SPQ_CHUNK + j];
    const float m = L->mult[f];
    uint8_t *of = out + (size_t)f * oh * ow;
    const uint8_t *rf = L->residual ? L->res + (size_t)f * L->rplane.h * L->rplane.w : NULL;
    const int32_t *aj = acc + j * ACC_STRIDE;
    for (int s = 0; s < S->ns; ++s) {
      const int y = S->sy[s], x = S->sx[s], n = S->sn[s];
      uint8_t *o = of + (size_t)(y + L->oplane.top) * ow + L->oplane.left + x;
      const uint8_t *r = rf ? rf + (size_t)(y + L->rplane.top) * L->rplane.w + L->rplane.left + x : NULL;
      for (int i = 0; i < n; i += 16) {
        v16i c = spq_requant(*(const v16iu *)(aj + S->sa[s] + i), m, L->zp_c, L->lo_c, L->hi_c);
        const int m16 = n - i < 16 ? n - i : 16;
        if (r) {
          uint8_t rb[16] = {0};
          for (int t = 0; t < m16; ++t) rb[t] = r[i + t];
          const v16i rv = __builtin_convertvector(*(v16b *)rb, v16i) - L->zp_r;
          const v16i sum = (c - L->zp_c) * L->ma + rv * L->mb + (1 << (L->shift - 1));
          c = (sum >> L->shift) + L->zp_y;
          c = __builtin_elementwise_max(__builtin_elementwise_min(c, (v16i){0} + L->hi_y), (v16i){0} + L->lo_y);
        }
        const v16b b = __builtin_convertvector(c, v16b);
        if (m16 == 16)
          *(v16bu *)(o + i) = b;
        else
          for (int t = 0; t < m16; ++t) o[i + t] = b[t];
      }
      if (!L->oplane.pad) continue;
      const size_t row = (size_t)(y + L->oplane.top) * ow;
      if (x == 0) {
        if (y == 0) spq_fill(of, L->oplane.top * ow, pv);
        spq_fill(of + row, L->oplane.left, pv);
      }
      if (x + n == L->Wo) {
        spq_fill(of + row + L->oplane.left + L->Wo, ow - L->oplane.left - L->Wo, pv);
        if (y == L->Ho - 1) spq_fill(of + row + ow, (oh - L->oplane.top - L->Ho) * ow, pv);
      }
    }
  }
}

/* One tile of one chunk: per block, prepare its slots (their channel's 9 tap rows: in place for stride 1,
 * de-interleaved into `taps` for stride 2), then its kernels; then the write-out. */
static void spq_tile(const spq_layer *L, const uint8_t *in, uint8_t *out, int chunk, int tile,
                     uint8_t *restrict prep, uint8_t *restrict taps, int32_t *restrict acc) {
  const int Wp = L->Wp, Wo = L->Wo;
  const size_t plane = (size_t)L->Hp * Wp;
  spq_segs S;
  S.ns = 0;
  int q0, len;
  if (L->stride == 1) { /* positions over the padded width, q = y * Wp + x; columns x >= Wo dropped */
    q0 = tile * SPQ_TILE;
    const int qend = L->Ho * Wp, q1 = q0 + SPQ_TILE < qend ? q0 + SPQ_TILE : qend;
    len = q1 - q0;
    for (int q = q0; q < q1;) {
      const int y = q / Wp, x = q - y * Wp;
      if (x >= Wo) { q = (y + 1) * Wp; continue; }
      const int e = y * Wp + Wo < q1 ? y * Wp + Wo : q1;
      S.sa[S.ns] = q - q0, S.sy[S.ns] = y, S.sx[S.ns] = x, S.sn[S.ns] = e - q, ++S.ns;
      q = e;
    }
  } else { /* the flattened output */
    q0 = tile * SPQ_TILE;
    const int hw = L->Ho * Wo;
    len = hw - q0 < SPQ_TILE ? hw - q0 : SPQ_TILE;
    for (int q = q0; q < q0 + len;) {
      const int y = q / Wo, x = q - y * Wo, e = y * Wo + Wo < q0 + len ? y * Wo + Wo : q0 + len;
      S.sa[S.ns] = q - q0, S.sy[S.ns] = y, S.sx[S.ns] = x, S.sn[S.ns] = e - q, ++S.ns;
      q = e;
    }
  }
  (void)len;
  const int b0 = L->chunk_blk[chunk], b1 = L->chunk_blk[chunk + 1];
  for (int b = b0; b < b1; ++b) {
    const int s0 = L->blk_slot[b], s1 = L->blk_slot[b + 1];
    const uint8_t *rows[9];
    int cur = -1;
    for (int s = s0; s < s1; ++s) {
      const int c = L->slot_ch[s];
      if (c != cur) {
        cur = c;
        const uint8_t *base = in + (size_t)c * plane;
        if (L->stride == 1) {
          for (int t = 0; t < 9; ++t) rows[t] = base + q0 + (t / 3) * Wp + t % 3;
        } else {
          for (int g = 0; g < S.ns; ++g) {
            const int y = S.sy[g], x = S.sx[g], n = S.sn[g], a = S.sa[g];
            for (int dy = 0; dy < 3; ++dy) {
              const uint8_t *row = base + (size_t)(2 * y + dy) * Wp + 2 * x;
              uint8_t *d0 = taps + 3 * dy * TSTR + a, *d1 = d0 + TSTR, *d2 = d1 + TSTR;
              for (int i = 0; i < n; ++i) d0[i] = row[2 * i], d1[i] = row[2 * i + 1], d2[i] = row[2 * i + 2];
            }
          }
          for (int t = 0; t < 9; ++t) rows[t] = taps + t * TSTR;
        }
      }
      const uint8_t *tp = spq_taps[L->slot_pid[s]];
      spq_prepare(prep + (size_t)(s - s0) * PREP_BYTES, rows[tp[0]], rows[tp[1]], rows[tp[2]], rows[tp[3]]);
    }
    spq_block(L, chunk, b, b == b0, prep, acc);
  }
  spq_write_out(L, &S, out, chunk, acc);
}

/* The header and every table a call reads, checked once per call (traps otherwise, sp_check.h). */
SP_CHECKS static void spq_check(const int32_t *h, size_t t_n, size_t in_n, size_t w_n, size_t r_n, size_t o_n) {
  SP_CHECK(t_n >= SPQ_H_SIZE);
  SP_CHECK(h[SPQ_H_MAGIC] == SPQ_ABI_MAGIC && h[SPQ_H_TILE] == SPQ_TILE && h[SPQ_H_CHUNK] == SPQ_CHUNK &&
           h[SPQ_H_PREP_SLOTS] == SPQ_PREP_SLOTS);
  const int32_t N = h[SPQ_H_N], C = h[SPQ_H_C], F = h[SPQ_H_F], Hp = h[SPQ_H_HP], Wp = h[SPQ_H_WP];
  const int32_t Ho = h[SPQ_H_HO], Wo = h[SPQ_H_WO], stride = h[SPQ_H_STRIDE], nch = h[SPQ_H_NCHUNKS];
  const int32_t ntiles = h[SPQ_H_NTILES], ngroups = h[SPQ_H_NGROUPS], tpg = h[SPQ_H_TILES_PER_GROUP];
  const int32_t K = h[SPQ_H_K], nb = h[SPQ_H_NBLOCKS], ns = h[SPQ_H_NSLOTS];
  const int32_t big = 1 << 24;
  SP_CHECK(sp_in(N, 1, big) && sp_in(C, 1, big) && sp_in(F, 1, big) && sp_in(Ho, 1, 1 << 15) &&
           sp_in(Wo, 1, 1 << 15) && sp_in(Hp, 1, 1 << 15) && sp_in(Wp, 1, 1 << 15));
  SP_CHECK(stride == 1 || stride == 2);
  const int64_t plane = (int64_t)Hp * Wp;
  if (stride == 1) {
    SP_CHECK(Wp >= Wo + 2 && Hp >= Ho + 2);
    SP_CHECK(ntiles == ((int64_t)Ho * Wp + SPQ_TILE - 1) / SPQ_TILE);
    SP_CHECK((int64_t)ntiles * SPQ_TILE + 2 * Wp + 2 + 16 <= plane); /* a tile's 16-byte tap loads past its end */
  } else {
    SP_CHECK(Wp >= 2 * Wo + 1 && Hp >= 2 * Ho + 1);
    SP_CHECK(ntiles == ((int64_t)Ho * Wo + SPQ_TILE - 1) / SPQ_TILE);
  }
  SP_CHECK(sp_in(nch, 1, F) && sp_in(ngroups, 1, ntiles) && sp_in(tpg, 1, ntiles));
  SP_CHECK((int64_t)ngroups * tpg >= ntiles && (int64_t)(ngroups - 1) * tpg < ntiles);
  SP_CHECK(K >= 0 && (int64_t)K <= (int64_t)F * C && sp_in(nb, nch, big) && sp_in(ns, 0, big));
  SP_CHECK(sp_in(h[SPQ_H_ZP_C], 0, 255) && sp_in(h[SPQ_H_LO_C], 0, 255) && sp_in(h[SPQ_H_HI_C], h[SPQ_H_LO_C], 255));
  SP_CHECK(sp_in(h[SPQ_H_RESIDUAL], 0, 1) && sp_in(h[SPQ_H_PAD_VALUE], 0, 255));
  if (h[SPQ_H_RESIDUAL])
    SP_CHECK(sp_in(h[SPQ_H_ZP_R], 0, 255) && sp_in(h[SPQ_H_ZP_Y], 0, 255) && sp_in(h[SPQ_H_LO_Y], 0, 255) &&
             sp_in(h[SPQ_H_HI_Y], h[SPQ_H_LO_Y], 255) && sp_in(h[SPQ_H_ADD_SHIFT], 1, 30) &&
             sp_in(h[SPQ_H_ADD_MA], 0, (1 << 21) - 1) && sp_in(h[SPQ_H_ADD_MB], 0, (1 << 21) - 1));
  const int32_t off[8] = {h[SPQ_H_OFF_CHUNK_FIL], h[SPQ_H_OFF_CHUNK_NF], h[SPQ_H_OFF_CHUNK_BLK], h[SPQ_H_OFF_BLK_SLOT],
                          h[SPQ_H_OFF_SLOT_CH], h[SPQ_H_OFF_SLOT_PID], h[SPQ_H_OFF_FK_START], h[SPQ_H_OFF_KSLOT]};
  const int64_t len[8] = {(int64_t)nch * SPQ_CHUNK, nch, nch + 1, (int64_t)nb + 1, ns, ns,
                          (int64_t)nb * SPQ_CHUNK + 1, ((int64_t)K + 3) / 4};
  for (int i = 0; i < 8; ++i) SP_CHECK(off[i] >= SPQ_H_SIZE && sp_fits(off[i], len[i], t_n));
  const int32_t *fil = h + off[0], *nf = h + off[1], *cb = h + off[2], *bs = h + off[3];
  const int32_t *sch = h + off[4], *spid = h + off[5], *fk = h + off[6];
  const uint8_t *ks = (const uint8_t *)(h + off[7]);
  int bad = cb[0] != 0 || cb[nch] != nb || bs[0] != 0 || bs[nb] != ns || fk[0] != 0 || fk[(int64_t)nb * SPQ_CHUNK] != K;
  int64_t nf_sum = 0;
  for (int i = 0; i < nch && !bad; ++i) {
    bad |= !sp_in(nf[i], 1, SPQ_CHUNK) || cb[i + 1] <= cb[i];
    if (bad) break;
    nf_sum += nf[i];
    const int32_t *fi = fil + i * SPQ_CHUNK;
    bad |= fi[0] < 0 || fi[nf[i] - 1] >= F;
    for (int j = 1; j < nf[i]; ++j) bad |= fi[j] <= fi[j - 1];
    for (int b = cb[i]; b < cb[i + 1]; ++b) {
      const int n_slots = bs[b + 1] - bs[b];
      bad |= n_slots < 0 || n_slots > SPQ_PREP_SLOTS;
      for (int s = bs[b]; s < bs[b + 1] && !bad; ++s)
        bad |= !sp_in(sch[s], 0, C - 1) || (uint32_t)spid[s] >= SPK_NUM_PATTERNS || (s > bs[b] && sch[s] < sch[s - 1]);
      const int32_t *fb = fk + (int64_t)b * SPQ_CHUNK;
      for (int j = 0; j < SPQ_CHUNK && !bad; ++j) bad |= fb[j + 1] < fb[j] || (j >= nf[i] && fb[j + 1] != fb[j]);
      for (int k = fb[0]; k < fb[SPQ_CHUNK] && !bad; ++k) bad |= ks[k] >= n_slots;
    }
  }
  SP_CHECK(!bad && nf_sum == F);
  SP_CHECK(sp_plane_valid(h + SPQ_H_OUT_HP, Ho, Wo) && sp_plane_valid(h + SPQ_H_RES_HP, Ho, Wo));
  const sp_plane op = sp_plane_at(h + SPQ_H_OUT_HP, Ho, Wo), rp = sp_plane_at(h + SPQ_H_RES_HP, Ho, Wo);
  SP_CHECK(sp_mul(sp_mul((size_t)N, (size_t)C), (size_t)plane) <= in_n);
  SP_CHECK((size_t)K + sp_mul(3, (size_t)F) <= w_n);
  SP_CHECK(sp_mul(sp_mul((size_t)N, (size_t)F), sp_mul((size_t)op.h, (size_t)op.w)) <= o_n);
  if (h[SPQ_H_RESIDUAL]) SP_CHECK(sp_mul(sp_mul((size_t)N, (size_t)F), sp_mul((size_t)rp.h, (size_t)rp.w)) <= r_n);
}

/* Entry point, one workgroup: (n * ngroups + group) * nchunks + chunk. The five memrefs as IREE passes them. */
SP_EXPORT void spattern_pattern_conv_s8(const uint8_t *in_b, const uint8_t *in_a, size_t in_o, size_t in_n,
                                        size_t in_s, const int32_t *w_b, const int32_t *w_a, size_t w_o, size_t w_n,
                                        size_t w_s, const int32_t *t_b, const int32_t *t_a, size_t t_o, size_t t_n,
                                        size_t t_s, const uint8_t *r_b, const uint8_t *r_a, size_t r_o, size_t r_n,
                                        size_t r_s, uint8_t *o_b, uint8_t *o_a, size_t o_o, size_t o_n, size_t o_s,
                                        size_t wg) {
  const int32_t *h = t_a + t_o;
  spq_check(h, t_n, in_n, w_n, r_n, o_n);
  spq_layer L;
  L.C = h[SPQ_H_C], L.F = h[SPQ_H_F], L.Hp = h[SPQ_H_HP], L.Wp = h[SPQ_H_WP], L.Ho = h[SPQ_H_HO];
  L.Wo = h[SPQ_H_WO], L.stride = h[SPQ_H_STRIDE], L.nchunks = h[SPQ_H_NCHUNKS], L.ntiles = h[SPQ_H_NTILES];
  L.tpg = h[SPQ_H_TILES_PER_GROUP], L.K = h[SPQ_H_K];
  L.wq = w_a + w_o;
  L.bias = L.wq + L.K;
  L.wsum = L.bias + L.F;
  L.mult = (const float *)(L.wsum + L.F);
  L.chunk_fil = h + h[SPQ_H_OFF_CHUNK_FIL], L.chunk_nf = h + h[SPQ_H_OFF_CHUNK_NF];
  L.chunk_blk = h + h[SPQ_H_OFF_CHUNK_BLK], L.blk_slot = h + h[SPQ_H_OFF_BLK_SLOT];
  L.slot_ch = h + h[SPQ_H_OFF_SLOT_CH], L.slot_pid = h + h[SPQ_H_OFF_SLOT_PID];
  L.fk_start = h + h[SPQ_H_OFF_FK_START], L.kslot = (const uint8_t *)(h + h[SPQ_H_OFF_KSLOT]);
  L.zp_c = h[SPQ_H_ZP_C], L.lo_c = h[SPQ_H_LO_C], L.hi_c = h[SPQ_H_HI_C], L.residual = h[SPQ_H_RESIDUAL];
  L.zp_r = h[SPQ_H_ZP_R], L.zp_y = h[SPQ_H_ZP_Y], L.lo_y = h[SPQ_H_LO_Y], L.hi_y = h[SPQ_H_HI_Y];
  L.ma = h[SPQ_H_ADD_MA], L.mb = h[SPQ_H_ADD_MB], L.shift = h[SPQ_H_ADD_SHIFT], L.pad_value = h[SPQ_H_PAD_VALUE];
  const int ngroups = h[SPQ_H_NGROUPS];
  SP_CHECK(wg < sp_mul(sp_mul((size_t)h[SPQ_H_N], (size_t)ngroups), (size_t)L.nchunks));
  const int chunk = (int)(wg % (size_t)L.nchunks);
  const int rest = (int)(wg / (size_t)L.nchunks);
  const int group = rest % ngroups, n = rest / ngroups;
  const uint8_t *in = in_a + in_o + (size_t)n * L.C * L.Hp * L.Wp;
  L.oplane = sp_plane_at(h + SPQ_H_OUT_HP, L.Ho, L.Wo);
  uint8_t *out = o_a + o_o + (size_t)n * L.F * L.oplane.h * L.oplane.w;
  L.rplane = sp_plane_at(h + SPQ_H_RES_HP, L.Ho, L.Wo);
  L.res = L.residual ? r_a + r_o + (size_t)n * L.F * L.rplane.h * L.rplane.w : NULL;
  uint8_t prep[SPQ_PREP_SLOTS * PREP_BYTES] __attribute__((aligned(64)));
  int32_t acc[SPQ_CHUNK * ACC_STRIDE] __attribute__((aligned(64)));
  uint8_t taps[9 * TSTR] __attribute__((aligned(64)));
  if (L.stride == 2) spq_fill(taps, 9 * TSTR, 0); /* positions past the tile's last output: finite, dropped */
  const int t0 = group * L.tpg, t1 = t0 + L.tpg < L.ntiles ? t0 + L.tpg : L.ntiles;
  for (int t = t0; t < t1; ++t) spq_tile(&L, in, out, chunk, t, prep, taps, acc);
}
