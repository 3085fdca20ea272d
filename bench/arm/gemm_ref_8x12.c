/* Dense reference for bench/arm_model.py (not shipped): the register-blocked fp32 GEMM microkernel shape that fast
 * ARM libraries use (OpenBLAS / BLIS / XNNPACK-style 8x12 on AArch64): C[8][12] += A[8][k] * B[k][12] with packed
 * panels, 24 accumulators (q8-q31) in registers, per k step 2 vector loads of A (8 rows), 3 of B (12 columns) and
 * 24 FMAs by element. Only its inner loop is modelled; it is compiled with the flags CMakeLists.txt gives the
 * shipped aarch64 objects. */
#include <arm_neon.h>
#include <stddef.h>

__attribute__((visibility("hidden"))) void gemm_ref_8x12(size_t k, const float *restrict a, const float *restrict b,
                                                         float *restrict c, size_t ldc) {
  float32x4_t c00 = vdupq_n_f32(0), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
  float32x4_t c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
  float32x4_t c40 = c00, c41 = c00, c42 = c00, c50 = c00, c51 = c00, c52 = c00;
  float32x4_t c60 = c00, c61 = c00, c62 = c00, c70 = c00, c71 = c00, c72 = c00;
  for (size_t p = 0; p < k; ++p) {
    const float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
    const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
    a += 8, b += 12;
#define ROW(r, av, lane)                          \
  c##r##0 = vfmaq_laneq_f32(c##r##0, b0, av, lane); \
  c##r##1 = vfmaq_laneq_f32(c##r##1, b1, av, lane); \
  c##r##2 = vfmaq_laneq_f32(c##r##2, b2, av, lane);
    ROW(0, a0, 0) ROW(1, a0, 1) ROW(2, a0, 2) ROW(3, a0, 3)
    ROW(4, a1, 0) ROW(5, a1, 1) ROW(6, a1, 2) ROW(7, a1, 3)
#undef ROW
  }
#define OUT(r)                                                                        \
  vst1q_f32(c + r * ldc, vaddq_f32(vld1q_f32(c + r * ldc), c##r##0));                 \
  vst1q_f32(c + r * ldc + 4, vaddq_f32(vld1q_f32(c + r * ldc + 4), c##r##1));         \
  vst1q_f32(c + r * ldc + 8, vaddq_f32(vld1q_f32(c + r * ldc + 8), c##r##2));
  OUT(0) OUT(1) OUT(2) OUT(3) OUT(4) OUT(5) OUT(6) OUT(7)
#undef OUT
}
