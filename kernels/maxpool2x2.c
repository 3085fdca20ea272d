/* 2x2 / stride-2 max-pool microkernel in NCHW (VGG's pools, after pattern convs).
 *
 * Why: IREE vectorizes an NCHW pool badly (the window's columns are interleaved in memory); VGG-16's first pool
 * (64 channels, 224 -> 112) took 2.1 ms on 2 threads for 16 MB of traffic. Here each output row is two input rows
 * folded with a vertical max, then an even/odd shuffle and a horizontal max: whole vectors, bound by memory
 * (the same pool: 0.42 ms; bench/results/session9-linear-and-pool-kernels.txt). The output can be the next
 * pattern conv's padded input (zeros around it written too), so no pad copy follows.
 *
 * Portable C with clang vector extensions (AVX-512, AVX2, NEON by the compile flags), freestanding, as
 * kernels/pattern_conv.c. Layout: maxpool2x2.h.
 */
#include <stddef.h>
#include <stdint.h>

#include "maxpool2x2.h"
#include "padded_plane.h"
#include "simd.h"
#include "sp_check.h"

static inline vf spm_vmax(vf a, vf b) { return __builtin_elementwise_max(a, b); }
static inline float spm_max(float a, float b) { return a > b ? a : b; }

/* out[x] = max of the 2x2 window at (2y, 2x) for x < wo, from the input rows r0 and r1. */
static inline void spm_row(float *restrict out, const float *restrict r0, const float *restrict r1, int wo) {
  int x = 0;
  for (; x + VW <= wo; x += VW) {
    const vf a = spm_vmax(LD(r0 + 2 * x), LD(r1 + 2 * x));
    const vf b = spm_vmax(LD(r0 + 2 * x + VW), LD(r1 + 2 * x + VW));
    ST(out + x, spm_vmax(SP_EVEN(a, b), SP_ODD(a, b)));
  }
  for (; x < wo; ++x)
    out[x] = spm_max(spm_max(r0[2 * x], r0[2 * x + 1]), spm_max(r1[2 * x], r1[2 * x + 1]));
}

/* The header of a call (maxpool2x2.h), checked once per call; traps (sp_check.h) on a value the kernel does not
 * understand, buffers smaller than it says (in_n, o_n floats) or a workgroup id past the channels. */
SP_CHECKS static void spm_check_header(const int32_t *h, size_t t_n, size_t in_n, size_t o_n, size_t wg) {
  SP_CHECK(t_n >= SPM_H_SIZE && h[SPM_H_MAGIC] == SPM_ABI_MAGIC);
  const int C = h[SPM_H_C], H = h[SPM_H_H], W = h[SPM_H_W], ho = h[SPM_H_HO], wo = h[SPM_H_WO];
  const int cpg = h[SPM_H_CPG];
  SP_CHECK(sp_in(C, 1, 1 << 24) && sp_in(H, 2, 1 << 15) && sp_in(W, 2, 1 << 15) && ho == H / 2 && wo == W / 2);
  SP_CHECK(sp_in(cpg, 1, C) && wg < (size_t)(C + cpg - 1) / (size_t)cpg);
  SP_CHECK(sp_plane_valid(h + SPM_H_OUT_HP, ho, wo));
  const sp_plane o = sp_plane_at(h + SPM_H_OUT_HP, ho, wo);
  SP_CHECK(sp_mul(sp_mul((size_t)C, (size_t)H), (size_t)W) <= in_n);
  SP_CHECK(sp_mul((size_t)C, sp_mul((size_t)o.h, (size_t)o.w)) <= o_n);
}

/* Entry point, one workgroup (maxpool2x2.h; the signature: SP_ENTRY, simd.h). A header the kernel does not
 * understand, buffers smaller than it says, or a workgroup id past the channels trap (sp_check.h), checked once
 * per call. */
SP_ENTRY(spattern_maxpool2x2) {
  const int32_t *h = t_a + t_o;
  spm_check_header(h, t_n, in_n, o_n, wg);
  const int C = h[SPM_H_C], H = h[SPM_H_H], W = h[SPM_H_W], ho = h[SPM_H_HO], wo = h[SPM_H_WO];
  const int cpg = h[SPM_H_CPG];
  const sp_plane o = sp_plane_at(h + SPM_H_OUT_HP, ho, wo);
  const int c0 = (int)wg * cpg, c1 = c0 + cpg < C ? c0 + cpg : C;
  for (int c = c0; c < c1; ++c) {
    const float *ip = in_a + in_o + (size_t)c * H * W;
    float *op = o_a + o_o + (size_t)c * o.h * o.w;
    if (o.pad) {
      sp_zero(op, o.top * o.w);
      sp_zero(op + (size_t)(o.top + ho) * o.w, (o.h - o.top - ho) * o.w);
    }
    for (int y = 0; y < ho; ++y) {
      float *row = op + (size_t)(y + o.top) * o.w;
      if (o.pad) {
        sp_zero(row, o.left);
        sp_zero(row + o.left + wo, o.w - o.left - wo);
      }
      spm_row(row + o.left, ip + (size_t)2 * y * W, ip + (size_t)(2 * y + 1) * W, wo);
    }
  }
}
