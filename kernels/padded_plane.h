/* A plane of h x w values stored with zeros around it: a kernel's padded output (the next pattern conv's padded
 * input, written in place of a pad) or padded residual. Every kernel's header keeps such a plane in 4 consecutive
 * slots <HP, WP, TOP, LEFT> (microkernel_abi.padded_plane_slots); all zero: stored unpadded, h x w. */
#ifndef SPATTERN_PADDED_PLANE_H
#define SPATTERN_PADDED_PLANE_H

#include <stdint.h>

typedef struct {
  int pad;       /* 1: zeros around the values */
  int h, w;      /* the stored plane */
  int top, left; /* where the values start in it */
} sp_plane;

/* The plane described at `slots` (its HP slot) for values of h x w. */
static inline sp_plane sp_plane_at(const int32_t *slots, int h, int w) {
  const int pad = slots[1] != 0;
  const sp_plane p = {pad, pad ? slots[0] : h, pad ? slots[1] : w, pad ? slots[2] : 0, pad ? slots[3] : 0};
  return p;
}

/* 1 when the slots describe a plane that holds h x w values: all four zero (unpadded), or a stored plane with
 * the values inside it. A kernel traps on 0 (sp_check.h). */
static inline int sp_plane_valid(const int32_t *slots, int h, int w) {
  if (slots[1] == 0) return slots[0] == 0 && slots[2] == 0 && slots[3] == 0;
  return slots[2] >= 0 && slots[3] >= 0 && (int64_t)slots[0] >= (int64_t)slots[2] + h &&
         (int64_t)slots[1] >= (int64_t)slots[3] + w;
}

#endif
