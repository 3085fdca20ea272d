"""Packs a pattern-pruned 3x3 conv into the pattern microkernel's operands (FKW weights + index tables), and
runs the built host object through ctypes.

The packer is pure numpy and mirrors kernels/pattern_conv.h exactly (header slots, table order); it is what
`lower-to-microkernels` emits as constants, and what tests and benchmarks feed the C kernel directly, so the
kernel's numerics can be checked against torch in milliseconds without compiling an IREE module.

It serializes a `ConvSchedule`, the tables the passes decided (filter-kernel-reorder's chunks and kernel order,
compact-weights' chunk-local filter indices, group-patterns' runs as reuse-loads marked them), and decides
nothing itself: it checks that the tables are ones the kernel can follow (PlanError naming the table; the kernel
traps on bad tables too, kernels/sp_check.h) and writes them out as they are.
"""

from __future__ import annotations

import ctypes
import math
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spattern.errors import CompileError, ConfigError, PlanError, ToolUnavailableError
from spattern.patterns import CANDIDATES

ABI_MAGIC = 0x53504B33  # "SPK3"
TILE = 96  # SPK_TILE
CHUNK = 128  # SPK_CHUNK: the most filters per chunk (the kernel's accumulator buffer and chunk_fil stride)
HEADER_SIZE = 32  # SPK_H_SIZE
# Header slots, in the order of the enum in kernels/pattern_conv.h.
H = {name: i for i, name in enumerate(
    "MAGIC N C F HP WP HO WO STRIDE RELU NCHUNKS NTILES NGROUPS TILES_PER_GROUP K OFF_FIDX OFF_RUN_START "
    "OFF_RUN_PID OFF_RUN_K OFF_CHUNK_FIL OFF_CHUNK_NF TILE CHUNK RESIDUAL OUT_HP OUT_WP OUT_TOP OUT_LEFT RES_HP RES_WP "
    "RES_TOP RES_LEFT".split())}
MAX_VECTOR = 16  # widest vector any object loads (AVX-512): sizes the extra zero padding
DEFAULT_WORKGROUPS = 32  # enough workgroups per layer to balance 2-8 threads

_TAPS = np.asarray(CANDIDATES, dtype=np.int64)  # [56, 4]


@dataclass(frozen=True)
class ConvGeometry:
    """Shapes of one conv call: the input [N, C, H, W] and what the kernel needs around it."""

    n: int
    c: int
    h: int
    w: int
    f: int
    stride: int
    padding: int

    @property
    def ho(self) -> int:
        return (self.h + 2 * self.padding - 3) // self.stride + 1

    @property
    def wo(self) -> int:
        return (self.w + 2 * self.padding - 3) // self.stride + 1

    @property
    def wp(self) -> int:
        return self.w + 2 * self.padding

    def ntiles(self) -> int:
        if self.stride == 1:
            return math.ceil(self.ho * self.wp / TILE)
        return math.ceil(self.ho * self.wo / TILE)

    def pads(self) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) zeros around the input: the conv's padding, plus extra bottom rows so
        whole tiles (and whole vectors) can be read past the last output row without a bounds check."""
        wp = self.wp
        if self.stride == 1:
            last = self.ntiles() * TILE + 2 * wp + 2 + MAX_VECTOR
        else:  # taps are de-interleaved from whole vectors: up to 2 vectors past a row segment's last window
            last = (2 * (self.ho - 1) + 2) * wp + 2 * self.wo + 2 + 4 * MAX_VECTOR
        rows = max(math.ceil(last / wp), self.h + 2 * self.padding)
        return self.padding, rows - self.h - self.padding, self.padding, self.padding

    @property
    def hp(self) -> int:
        top, bottom, _, _ = self.pads()
        return self.h + top + bottom


def consumer_pads(n: int, c: int, h: int, w: int, stride: int, padding: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) zeros the microkernel of a conv with this [N, C, H, W] input reads around it
    (what `pad_input` adds): what a producer writes with out_pad to stand in for that pad."""
    return ConvGeometry(n, c, h, w, 1, stride, padding).pads()


class ConvOperandShapes:
    """The buffer shapes of a packed 3x3 pattern conv (fp32 PackedConv, int8 PackedConvS8): from its geometry,
    kept kernels and the output / residual paddings."""

    geometry: ConvGeometry
    kept_kernels: int
    out_pad: tuple[int, int, int, int]
    res_pad: tuple[int, int, int, int]

    @property
    def out_shape(self) -> tuple[int, int, int, int]:
        g = self.geometry
        return g.n, g.f, g.ho, g.wo

    @property
    def out_buffer_shape(self) -> tuple[int, int, int, int]:
        """The output buffer the kernel writes: out_shape, or with out_pad the next conv's padded input."""
        return padded_shape(self.out_shape, self.out_pad)

    @property
    def res_buffer_shape(self) -> tuple[int, int, int, int]:
        """The residual buffer the kernel reads: out_shape, or with res_pad another conv's padded output."""
        return padded_shape(self.out_shape, self.res_pad)

    @property
    def padded_in_shape(self) -> tuple[int, int, int, int]:
        g = self.geometry
        return g.n, g.c, g.hp, g.wp

    def useful_macs(self) -> int:
        """Multiply-adds the layer really needs: 4 per kept kernel per output position."""
        g = self.geometry
        return 4 * self.kept_kernels * g.n * g.ho * g.wo


def split_tiles(geo: ConvGeometry, nchunks: int, workgroups: int) -> tuple[int, int]:
    """(groups of tiles per image, tiles per group): about `workgroups` workgroups of (image, group, chunk) in all,
    every tile in one group and no group empty."""
    ntiles = geo.ntiles()
    per_image = max(1, math.ceil(workgroups / (geo.n * nchunks)))
    ngroups = min(ntiles, per_image)
    tpg = math.ceil(ntiles / ngroups)
    return math.ceil(ntiles / tpg), tpg


@dataclass(frozen=True)
class PackedConv(ConvOperandShapes):
    """The microkernel's operands for one conv: f32 weights [4K + F], i32 table, and the call's geometry."""

    geometry: ConvGeometry
    weights: np.ndarray
    table: np.ndarray
    workgroups: int
    relu: bool
    kept_kernels: int
    residual: bool = False  # the kernel adds a residual [N, F, Ho, Wo] (its own operand) before the ReLU
    out_pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # zeros written around the output: top, bottom, left, right
    res_pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # the residual's padding (another conv's padded output)


@dataclass(frozen=True)
class ConvSchedule:
    """What the passes decided for one conv, as the tables the kernel reads (pack_conv serializes them as they are).

    chunks: per chunk of work, its global filters in ascending order (a filter's chunk-local index is its position);
    the chunks partition [0, F), each of 1..CHUNK filters (filter-kernel-reorder).
    filters, channels, patterns [K]: the kept kernel the kernel reads at each position (its global filter, input
    channel and global pattern id, 0..55), in the kernel's reading order: grouped by (chunk, channel) in ascending
    order (filter-kernel-reorder's kernel order).
    kernel_filter [K]: each kernel's chunk-local filter index (compact-weights).
    runs [R, 3]: (first kernel, global pattern id, count): consecutive kernels of one (chunk, channel) and one
    pattern that load the pattern's taps once (group-patterns' runs, split as reuse-loads marked them)."""

    chunks: tuple[np.ndarray, ...]
    filters: np.ndarray
    channels: np.ndarray
    patterns: np.ndarray
    kernel_filter: np.ndarray
    runs: np.ndarray


def pack_conv(weight: np.ndarray, schedule: ConvSchedule, bias: np.ndarray | None,
              input_shape: tuple[int, int, int, int], stride: int = 1, padding: int = 1, relu: bool = False,
              workgroups: int = DEFAULT_WORKGROUPS, check_zeros: bool = True, residual: bool = False,
              out_pad: tuple[int, int, int, int] = (0, 0, 0, 0),
              res_pad: tuple[int, int, int, int] = (0, 0, 0, 0)) -> PackedConv:
    """Serializes a pruned dense weight [F, C, 3, 3] for an input of shape [N, C, H, W] with the tables of
    `schedule`, as they are: it checks them (PlanError naming the table) and decides nothing. Weights outside the
    scheduled kernels' patterns must be zero (check_zeros), so a schedule that drops a kept kernel is an error.
    relu / residual: the fused epilogue, out = relu(conv + bias + residual), the residual [N, F, Ho, Wo] being the
    kernel's 4th buffer. out_pad (top, bottom, left, right): write the output with that many zeros around it, as
    the next conv's padded input (`consumer_pads` of that conv), so no pad runs between the two convs. res_pad:
    the residual is read from a buffer with that padding around it (a producer's padded output, read in place of
    its interior)."""
    weight = np.asarray(weight, dtype=np.float32)
    if weight.ndim != 4 or weight.shape[2:] != (3, 3):
        raise ConfigError(f"pattern conv weight must be [F, C, 3, 3], got {weight.shape}")
    f, c = weight.shape[:2]
    if stride not in (1, 2) or padding not in (0, 1):
        raise ConfigError(f"pattern microkernels support stride 1/2 and padding 0/1, got {stride}/{padding}")
    if len(input_shape) != 4 or input_shape[1] != c:
        raise ConfigError(f"input shape {input_shape} must be [N, {c}, H, W]")
    geo = ConvGeometry(int(input_shape[0]), c, int(input_shape[2]), int(input_shape[3]), f, stride, padding)
    if geo.ho < 1 or geo.wo < 1:
        raise ConfigError(f"input {input_shape} is too small for a 3x3 conv with padding {padding}")
    out_pad, res_pad = tuple(int(p) for p in out_pad), tuple(int(p) for p in res_pad)
    for name, pads in (("out_pad", out_pad), ("res_pad", res_pad)):
        if len(pads) != 4 or min(pads) < 0:
            raise ConfigError(f"{name} must be 4 non-negative ints (top, bottom, left, right), got {pads}")
    chunk_of, local_of = _check_chunks(schedule.chunks, f)
    ff, cc, pp, run_first = _check_kernels(schedule, f, c, chunk_of, local_of)
    flat = weight.reshape(f, c, 9)
    if check_zeros:
        allowed = np.zeros((f, c, 9), dtype=bool)
        allowed[ff[:, None], cc[:, None], _TAPS[pp]] = True
        if np.any(flat[~allowed] != 0):
            raise PlanError("weights are non-zero outside their kernel's pattern (or in a kernel the schedule "
                            "does not list)")

    nch, k = len(schedule.chunks), len(ff)
    chunk_fil = np.zeros((nch, CHUNK), dtype=np.int32)
    chunk_nf = np.zeros(nch, dtype=np.int32)
    for i, members in enumerate(schedule.chunks):
        chunk_fil[i, : len(members)] = members
        chunk_nf[i] = len(members)
    fkw = flat[ff[:, None], cc[:, None], _TAPS[pp]].astype(np.float32)  # [K, 4], taps ascending
    group = chunk_of[ff] * c + cc  # (chunk, channel) of each kernel
    runs = np.asarray(schedule.runs, dtype=np.int64).reshape(-1, 3)
    run_k = np.append(run_first, k).astype(np.int32)
    run_pid = runs[:, 1].astype(np.int32)
    run_start = np.searchsorted(group[run_first], np.arange(nch * c + 1), side="left").astype(np.int32)

    ntiles = geo.ntiles()
    ngroups, tpg = split_tiles(geo, nch, workgroups)

    fidx = np.asarray(schedule.kernel_filter, dtype=np.int64).astype(np.uint8)
    parts = [_as_words(fidx), run_start, run_pid, run_k, chunk_fil.reshape(-1), chunk_nf]
    offsets, pos = [], HEADER_SIZE
    for part in parts:
        offsets.append(pos)
        pos += len(part)
    values = {
        "MAGIC": ABI_MAGIC, "N": geo.n, "C": c, "F": f, "HP": geo.hp, "WP": geo.wp, "HO": geo.ho, "WO": geo.wo,
        "STRIDE": stride, "RELU": int(relu), "NCHUNKS": nch, "NTILES": ntiles, "NGROUPS": ngroups,
        "TILES_PER_GROUP": tpg, "K": k, "OFF_FIDX": offsets[0], "OFF_RUN_START": offsets[1],
        "OFF_RUN_PID": offsets[2], "OFF_RUN_K": offsets[3], "OFF_CHUNK_FIL": offsets[4],
        "OFF_CHUNK_NF": offsets[5], "TILE": TILE, "CHUNK": CHUNK, "RESIDUAL": int(residual),
    }
    values.update(padded_plane_slots("OUT", geo.ho, geo.wo, out_pad))
    if residual:
        values.update(padded_plane_slots("RES", geo.ho, geo.wo, res_pad))
    header = header_words(H, values, HEADER_SIZE)
    table = np.concatenate([header, *[p.astype(np.int32) for p in parts]])
    b = np.zeros(f, dtype=np.float32) if bias is None else np.asarray(bias, dtype=np.float32).reshape(f)
    weights = np.concatenate([fkw.reshape(-1), b]).astype(np.float32)
    return PackedConv(geo, weights, table, geo.n * nch * ngroups, bool(relu), k, bool(residual), out_pad,
                      res_pad if residual else (0, 0, 0, 0))


def _check_chunks(chunks: tuple[np.ndarray, ...], f: int) -> tuple[np.ndarray, np.ndarray]:
    """(chunk, chunk-local index) of every filter; PlanError unless the chunks partition [0, f) into ascending
    lists of 1..CHUNK filters (what the kernel's chunk_fil / chunk_nf tables may hold)."""
    chunk_of = np.full(f, -1, dtype=np.int64)
    local_of = np.full(f, -1, dtype=np.int64)
    if not chunks:
        raise PlanError("chunk_filters: a conv needs at least one chunk of filters")
    for i, members in enumerate(chunks):
        members = np.asarray(members, dtype=np.int64)
        if not 1 <= len(members) <= CHUNK:
            raise PlanError(f"chunk_filters: chunk {i} has {len(members)} filters; a chunk holds 1..{CHUNK}")
        if np.any(np.diff(members) <= 0) or members[0] < 0 or members[-1] >= f or np.any(chunk_of[members] >= 0):
            raise PlanError(f"chunk_filters: chunk {i} {members.tolist()} is not an ascending list of filters "
                            f"0..{f - 1} that no other chunk holds")
        chunk_of[members] = i
        local_of[members] = np.arange(len(members))
    if np.any(chunk_of < 0):
        raise PlanError(f"chunk_filters: filters {np.nonzero(chunk_of < 0)[0][:8].tolist()} are in no chunk")
    return chunk_of, local_of


def _check_kernels(schedule: ConvSchedule, f: int, c: int, chunk_of: np.ndarray,
                   local_of: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(filters, channels, pattern ids, first kernel of each run) of the schedule, after checking that the kernel
    order, kernel_filter and runs are tables the kernel can follow (PlanError naming the table)."""
    ff, cc, pp = (np.asarray(a, dtype=np.int64).reshape(-1)
                  for a in (schedule.filters, schedule.channels, schedule.patterns))
    k = len(ff)
    if len(cc) != k or len(pp) != k or np.any((ff < 0) | (ff >= f) | (cc < 0) | (cc >= c)):
        raise PlanError(f"kernel_order: the kernels' filters / channels must be {k} entries in [0, {f}) / [0, {c})")
    if np.any((pp < 0) | (pp >= len(CANDIDATES))):
        raise PlanError("a kept kernel has a pattern id outside 0..55")
    if len(np.unique(ff * c + cc)) != k:
        raise PlanError("kernel_order: a kernel (filter, channel) is listed twice")
    group = chunk_of[ff] * c + cc
    if np.any(np.diff(group) < 0):
        raise PlanError("kernel_order: the kernels are not grouped by (chunk, channel) in ascending order "
                        "(do kernel_order and chunk_filters disagree?)")
    kf = np.asarray(schedule.kernel_filter, dtype=np.int64).reshape(-1)
    if len(kf) != k or np.any(kf != local_of[ff]):
        raise PlanError("kernel_filter: an entry is not its kernel's index in its chunk's filter list "
                        "(chunk_filters)")
    runs = np.asarray(schedule.runs, dtype=np.int64).reshape(-1, 3)
    first, pid, count = runs[:, 0], runs[:, 1], runs[:, 2]
    if np.any(count < 1) or not np.array_equal(first, np.concatenate([[0], np.cumsum(count)[:-1]])[:len(runs)]) \
            or int(count.sum()) != k:
        raise PlanError(f"runs: the runs must be consecutive (first, pattern, count >= 1) rows covering the {k} "
                        "kernels")
    run_of = np.repeat(np.arange(len(runs)), count)
    if k and (np.any(group != group[first][run_of]) or np.any(pp != pid[run_of])):
        bad = int(run_of[(group != group[first][run_of]) | (pp != pid[run_of])][0])
        raise PlanError(f"runs: run {bad} {runs[bad].tolist()} holds kernels of another (chunk, channel) or "
                        "pattern")
    return ff, cc, pp, first


def padded_shape(shape: tuple[int, int, int, int], pads: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """[N, F, H, W] with pads (top, bottom, left, right) of zeros around every plane."""
    n, f, h, w = shape
    top, bottom, left, right = pads
    return n, f, h + top + bottom, w + left + right


def header_words(slots: dict[str, int], values: dict[str, int], size: int) -> np.ndarray:
    """A kernel's i32 header of `size` words: each named value at its slot (a kernel ABI's H), zeros elsewhere."""
    header = np.zeros(size, dtype=np.int32)
    for name, value in values.items():
        header[slots[name]] = value
    return header


def padded_plane_slots(prefix: str, h: int, w: int, pads: tuple[int, int, int, int]) -> dict[str, int]:
    """The header slots <prefix>_HP, _WP, _TOP, _LEFT of an h x w plane stored with pads around it (every kernel's
    padded output, the pattern kernel's padded residual; read by kernels/padded_plane.h's sp_plane_at); none without
    pads (the slots stay 0: unpadded)."""
    if not any(pads):
        return {}
    top, bottom, left, right = pads
    return {f"{prefix}_HP": h + top + bottom, f"{prefix}_WP": w + left + right, f"{prefix}_TOP": top,
            f"{prefix}_LEFT": left}


def _as_words(b: np.ndarray) -> np.ndarray:
    """Bytes packed 4 per int32 table word, in memory order (the kernel reads them through a byte pointer)."""
    return np.concatenate([b, np.zeros(-len(b) % 4, dtype=np.uint8)]).view(np.int32)


def pad_input(x: np.ndarray, packed: PackedConv) -> np.ndarray:
    """The input padded as the kernel reads it (what `tensor.pad` does in the lowered IR)."""
    top, bottom, left, right = packed.geometry.pads()
    return np.ascontiguousarray(np.pad(np.asarray(x, np.float32), ((0, 0), (0, 0), (top, bottom), (left, right))))


_MEMREF = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t]


class KernelLibrary:
    """The host object linked into a throwaway shared library (clang -shared), called through ctypes."""

    _cache: dict[Path, "KernelLibrary"] = {}

    def __init__(self, obj: Path, symbol: str):
        self._tmp = tempfile.TemporaryDirectory(prefix="spattern-mk-")
        so = Path(self._tmp.name) / (obj.stem + ".so")
        cmd = ["clang", "-shared", "-nostdlib", "-fuse-ld=lld", str(obj), "-o", str(so)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True)
        except FileNotFoundError as e:
            raise ToolUnavailableError("clang is needed to load the microkernels in-process; run "
                                       "`bash scripts/setup.sh` (Debian packages clang, lld)") from e
        if proc.returncode != 0:
            raise CompileError(f"linking {obj} failed: `{' '.join(cmd)}`\n{proc.stderr}")
        self.lib = ctypes.CDLL(str(so))
        self.fn = getattr(self.lib, symbol)
        self.fn.argtypes = _MEMREF * 5 + [ctypes.c_size_t]
        self.fn.restype = None

    @classmethod
    def load(cls, target: str = "host", kernel: str = "pattern_conv") -> "KernelLibrary":
        """The library of `kernel`'s object for `target` (spattern.microkernels.kernels.KERNELS), built once."""
        from spattern.microkernels.kernels import kernel_object

        ko = kernel_object(target, kernel)
        if ko.path not in cls._cache:
            cls._cache[ko.path] = cls(ko.path, ko.symbol)
        return cls._cache[ko.path]

    def call(self, buffers: list[np.ndarray], workgroups: int) -> None:
        """Calls the entry point for every workgroup in turn on this thread, with the five buffers (in, weights,
        table, residual, out; contiguous arrays) as the memref descriptors IREE would pass."""
        args = []
        for a in buffers:
            args += [a.ctypes.data, a.ctypes.data, 0, a.size, 1]
        fn = self.fn
        for wg in range(workgroups):
            fn(*args, wg)

    def run(self, packed: PackedConv, x_padded: np.ndarray, out: np.ndarray | None = None,
            residual: np.ndarray | None = None) -> np.ndarray:
        """Runs every workgroup in turn on one thread; x_padded from pad_input. Returns [N, F, Ho, Wo] (the
        padded buffer, out_buffer_shape, for a conv packed with out_pad).
        A conv packed with residual=True needs `residual` [N, F, Ho, Wo] (res_buffer_shape with res_pad)."""
        if x_padded.shape != packed.padded_in_shape or x_padded.dtype != np.float32:
            raise ConfigError(f"padded input must be float32 {packed.padded_in_shape}, got {x_padded.shape}")
        if packed.residual != (residual is not None):
            raise ConfigError("pass `residual` exactly when the conv was packed with residual=True")
        x_padded = np.ascontiguousarray(x_padded)
        if out is None:
            out = np.empty(packed.out_buffer_shape, dtype=np.float32)
        res = (packed.weights if residual is None  # any buffer: the kernel does not read it
               else np.ascontiguousarray(np.asarray(residual, dtype=np.float32).reshape(packed.res_buffer_shape)))
        self.call([x_padded, packed.weights, packed.table, res, out], packed.workgroups)
        return out


def run_conv(packed: PackedConv, x: np.ndarray, target: str = "host",
             residual: np.ndarray | None = None) -> np.ndarray:
    """Pads x [N, C, H, W] and runs the packed conv with the host object: the quick numerics check."""
    return KernelLibrary.load(target).run(packed, pad_input(x, packed), residual=residual)
