"""Packs a 1x1 conv (a matrix product in NCHW) into the 1x1 microkernel's operands, and runs the built host object
through ctypes. Mirrors kernels/conv1x1.h exactly (header slots, weight packing); `lower-1x1-to-microkernels`
emits what this packs as constants, and tests feed the C kernel directly.

Three layouts (conv1x1.h's LAYOUT): 0 vectorizes over positions (blocks of 8 filters x vectors of positions), 1 over
filters (blocks of 32 filters x a few positions), for small images whose positions leave vector lanes empty
(filter_layout), and 2 for one position, a Linear layer at batch 1 (lower-linear-to-microkernels): a
matrix-vector product in blocks of up to 1024 filters (vector_block) that skips the weights of zero inputs.

Work split (split_work, split_work_filters): one workgroup is a group of filter blocks over a panel of positions;
a layer has about `workgroups` of them (enough for 2-8 threads). Layout 0 splits positions first, and a panel
holds at most PANEL_BYTES of input (C x panel floats); layout 1 splits filters first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spattern.errors import ConfigError
from spattern.microkernels.microkernel_abi import (DEFAULT_WORKGROUPS, KernelLibrary, header_words, padded_plane_slots,
                                                   padded_shape)

ABI_MAGIC = 0x53504732  # "SPG2"
BLOCK = 8  # SPG_BLOCK: filters per packed block, layout 0
FBLOCK = 32  # SPG_FBLOCK: filters per packed block, layout 1
HEADER_SIZE = 24  # SPG_H_SIZE
H = {name: i for i, name in enumerate(
    "MAGIC C F P BLOCK NBLOCKS BLOCKS_PER_GROUP NPANELS PANEL RELU RESIDUAL H W OUT_HP OUT_WP OUT_TOP "
    "OUT_LEFT LAYOUT".split())}
PANEL_ALIGN = 32  # positions: a multiple of every object's microtile (AVX-512: 2 x 16)
PANEL_BYTES = 512 * 1024  # input bytes per panel: a quarter of this machine's 2 MiB L2 per core
FILTER_PANEL_ALIGN = 14  # positions: a multiple of every object's layout-1 microtile (AVX-512: 7, else 2)
FILTER_LAYOUT_WASTE = 0.2  # layout 1 where layout 0 would leave more than this share of lanes empty
FILTER_LAYOUT_MIN_C = 256  # ... over at least this many channels (filter_layout)
VBLOCK_MAX = 1024  # SPG_VBLOCK_MAX: filters per block, layout 2 (a channel's row of a block: 4 KiB at most)
VECTOR_MIN_BLOCKS = 4  # layout 2: blocks (= workgroups) per layer when the filters allow, for 2-4 threads
MIN_MACS_PER_WORKGROUP = 1 << 20
KERNEL = "conv1x1"


@dataclass(frozen=True)
class PackedConv1x1:
    """The kernel's operands for one 1x1 conv over one image [1, C, H, W] -> [1, F, H, W]."""

    c: int
    f: int
    h: int
    w: int
    weights: np.ndarray  # f32 [nblocks * C * block + F]: packed [nblocks][C][block] (block: the layout's), then bias
    table: np.ndarray  # i32 [HEADER_SIZE]
    workgroups: int
    relu: bool
    residual: bool
    out_pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # zeros written around the output: top, bottom, left, right

    @property
    def in_shape(self) -> tuple[int, int, int, int]:
        return (1, self.c, self.h, self.w)

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        return (1, self.f, self.h, self.w)

    @property
    def out_buffer_shape(self) -> tuple[int, int, int, int]:
        """The buffer the kernel writes: out_shape, or with out_pad the next pattern conv's padded input."""
        return padded_shape(self.out_shape, self.out_pad)

    @property
    def layout(self) -> int:
        """0: vectors over positions, 1: over filters (filter_layout), 2: one position (choose_layout)."""
        return int(self.table[H["LAYOUT"]])


def split_work(c: int, f: int, p: int, workgroups: int = DEFAULT_WORKGROUPS,
               panel_bytes: int = PANEL_BYTES) -> tuple[int, int, int, int]:
    """(blocks per group, groups, panel length, panels) for a C -> F conv over P positions. Positions are split
    first: a panel's input is then read from memory once and reused by every filter block (split the filters
    instead and each group reads the whole input again); filters are split too only when there are too few
    panels (small images). The last panel also takes the positions past panels * panel length."""
    nblocks = -(-f // BLOCK)
    max_panel = max(PANEL_ALIGN, panel_bytes // (4 * c) // PANEL_ALIGN * PANEL_ALIGN)
    per_workgroup = -(-p // workgroups)
    panel = min(max_panel, -(-per_workgroup // PANEL_ALIGN) * PANEL_ALIGN)
    npanels = max(1, p // panel)
    groups = min(nblocks, max(1, round(workgroups / npanels)))
    bpg = -(-nblocks // groups)
    return bpg, -(-nblocks // bpg), min(panel, p), npanels


def split_work_filters(f: int, p: int, workgroups: int = DEFAULT_WORKGROUPS) -> tuple[int, int, int, int]:
    """split_work for layout 1: filter blocks are split first (a small image's input is read by every group
    anyway, and it fits L2); positions too only when there are fewer blocks than workgroups."""
    nblocks = -(-f // FBLOCK)
    groups = min(nblocks, workgroups)
    bpg = -(-nblocks // groups)
    groups = -(-nblocks // bpg)
    npanels = max(1, min(round(workgroups / groups), p // (2 * FILTER_PANEL_ALIGN)))
    panel = p if npanels == 1 else p // npanels // FILTER_PANEL_ALIGN * FILTER_PANEL_ALIGN
    return bpg, groups, panel, npanels


def position_lanes(p: int) -> int:
    """Positions layout 0 computes for an image of p (>= 16) on AVX-512 (conv1x1.c's spg_microtiles): microtiles
    of 32, a remainder of up to 16 in one vector, a larger one in a whole microtile moved back (overlapping)."""
    vector = PANEL_ALIGN // 2
    rem = p % PANEL_ALIGN
    return p - rem + (0 if rem == 0 else vector if rem <= vector else PANEL_ALIGN)


def filter_layout(c: int, p: int) -> bool:
    """Whether a C-channel conv over p positions uses layout 1 (vectors over filters): when layout 0 would fall
    back to scalars (fewer positions than a vector), or waste more than FILTER_LAYOUT_WASTE of its lanes (7x7: 49
    positions in 64) over at least FILTER_LAYOUT_MIN_C channels. Measured one core, AVX-512: layout 1 is
    1.06-1.09x layout 0 on ResNet-50's 7x7 convs and 1.2-1.3x with fewer filters (weights in L2), but its
    microtile is slower where neither wastes lanes (0.63-0.82x at 14x14 and 28x28), and with few channels its
    transposing write-out dominates (0.8-0.9x at 64-128 channels)."""
    return p < PANEL_ALIGN // 2 or (c >= FILTER_LAYOUT_MIN_C and p < (1 - FILTER_LAYOUT_WASTE) * position_lanes(p))


def choose_layout(c: int, p: int) -> int:
    """The layout pack_conv1x1 picks: 2 for one position, else 1 where filter_layout says so, else 0."""
    return 2 if p == 1 else int(filter_layout(c, p))


def vector_block(f: int) -> int:
    """Filters per block in layout 2: VECTOR_MIN_BLOCKS blocks (workgroups) when F allows, each a multiple of 16
    (a whole number of vectors on every ISA) and at most VBLOCK_MAX. Measured on VGG-16's 4096-filter layers
    (a C harness, two threads): 1024-filter blocks, whose channel rows are 4 KiB, skip zero inputs best."""
    per_block = -(-f // VECTOR_MIN_BLOCKS)
    return min(VBLOCK_MAX, -(-per_block // 16) * 16)


def default_workgroups(macs: int) -> int:
    """About DEFAULT_WORKGROUPS, fewer for small convs: a workgroup does at least MIN_MACS_PER_WORKGROUP
    (a few tens of microseconds), since each costs IREE a few microseconds to schedule (ResNet-18's 256->512
    downsample at 7x7 in 32 workgroups: 0.20 ms on one thread, IREE's matmul 0.15), and an even count, so that
    two threads get equal shares."""
    return max(2, min(DEFAULT_WORKGROUPS, macs // MIN_MACS_PER_WORKGROUP) // 2 * 2)


def pack_conv1x1(weight: np.ndarray, bias: np.ndarray | None, h: int, w: int, *, relu: bool = False,
                 residual: bool = False, workgroups: int | None = None,
                 out_pad: tuple[int, int, int, int] = (0, 0, 0, 0), layout: int | None = None) -> PackedConv1x1:
    """weight [F, C] or [F, C, 1, 1], bias [F] or None; h x w the image the conv runs over; out_pad: write the
    output with these zeros around it (microkernel_abi.consumer_pads of the pattern conv reading it);
    workgroups: about how many (None: default_workgroups; layout 2 has one per block); layout: 0, 1 or 2
    (None: choose_layout decides)."""
    wt = np.asarray(weight, dtype=np.float32)
    if wt.ndim == 4:
        if wt.shape[2:] != (1, 1):
            raise ConfigError(f"pack_conv1x1: weight {wt.shape} is not a 1x1 conv's")
        wt = wt.reshape(wt.shape[:2])
    if wt.ndim != 2 or h < 1 or w < 1:
        raise ConfigError(f"pack_conv1x1: need a [F, C] weight and a positive image size, got {wt.shape}, {h}x{w}")
    f, c = wt.shape
    p = h * w
    if layout is None:
        layout = choose_layout(c, p)
    if layout not in (0, 1, 2) or (layout == 2 and p != 1):
        raise ConfigError(f"pack_conv1x1: layout must be 0, 1 or (for a 1x1 image) 2, got {layout} for {h}x{w}")
    block = vector_block(f) if layout == 2 else FBLOCK if layout else BLOCK
    nblocks = -(-f // block)
    padded = np.zeros((nblocks * block, c), dtype=np.float32)
    padded[:f] = wt
    packed = padded.reshape(nblocks, block, c).transpose(0, 2, 1)  # [nblocks][C][block]
    b = np.zeros(f, dtype=np.float32) if bias is None else np.asarray(bias, dtype=np.float32).reshape(f)
    wgs = workgroups or default_workgroups(c * f * p)
    if layout == 2:
        bpg, groups, panel, npanels = 1, nblocks, 1, 1
    elif layout == 1:
        bpg, groups, panel, npanels = split_work_filters(f, p, wgs)
    else:
        bpg, groups, panel, npanels = split_work(c, f, p, wgs)
    out_pad = tuple(int(v) for v in out_pad)
    table = header_words(H, {"MAGIC": ABI_MAGIC, "C": c, "F": f, "P": p, "BLOCK": block, "NBLOCKS": nblocks,
                             "BLOCKS_PER_GROUP": bpg, "NPANELS": npanels, "PANEL": panel, "RELU": int(relu),
                             "RESIDUAL": int(residual), "H": h, "W": w, "LAYOUT": layout,
                             **padded_plane_slots("OUT", h, w, out_pad)}, HEADER_SIZE)
    weights = np.concatenate([packed.reshape(-1), b]).astype(np.float32)
    return PackedConv1x1(c, f, h, w, weights, table, groups * npanels, bool(relu), bool(residual), out_pad)


def reference(packed_weight: np.ndarray, bias: np.ndarray | None, x: np.ndarray) -> np.ndarray:
    """What the kernel computes, in numpy (float64 sums): for tests."""
    f = packed_weight.shape[0]
    y = np.einsum("fc,nchw->nfhw", packed_weight.reshape(f, -1).astype(np.float64), x.astype(np.float64))
    return y + (0 if bias is None else np.asarray(bias, np.float64).reshape(1, f, 1, 1))


def run_conv1x1(packed: PackedConv1x1, x: np.ndarray, target: str = "host",
                residual: np.ndarray | None = None) -> np.ndarray:
    """Runs every workgroup in turn on one thread with the host object; x [1, C, H, W]. Returns out_buffer_shape
    (with out_pad, the padded plane)."""
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if x.shape != packed.in_shape:
        raise ConfigError(f"input must be {packed.in_shape}, got {x.shape}")
    if packed.residual != (residual is not None):
        raise ConfigError("pass `residual` exactly when the conv was packed with residual=True")
    res = (packed.weights if residual is None
           else np.ascontiguousarray(np.asarray(residual, dtype=np.float32).reshape(packed.out_shape)))
    out = np.full(packed.out_buffer_shape, np.nan, dtype=np.float32)  # NaN: an element not written shows
    KernelLibrary.load(target, KERNEL).call([x, packed.weights, packed.table, res, out], packed.workgroups)
    return out


