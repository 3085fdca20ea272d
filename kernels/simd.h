/* What every microkernel shares: its vector width, the vector types, unaligned loads and stores, the even/odd
 * de-interleave of two vectors (a stride-2 read), a zero fill, and the entry point (its signature and visibility). Portable C with
 * clang vector extensions: one source for AVX-512 (16 lanes), AVX2 (8) and NEON (4), the ISA chosen by the compile
 * flags (CMakeLists.txt); each kernel picks its own register blocking per ISA on top of VW. */
#ifndef SPATTERN_SIMD_H
#define SPATTERN_SIMD_H

#include <stddef.h>
#include <stdint.h>

#if defined(__AVX512F__)
#define VW 16
#elif defined(__AVX2__)
#define VW 8
#else
#define VW 4 /* NEON (and any other target: 4-lane vectors in whatever the compiler makes of them) */
#endif

typedef float vf __attribute__((vector_size(VW * 4)));
typedef float vfu __attribute__((vector_size(VW * 4), aligned(4)));
typedef int32_t vi __attribute__((vector_size(VW * 4)));
#define LD(p) (*(const vfu *)(p))
#define ST(p, v) (*(vfu *)(p) = (v))

/* The even and the odd lanes of the 2 * VW floats a, b. */
#if VW == 16
#define SP_EVEN(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#define SP_ODD(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)
#elif VW == 8
#define SP_EVEN(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14)
#define SP_ODD(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15)
#else
#define SP_EVEN(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6)
#define SP_ODD(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7)
#endif

/* x86_64: default visibility, so tests can load the object as a shared library through ctypes. aarch64: hidden,
 * because a default-visibility symbol is preemptible in IREE's embedded ELF and lld then calls it through a PLT
 * slot that IREE's aarch64 loader leaves unrelocated (the module jumped to the link-time address and crashed). */
#if defined(__aarch64__)
#define SP_EXPORT __attribute__((visibility("hidden")))
#else
#define SP_EXPORT __attribute__((visibility("default")))
#endif

/* The entry point of a kernel, one workgroup: SP_ENTRY(spattern_x) { body }. IREE passes each memref<?xT> of a
 * hal.import.static call as (base, aligned, offset, size, stride): the five buffers in, w, tab, res and out
 * (pattern_conv.h), then the workgroup id. A kernel reads the aligned pointer plus the offset and checks the sizes;
 * the parameters it does not read are unused (the build passes -Wno-unused-parameter). */
#define SP_ENTRY(name)                                                                                         \
  SP_EXPORT void name(const float *in_b, const float *in_a, size_t in_o, size_t in_n, size_t in_s,            \
                      const float *w_b, const float *w_a, size_t w_o, size_t w_n, size_t w_s,                 \
                      const int32_t *t_b, const int32_t *t_a, size_t t_o, size_t t_n, size_t t_s,             \
                      const float *r_b, const float *r_a, size_t r_o, size_t r_n, size_t r_s, float *o_b,     \
                      float *o_a, size_t o_o, size_t o_n, size_t o_s, size_t wg)

/* dst[0..n) = 0 (a loop, not memset: the kernels are freestanding) */
static inline void sp_zero(float *restrict dst, int n) {
  int i = 0;
  for (; i + VW <= n; i += VW) ST(dst + i, (vf){0});
  for (; i < n; ++i) dst[i] = 0.0f;
}

#endif
