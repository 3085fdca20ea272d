/* Peak loops for bench/int8_kernel.py: 12 independent accumulator chains of one instruction each (VPDPBUSD zmm,
 * or VFMADD zmm), so the loop runs at the instruction's throughput, not its latency. */
#include <stdint.h>

typedef int32_t v16i __attribute__((vector_size(64)));
typedef float v16f __attribute__((vector_size(64)));

int32_t spq_vnni_peak(long iters, int32_t seed) {
  v16i a[12], x = (v16i){0} + seed, w = (v16i){0} + (seed ^ 0x01010101);
  for (int i = 0; i < 12; ++i) a[i] = (v16i){0} + i;
  for (long n = 0; n < iters; ++n) {
#pragma clang loop unroll(full)
    for (int i = 0; i < 12; ++i) a[i] = __builtin_ia32_vpdpbusd512(a[i], x, w);
    __asm__ volatile("" : "+v"(x));
  }
  v16i s = a[0];
  for (int i = 1; i < 12; ++i) s += a[i];
  return s[0];
}

float spq_fma_peak(long iters, float seed) {
  v16f a[12], x = (v16f){0} + seed, w = (v16f){0} + 0.999f;
  for (int i = 0; i < 12; ++i) a[i] = (v16f){0} + (float)i;
  for (long n = 0; n < iters; ++n) {
#pragma clang loop unroll(full)
    for (int i = 0; i < 12; ++i) a[i] = a[i] * w + x;
    __asm__ volatile("" : "+v"(x));
  }
  v16f s = a[0];
  for (int i = 1; i < 12; ++i) s += a[i];
  return s[0];
}
