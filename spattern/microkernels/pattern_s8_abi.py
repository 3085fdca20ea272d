"""Packs an int8 pattern conv into the int8 pattern microkernel's operands (kernels/pattern_conv_s8.h), and runs
the built host object through ctypes.

The arithmetic is qarith's (u8 activations x s8 weights accumulated in int32 with the zero point folded into the
bias, then the float32 requantization; optionally the integer residual add), so the kernel's output is compared
with `spattern.pruning.qreference`-style integer convolutions bit for bit. Why the tables look as they do: the
kernel is output-stationary (one filter's accumulators stay in registers across a block of channels), so its
kernels are ordered (chunk, channel block, filter, channel), and a block's distinct (channel, pattern) pairs, its
"slots", each get their 4 tap rows interleaved once per tile into one vector of 4-byte groups, the operand every
kernel of that slot's dot products reads (kernels/pattern_conv_s8.c).

The packer serializes the chunks it is given (filter-kernel-reorder's, as for fp32) and blocks the channels of
each chunk greedily so that a block's slots fit the kernel's slot buffer (PREP_SLOTS): that is the kernel's
buffer size, not a schedule choice. Lowering int8 through the passes (issue 21 item 4) is not built yet; tests and
bench/int8_kernel.py call this packer directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spattern.errors import ConfigError, PlanError
from spattern.microkernels.microkernel_abi import (DEFAULT_WORKGROUPS, ConvGeometry, ConvOperandShapes, KernelLibrary,
                                                   _as_words, header_words, padded_plane_slots, split_tiles)
from spattern.patterns import CANDIDATES

ABI_MAGIC = 0x53505138  # "SPQ8"
TILE = 96  # SPQ_TILE: output positions per tile, as the fp32 kernel's (ConvGeometry's padding assumes it)
CHUNK = 128  # SPQ_CHUNK: filters per chunk at most (sizes the int32 accumulator buffer: 128 x 112 words)
PREP_SLOTS = 128  # SPQ_PREP_SLOTS: (channel, pattern) slots per channel block (the prepared-tap buffer: 48 KiB)
HEADER_SIZE = 48  # SPQ_H_SIZE
H = {name: i for i, name in enumerate(
    "MAGIC N C F HP WP HO WO STRIDE NCHUNKS NTILES NGROUPS TILES_PER_GROUP K NBLOCKS NSLOTS OFF_CHUNK_FIL "
    "OFF_CHUNK_NF OFF_CHUNK_BLK OFF_BLK_SLOT OFF_SLOT_CH OFF_SLOT_PID OFF_FK_START OFF_KSLOT TILE CHUNK PREP_SLOTS "
    "ZP_C LO_C HI_C RESIDUAL ZP_R ZP_Y LO_Y HI_Y ADD_MA ADD_MB ADD_SHIFT PAD_VALUE OUT_HP OUT_WP OUT_TOP OUT_LEFT "
    "RES_HP RES_WP RES_TOP RES_LEFT".split())}
assert TILE == 96, "ConvGeometry pads for 96-position tiles"

_TAPS = np.asarray(CANDIDATES, dtype=np.int64)  # [56, 4]


@dataclass(frozen=True)
class ResidualAdd:
    """The integer residual add fused after the conv's requantization (qarith.add_requantize): y =
    clamp((((c - zp_c) ma + (r - zp_r) mb + 2^(shift-1)) >> shift) + zp_y, lo, hi), c the conv's u8 value."""

    zp_r: int
    ma: int
    mb: int
    shift: int
    zp_y: int
    lo: int = 0
    hi: int = 255


@dataclass(frozen=True)
class PackedConvS8(ConvOperandShapes):
    """The int8 kernel's operands: i32 words (kernel weight words, then bias, wsum and the float32 multipliers
    per filter), the i32 table and the call's geometry."""

    geometry: ConvGeometry
    weights: np.ndarray
    table: np.ndarray
    workgroups: int
    kept_kernels: int
    zp_in: int
    residual: ResidualAdd | None = None
    out_pad: tuple[int, int, int, int] = (0, 0, 0, 0)
    res_pad: tuple[int, int, int, int] = (0, 0, 0, 0)


def default_chunks(f: int) -> tuple[np.ndarray, ...]:
    """Consecutive filters in chunks of at most CHUNK, as even as possible."""
    n = math.ceil(f / CHUNK)
    return tuple(np.asarray(a, dtype=np.int64) for a in np.array_split(np.arange(f), n))


def kernel_patterns(w_q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(filters, channels, pattern ids) of the kept kernels of a pattern-pruned int8 weight [F, C, 3, 3]; a kernel
    whose nonzero taps fit no pattern is a PlanError (a kernel with fewer than 4 nonzeros gets the first
    pattern holding them: its other taps are zero weights)."""
    f, c = w_q.shape[:2]
    nz = w_q.reshape(f, c, 9) != 0
    ff, cc = np.nonzero(nz.any(2))
    masks = nz[ff, cc]  # [K, 9]
    allowed = np.zeros((len(CANDIDATES), 9), dtype=bool)
    allowed[np.arange(len(CANDIDATES))[:, None], _TAPS] = True
    fits = ~np.any(masks[:, None, :] & ~allowed[None], axis=2)  # [K, 56]
    if not np.all(fits.any(1)):
        i = int(np.nonzero(~fits.any(1))[0][0])
        raise PlanError(f"kernel (filter {ff[i]}, channel {cc[i]}) keeps taps {np.nonzero(masks[i])[0].tolist()}: "
                        "no 4-tap pattern holds them")
    return ff, cc, fits.argmax(1)


def pack_conv_s8(w_q: np.ndarray, bias_q: np.ndarray, requant: np.ndarray, input_shape: tuple[int, int, int, int],
                 zp_in: int, zp_c: int, lo_c: int = 0, hi_c: int = 255, stride: int = 1, padding: int = 1,
                 chunks: tuple[np.ndarray, ...] | None = None, residual: ResidualAdd | None = None,
                 out_pad: tuple[int, int, int, int] = (0, 0, 0, 0), res_pad: tuple[int, int, int, int] = (0, 0, 0, 0),
                 workgroups: int = DEFAULT_WORKGROUPS) -> PackedConvS8:
    """Serializes an int8 pattern conv: w_q int8 [F, C, 3, 3] (pattern-pruned), bias_q int32 [F] (zero point
    folded, qarith.fold_bias), requant float32 [F] (qarith.requant_scale), the conv's output grid (zp_c, clamp
    lo_c..hi_c). out_pad: the output written with that many values around it (the next conv's padded input),
    each holding the final output's zero point (real 0)."""
    w_q = np.asarray(w_q)
    if w_q.dtype != np.int8 or w_q.ndim != 4 or w_q.shape[2:] != (3, 3):
        raise ConfigError(f"the int8 pattern conv takes int8 weights [F, C, 3, 3], got {w_q.dtype} {w_q.shape}")
    f, c = w_q.shape[:2]
    if np.any(w_q == -128):
        raise PlanError("int8 weights must lie in [-127, 127] (qarith.W_MAX)")
    if stride not in (1, 2) or padding not in (0, 1):
        raise ConfigError(f"the int8 pattern kernel supports stride 1/2 and padding 0/1, got {stride}/{padding}")
    if len(input_shape) != 4 or input_shape[1] != c:
        raise ConfigError(f"input shape {input_shape} must be [N, {c}, H, W]")
    geo = ConvGeometry(int(input_shape[0]), c, int(input_shape[2]), int(input_shape[3]), f, stride, padding)
    if geo.ho < 1 or geo.wo < 1:
        raise ConfigError(f"input {input_shape} is too small for a 3x3 conv with padding {padding}")
    for name, v in (("zp_in", zp_in), ("zp_c", zp_c), ("lo_c", lo_c), ("hi_c", hi_c)):
        if not 0 <= int(v) <= 255:
            raise ConfigError(f"{name} must be a u8 value, got {v}")
    chunks = default_chunks(f) if chunks is None else chunks
    ff, cc, pp = kernel_patterns(w_q)
    chunk_of = np.full(f, -1, dtype=np.int64)
    for i, members in enumerate(chunks):
        members = np.asarray(members, dtype=np.int64)
        if not 1 <= len(members) <= CHUNK or np.any(np.diff(members) <= 0) or np.any(chunk_of[members] >= 0):
            raise PlanError(f"chunk {i}: 1..{CHUNK} ascending filters that no other chunk holds")
        chunk_of[members] = i
    if np.any(chunk_of < 0):
        raise PlanError("chunks: some filters are in no chunk")
    local_of = np.zeros(f, dtype=np.int64)
    for members in chunks:
        local_of[np.asarray(members)] = np.arange(len(members))

    words = w_q.reshape(f, c, 9)[ff[:, None], cc[:, None], _TAPS[pp]].astype(np.int8)  # [K, 4] tap order
    chunk_fil = np.zeros((len(chunks), CHUNK), dtype=np.int32)
    chunk_nf = np.array([len(m) for m in chunks], dtype=np.int32)
    for i, members in enumerate(chunks):
        chunk_fil[i, : len(members)] = members
    order, chunk_blk, blk_slot, slot_ch, slot_pid, fk_start, kslot = [], [0], [0], [], [], [], []
    for i in range(len(chunks)):
        mine = np.nonzero(chunk_of[ff] == i)[0]
        for block in _channel_blocks(cc[mine], pp[mine]):
            sel = mine[np.isin(cc[mine], block)]
            pairs = sorted(set(zip(cc[sel].tolist(), pp[sel].tolist())))
            slot_of = {pair: s for s, pair in enumerate(pairs)}
            sel = sel[np.lexsort((cc[sel], local_of[ff[sel]]))]  # by (filter, channel)
            base = len(order)
            counts = np.bincount(local_of[ff[sel]], minlength=CHUNK)
            fk_start += (base + np.concatenate([[0], np.cumsum(counts)[:-1]])).tolist()
            order += sel.tolist()
            kslot += [slot_of[(int(cc[k]), int(pp[k]))] for k in sel]
            slot_ch += [p[0] for p in pairs]
            slot_pid += [p[1] for p in pairs]
            blk_slot.append(len(slot_ch))
        chunk_blk.append(len(blk_slot) - 1)
    k = len(order)
    fk_start.append(k)
    order_a = np.asarray(order, dtype=np.int64)
    wwords = np.ascontiguousarray(words[order_a]).view(np.int32).reshape(-1) if k else np.zeros(0, np.int32)
    wsum = w_q.reshape(f, -1).astype(np.int64).sum(1).astype(np.int32)
    bias_q = np.asarray(bias_q, dtype=np.int32).reshape(f)
    requant = np.asarray(requant, dtype=np.float32).reshape(f)
    weights = np.concatenate([wwords, bias_q, wsum, requant.view(np.int32)]).astype(np.int32)

    nblocks = len(blk_slot) - 1
    ntiles = geo.ntiles()
    ngroups, tpg = split_tiles(geo, len(chunks), workgroups)
    parts = [chunk_fil.reshape(-1), chunk_nf, np.asarray(chunk_blk, np.int32), np.asarray(blk_slot, np.int32),
             np.asarray(slot_ch, np.int32), np.asarray(slot_pid, np.int32), np.asarray(fk_start, np.int32),
             _as_words(np.asarray(kslot, dtype=np.uint8))]
    offsets, pos = [], HEADER_SIZE
    for part in parts:
        offsets.append(pos)
        pos += len(part)
    values = {
        "MAGIC": ABI_MAGIC, "N": geo.n, "C": c, "F": f, "HP": geo.hp, "WP": geo.wp, "HO": geo.ho, "WO": geo.wo,
        "STRIDE": stride, "NCHUNKS": len(chunks), "NTILES": ntiles, "NGROUPS": ngroups, "TILES_PER_GROUP": tpg,
        "K": k, "NBLOCKS": nblocks, "NSLOTS": len(slot_ch), "TILE": TILE, "CHUNK": CHUNK, "PREP_SLOTS": PREP_SLOTS,
        "ZP_C": int(zp_c), "LO_C": int(lo_c), "HI_C": int(hi_c), "RESIDUAL": int(residual is not None),
        "PAD_VALUE": int(residual.zp_y if residual else zp_c),
    }
    for name, off in zip(("CHUNK_FIL", "CHUNK_NF", "CHUNK_BLK", "BLK_SLOT", "SLOT_CH", "SLOT_PID", "FK_START",
                          "KSLOT"), offsets):
        values[f"OFF_{name}"] = off
    if residual is not None:
        values.update({"ZP_R": residual.zp_r, "ZP_Y": residual.zp_y, "LO_Y": residual.lo, "HI_Y": residual.hi,
                       "ADD_MA": residual.ma, "ADD_MB": residual.mb, "ADD_SHIFT": residual.shift})
        values.update(padded_plane_slots("RES", geo.ho, geo.wo, res_pad))
    values.update(padded_plane_slots("OUT", geo.ho, geo.wo, out_pad))
    table = np.concatenate([header_words(H, values, HEADER_SIZE), *[p.astype(np.int32) for p in parts]])
    return PackedConvS8(geo, weights, table, geo.n * len(chunks) * ngroups, k, int(zp_in), residual,
                        tuple(out_pad), tuple(res_pad) if residual else (0, 0, 0, 0))


def _channel_blocks(channels: np.ndarray, patterns: np.ndarray) -> list[list[int]]:
    """Consecutive channels grouped so that each group's distinct (channel, pattern) pairs fit PREP_SLOTS; at
    least one (empty) block, so every chunk initializes its accumulators."""
    per_channel: dict[int, int] = {}
    for ch in sorted(set(channels.tolist())):
        per_channel[ch] = len(set(patterns[channels == ch].tolist()))
    blocks: list[list[int]] = [[]]
    used = 0
    for ch, n in per_channel.items():
        if used + n > PREP_SLOTS and blocks[-1]:
            blocks.append([])
            used = 0
        blocks[-1].append(ch)
        used += n
    return blocks


def pad_input_s8(x_q: np.ndarray, packed: PackedConvS8) -> np.ndarray:
    """The u8 input padded as the kernel reads it, with the input's zero point (real 0)."""
    top, bottom, left, right = packed.geometry.pads()
    return np.ascontiguousarray(np.pad(np.asarray(x_q, np.uint8), ((0, 0), (0, 0), (top, bottom), (left, right)),
                                       constant_values=packed.zp_in))


def run_conv_s8(packed: PackedConvS8, x_q: np.ndarray, target: str = "host",
                residual: np.ndarray | None = None) -> np.ndarray:
    """Pads the u8 input [N, C, H, W] and runs every workgroup of the packed conv on this thread; returns the u8
    output buffer (out_buffer_shape)."""
    if (residual is None) != (packed.residual is None):
        raise ConfigError("pass `residual` exactly when the conv was packed with a ResidualAdd")
    lib = KernelLibrary.load(target, "pattern_conv_s8")
    xp = pad_input_s8(x_q, packed)
    out = np.empty(packed.out_buffer_shape, dtype=np.uint8)
    res = (np.zeros(16, np.uint8) if residual is None
           else np.ascontiguousarray(np.asarray(residual, np.uint8).reshape(packed.res_buffer_shape)))
    lib.call([xp, packed.weights, packed.table, res, out], packed.workgroups)
    return out
