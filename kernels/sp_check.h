/* How every microkernel refuses a bad table: it traps. A header, tile, chunk, block, layout, work split or
 * pattern id that the kernel does not understand (another spattern version's packer, or corrupt constants)
 * stops the process with an illegal instruction (x86: ud2, SIGILL; aarch64: brk, SIGTRAP) instead of returning
 * with its output untouched or half written. The checks run once per call (the header, the buffers' sizes, the
 * work split) and once per call over the tables that call reads (a chunk's runs and kernels), never in the
 * loops over vectors. Freestanding: a trap needs no libc, and nothing is printed here (the runtime says what a
 * trap means: spattern/runtime/trap_guard.py). */
#ifndef SPATTERN_SP_CHECK_H
#define SPATTERN_SP_CHECK_H

#include <stddef.h>
#include <stdint.h>

#define SP_CHECK(cond)                              \
  do {                                              \
    if (__builtin_expect(!(cond), 0)) __builtin_trap(); \
  } while (0)

/* A kernel's check functions are kept out of line: inlined, they grew the entry point enough to change how
 * clang inlined and laid out the tile loops (the pattern conv ran 5-8% slower at 256ch 14x14; out of line,
 * within +-5% of the unchecked kernel: interleaved A/B, one core). */
#define SP_CHECKS __attribute__((noinline))

/* a * b, trapping on overflow (a corrupt header's sizes must not wrap around into a passing size check). */
static inline size_t sp_mul(size_t a, size_t b) {
  size_t r;
  SP_CHECK(!__builtin_mul_overflow(a, b, &r));
  return r;
}

/* A header value that must lie in [lo, hi]. */
static inline int sp_in(int32_t v, int32_t lo, int32_t hi) { return v >= lo && v <= hi; }

/* Words [off, off + len) lie inside a buffer of n words (off and len non-negative, no wrap-around). */
static inline int sp_fits(int64_t off, int64_t len, size_t n) {
  return off >= 0 && len >= 0 && (uint64_t)off + (uint64_t)len <= (uint64_t)n;
}

#endif
