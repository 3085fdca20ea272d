"""Packs a 2x2 / stride-2 max pool over one NCHW image into the max-pool microkernel's operands
(kernels/maxpool2x2.c), and runs the built host object through ctypes. Mirrors kernels/maxpool2x2.h exactly;
`lower-pool-to-microkernels` emits what this packs as constants, and tests feed the C kernel directly.

Work split: a workgroup pools a group of channels, each workgroup at least MIN_OUTPUTS_PER_WORKGROUP outputs (the
pool is bound by memory, and each workgroup costs IREE a few microseconds), at most DEFAULT_WORKGROUPS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spattern.errors import ConfigError
from spattern.microkernels.microkernel_abi import (DEFAULT_WORKGROUPS, KernelLibrary, header_words, padded_plane_slots,
                                                   padded_shape)

ABI_MAGIC = 0x53504D31  # "SPM1"
HEADER_SIZE = 16  # SPM_H_SIZE
H = {name: i for i, name in enumerate("MAGIC C H W HO WO CPG OUT_HP OUT_WP OUT_TOP OUT_LEFT".split())}
MIN_OUTPUTS_PER_WORKGROUP = 16384
KERNEL = "maxpool2x2"
UNUSED_WEIGHTS = np.zeros(1, dtype=np.float32)  # the ABI's weights slot: the pool has none


@dataclass(frozen=True)
class PackedMaxPool:
    """The kernel's operands for one pool over one image [1, C, H, W] -> [1, C, H // 2, W // 2]."""

    c: int
    h: int
    w: int
    table: np.ndarray  # i32 [HEADER_SIZE]
    workgroups: int
    out_pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # zeros written around the output: top, bottom, left, right

    @property
    def weights(self) -> np.ndarray:
        return UNUSED_WEIGHTS

    @property
    def in_shape(self) -> tuple[int, int, int, int]:
        return (1, self.c, self.h, self.w)

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        return (1, self.c, self.h // 2, self.w // 2)

    @property
    def out_buffer_shape(self) -> tuple[int, int, int, int]:
        """The buffer the kernel writes: out_shape, or with out_pad the next pattern conv's padded input."""
        return padded_shape(self.out_shape, self.out_pad)


def pack_maxpool(c: int, h: int, w: int, *, out_pad: tuple[int, int, int, int] = (0, 0, 0, 0),
                 workgroups: int | None = None) -> PackedMaxPool:
    """A 2x2 / stride-2 max pool of a [1, c, h, w] image (h, w >= 2); out_pad: write the output with these zeros
    around it (microkernel_abi.consumer_pads of the pattern conv reading it); workgroups: at most this many."""
    if c < 1 or h < 2 or w < 2:
        raise ConfigError(f"pack_maxpool: a 2x2 pool needs an image of at least 2x2, got {c}x{h}x{w}")
    ho, wo = h // 2, w // 2
    limit = workgroups or DEFAULT_WORKGROUPS
    groups = max(1, min(limit, c, c * ho * wo // MIN_OUTPUTS_PER_WORKGROUP))
    cpg = -(-c // groups)
    out_pad = tuple(int(v) for v in out_pad)
    table = header_words(H, {"MAGIC": ABI_MAGIC, "C": c, "H": h, "W": w, "HO": ho, "WO": wo, "CPG": cpg,
                             **padded_plane_slots("OUT", ho, wo, out_pad)}, HEADER_SIZE)
    return PackedMaxPool(c, h, w, table, -(-c // cpg), out_pad)


def reference(x: np.ndarray) -> np.ndarray:
    """What the kernel computes, in numpy: for tests."""
    n, c, h, w = x.shape
    ho, wo = h // 2, w // 2
    return x[:, :, :2 * ho, :2 * wo].reshape(n, c, ho, 2, wo, 2).max(axis=(3, 5))


def run_maxpool(packed: PackedMaxPool, x: np.ndarray, target: str = "host") -> np.ndarray:
    """Runs every workgroup in turn on one thread with the object for `target`; x [1, C, H, W]. Returns
    out_buffer_shape (with out_pad, the padded plane)."""
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if x.shape != packed.in_shape:
        raise ConfigError(f"input must be {packed.in_shape}, got {x.shape}")
    out = np.full(packed.out_buffer_shape, np.nan, dtype=np.float32)  # NaN: an element not written shows
    KernelLibrary.load(target, KERNEL).call([x, packed.weights, packed.table, packed.weights, out], packed.workgroups)
    return out
