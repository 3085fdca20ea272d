/* A freestanding aarch64 Linux program that calls one microkernel entry point (the five-memref ABI, simd.h's
 * SP_ENTRY) for every workgroup, so tests can run the aarch64 objects under qemu-aarch64 without an IREE module
 * or an aarch64 libc. stdin: 6 little-endian u64 (the workgroup count, then per buffer in, w, tab, res, out: its
 * byte size and element size: 10 more u64), then the five buffers' bytes; stdout: the out buffer's bytes.
 * Exit 2 on a short read or a too-large input. Built by tests/test_pattern_s8_kernel.py. */
#include <stddef.h>
#include <stdint.h>

#define ARENA (256u << 20)
static unsigned char arena[ARENA] __attribute__((aligned(64)));

extern void spattern_pattern_conv_s8(const void *, const void *, size_t, size_t, size_t, const void *, const void *,
                                     size_t, size_t, size_t, const void *, const void *, size_t, size_t, size_t,
                                     const void *, const void *, size_t, size_t, size_t, void *, void *, size_t,
                                     size_t, size_t, size_t);

static long sys3(long n, long a, long b, long c) {
  register long x8 __asm__("x8") = n, x0 __asm__("x0") = a, x1 __asm__("x1") = b, x2 __asm__("x2") = c;
  __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
  return x0;
}
static void quit(int code) { sys3(93, code, 0, 0); for (;;) {} }
static void read_all(void *dst, size_t n) {
  for (size_t got = 0; got < n;) {
    long r = sys3(63, 0, (long)((char *)dst + got), (long)(n - got));
    if (r <= 0) quit(2);
    got += (size_t)r;
  }
}
static void write_all(const void *src, size_t n) {
  for (size_t put = 0; put < n;) {
    long r = sys3(64, 1, (long)((const char *)src + put), (long)(n - put));
    if (r <= 0) quit(3);
    put += (size_t)r;
  }
}

void _start(void) {
  uint64_t head[11];
  read_all(head, sizeof head);
  unsigned char *buf[5];
  size_t n[5], used = 0;
  for (int i = 0; i < 5; ++i) {
    const size_t bytes = (size_t)head[1 + 2 * i];
    n[i] = bytes / (size_t)head[2 + 2 * i];
    if (used + bytes + 64 > ARENA) quit(2);
    buf[i] = arena + used;
    read_all(buf[i], bytes);
    used += (bytes + 63) & ~(size_t)63;
  }
  for (size_t wg = 0; wg < head[0]; ++wg)
    spattern_pattern_conv_s8(buf[0], buf[0], 0, n[0], 1, buf[1], buf[1], 0, n[1], 1, buf[2], buf[2], 0, n[2], 1,
                             buf[3], buf[3], 0, n[3], 1, buf[4], buf[4], 0, n[4], 1, wg);
  write_all(buf[4], n[4] * (size_t)head[10]);
  quit(0);
}
