"""The `sparse_pattern` dialect, declared in Python on IRDL (`torch_mlir.dialects.ext`): no C++ build.

IRDL registers the op and checks that the declared operands, attributes and result are present; everything the
types cannot say (counts, ranges, shapes) is checked by `verify_conv2d`, which the passes and `spattern-opt` run
after every pass and which raises `PatternVerifyError` naming the op and the broken invariant. Ops print in
generic form (`"sparse_pattern.conv2d"(...) {...}`).

Only one op is needed: the passes carry what they decide (kernel order, groups, tables) as attributes on the
op, so that every intermediate module is still a complete, checkable description of the convolution (see the
op's documentation below).
"""


from dataclasses import dataclass
from typing import Any

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects.ext import Dialect, DialectAlreadyLoadedError, Operand, Pure, Result

from .. import patterns
from ..errors import PatternVerifyError

DIALECT = "sparse_pattern"


class SparsePattern(Dialect, name=DIALECT):
    """The dialect object; `load_dialect()` registers it in the current context."""


class Conv2dOp(SparsePattern.Operation, name="conv2d", traits=[Pure]):
    """`sparse_pattern.conv2d`: a 3x3, groups=1, dilation-1 convolution whose weights are stored compactly.

    Computes `output = conv2d(pad(input, padding), expand(weights), strides) + bias[f]`, i.e. exactly what
    `linalg.conv_2d_nchw_fchw` computes on the expanded [F, C, 3, 3] weights (the lit and numerics tests hold
    the lowering to that).

    Operands:
      input   tensor<N x C x H x W x f32>, NCHW, not padded (the op pads with zeros itself).
      weights tensor<K x 4 x f32>: one row per kept kernel, the kernel's 4 values in ascending tap order of its
              pattern (tap = 3*dy + dx). Row i holds the kernel `kernel_order[i]` of the canonical order (see
              below); without `kernel_order`, row i holds canonical kernel i.
      bias    tensor<F x f32> (zeros when the model had none; a folded BatchNorm's shift lands here).
    Result:
      output  tensor<N x F x Ho x Wo x f32>, Ho = (H + 2*pad_h - 3) // stride_h + 1 (same for W).
    Attributes (required):
      library      tensor<L x 4 x i32>: the layer's patterns as their 4 taps (each row: 4 distinct taps in [0, 9)
                   that include the center tap 4).
      pattern_ids  tensor<B x C x i32>: per (filter block, input channel), an index into `library`;
                   B = ceil(F / filter_block), filters [b*filter_block, (b+1)*filter_block) form block b.
      kept         tensor<B x C x i8>: 1 where the block's kernels on that channel are kept, 0 where removed.
      filter_block i64 >= 1.
      strides      array<i64: sh, sw>;  padding  array<i64: ph, pw>.
    Canonical kernel order: kernels (f, c) with kept[f // filter_block, c] == 1, row-major over (f, c).
    Attributes added by the passes (optional; lower-to-microkernels packs each as it is, the one absent takes its
    pass's default, and a table the kernel cannot follow is a PlanError naming it):
      kernel_order   tensor<K x i32>, a permutation of [0, K): row i holds canonical kernel kernel_order[i]; rows
                     in (chunk, channel, pattern, filter) order (filter-kernel-reorder, which permutes the rows).
      chunk_filters  tensor<F x i32>, chunk_sizes tensor<n_chunks x i32>: the filters of each chunk of work,
                     chunk by chunk, each ascending (filter-kernel-reorder).
      runs           tensor<R x 3 x i32>: (first row, pattern, count): stretches of one (chunk, channel) and one
                     pattern, one pattern loop of the microkernel each (group-patterns).
      groups         tensor<G x 2 x i32>: (first filter, filter count) of each group, one batch entry of the
                     portable path's matmul (group-patterns); consecutive, covering [0, F).
      kernel_filter  tensor<K x i32>: each row's filter as its index in its chunk (compact-weights).
      run_taps       tensor<R x i32>: per run, the taps it loads once for all its kernels (its pattern's, as a
                     bit mask) or 0 (reuse-loads).
    Invariants (verify_conv2d): K equals the number of kept kernels; every pattern id is in [0, L); every library
    row is center-plus-3; operand and attribute shapes agree with each other and with the result.
    """

    input: Operand[ir.RankedTensorType]
    weights: Operand[ir.RankedTensorType]
    bias: Operand[ir.RankedTensorType]
    library: Any
    pattern_ids: Any
    kept: Any
    filter_block: Any
    strides: Any
    padding: Any
    output: Result[ir.RankedTensorType]


CONV2D = f"{DIALECT}.conv2d"


def load_dialect(context: ir.Context | None = None) -> None:
    """Register the dialect in `context` (or the current one); loading twice is harmless."""
    ctx = context or ir.Context.current
    with ctx:
        try:
            SparsePattern.load()
        except DialectAlreadyLoadedError:
            pass


def i32_elements(values: np.ndarray) -> ir.DenseElementsAttr:
    values = np.ascontiguousarray(np.asarray(values, dtype=np.int32))
    return ir.DenseElementsAttr.get(values, type=ir.IntegerType.get_signless(32))


def i8_elements(values: np.ndarray) -> ir.DenseElementsAttr:
    values = np.ascontiguousarray(np.asarray(values, dtype=np.int8))
    return ir.DenseElementsAttr.get(values, type=ir.IntegerType.get_signless(8))


def i64_array(values: tuple[int, ...] | list[int]) -> ir.Attribute:
    return ir.DenseI64ArrayAttr.get([int(v) for v in values])


def library_taps(library_ids: list[int]) -> np.ndarray:
    """[L, 4] taps of global candidate ids (the form the `library` attribute stores)."""
    return np.array([patterns.CANDIDATES[int(c)] for c in library_ids], dtype=np.int32).reshape(-1, 4)


def _elements(op: ir.Operation, name: str) -> np.ndarray:
    try:
        attr = op.attributes[name]
    except KeyError:
        raise PatternVerifyError(f"{_where(op)}: the attribute '{name}' is missing") from None
    try:
        return np.array(ir.DenseElementsAttr(attr))
    except (TypeError, ValueError):
        raise PatternVerifyError(f"{_where(op)}: '{name}' must be a dense elements attribute, got {attr}") from None


def _ints(op: ir.Operation, name: str) -> list[int]:
    try:
        attr = op.attributes[name]
    except KeyError:
        raise PatternVerifyError(f"{_where(op)}: the attribute '{name}' is missing") from None
    try:
        return [int(v) for v in ir.DenseI64ArrayAttr(attr)]
    except (TypeError, ValueError):
        pass
    try:
        return [int(ir.IntegerAttr(attr).value)]
    except (TypeError, ValueError):
        raise PatternVerifyError(f"{_where(op)}: '{name}' must be an i64 or array<i64>, got {attr}") from None


def _where(op: ir.Operation) -> str:
    return f"sparse_pattern.conv2d at {op.location}"


def _shape(value: ir.Value) -> tuple[int, ...]:
    return tuple(ir.RankedTensorType(value.type).shape)


@dataclass
class Conv2dInfo:
    """The structure of one `sparse_pattern.conv2d`, read from its attributes as numpy (after verification)."""

    in_channels: int
    out_channels: int
    filter_block: int
    library: np.ndarray  # [L, 4] taps
    pattern_ids: np.ndarray  # [B, C]
    kept: np.ndarray  # [B, C] bool
    strides: tuple[int, int]
    padding: tuple[int, int]
    kernel_order: np.ndarray | None  # [K] or None (canonical)

    @property
    def n_blocks(self) -> int:
        return self.pattern_ids.shape[0]

    def filter_kept(self) -> np.ndarray:
        """[F, C] bool: kernel (f, c) kept."""
        return self.kept[np.arange(self.out_channels) // self.filter_block]

    def filter_patterns(self) -> np.ndarray:
        """[F, C] library index of each kernel."""
        return self.pattern_ids[np.arange(self.out_channels) // self.filter_block]

    def canonical_kernels(self) -> tuple[np.ndarray, np.ndarray]:
        """(filters, channels) of the kept kernels in canonical (row-major) order."""
        f, c = np.nonzero(self.filter_kept())
        return f.astype(np.int64), c.astype(np.int64)

    def n_kept(self) -> int:
        return int(self.filter_kept().sum())

    def library_ids(self) -> list[int]:
        """Global candidate ids of the library rows (spattern.patterns), for the microkernels."""
        return [patterns.candidate_id(list(row)) for row in self.library]

    def expand(self, weights: np.ndarray) -> np.ndarray:
        """[F, C, 3, 3] dense weights of the compact [K, 4] `weights` (in this op's stored order)."""
        f, c = self.canonical_kernels()
        if self.kernel_order is not None:
            f, c = f[self.kernel_order], c[self.kernel_order]
        taps = self.library[self.filter_patterns()[f, c]]  # [K, 4]
        dense = np.zeros((self.out_channels, self.in_channels, 9), dtype=np.float32)
        dense[f[:, None], c[:, None], taps] = weights
        return dense.reshape(self.out_channels, self.in_channels, 3, 3)


def conv2d_info(op: ir.Operation) -> Conv2dInfo:
    """Verify `op` and return its structure."""
    verify_conv2d(op)
    return _read_info(op)


def _read_info(op: ir.Operation) -> Conv2dInfo:
    f = _shape(op.results[0])[1]
    c = _shape(op.operands[0])[1]
    order = _elements(op, "kernel_order").astype(np.int64) if "kernel_order" in op.attributes else None
    return Conv2dInfo(
        in_channels=c,
        out_channels=f,
        filter_block=_ints(op, "filter_block")[0],
        library=_elements(op, "library").astype(np.int64),
        pattern_ids=_elements(op, "pattern_ids").astype(np.int64),
        kept=_elements(op, "kept").astype(bool),
        strides=tuple(_ints(op, "strides")),  # type: ignore[arg-type]
        padding=tuple(_ints(op, "padding")),  # type: ignore[arg-type]
        kernel_order=order,
    )


def verify_conv2d(op: ir.Operation) -> None:
    """PatternVerifyError naming the first broken invariant of a `sparse_pattern.conv2d`."""
    op = op.operation if hasattr(op, "operation") else op
    where = _where(op)
    if len(op.operands) != 3 or len(op.results) != 1:
        raise PatternVerifyError(f"{where}: expected 3 operands (input, weights, bias) and 1 result")
    in_shape, w_shape, b_shape = (_shape(v) for v in op.operands)
    out_shape = _shape(op.results[0])
    if len(in_shape) != 4 or len(out_shape) != 4:
        raise PatternVerifyError(f"{where}: shape mismatch: input {in_shape} and output {out_shape} must be NCHW")
    n, c, h, w = in_shape
    f = out_shape[1]
    library = _elements(op, "library")
    if library.ndim != 2 or library.shape[1] != 4 or library.shape[0] == 0:
        raise PatternVerifyError(f"{where}: the library must be a non-empty [L, 4] tap table, got {library.shape}")
    for i, row in enumerate(library.tolist()):
        if len(set(row)) != 4 or not all(0 <= t < 9 for t in row) or patterns.CENTER_TAP not in row:
            raise PatternVerifyError(
                f"{where}: library entry {i} {row} is not center-plus-3 (4 distinct taps in [0, 9) including 4)")
    fb = _ints(op, "filter_block")[0]
    if fb < 1:
        raise PatternVerifyError(f"{where}: filter_block must be >= 1, got {fb}")
    n_blocks = -(-f // fb)
    pattern_ids = _elements(op, "pattern_ids")
    kept = _elements(op, "kept").astype(bool)
    if pattern_ids.shape != (n_blocks, c) or kept.shape != (n_blocks, c):
        raise PatternVerifyError(
            f"{where}: shape mismatch: pattern_ids {pattern_ids.shape} and kept {kept.shape} must be "
            f"[ceil(F / filter_block), C] = {(n_blocks, c)}")
    if pattern_ids.size and (pattern_ids.min() < 0 or pattern_ids.max() >= library.shape[0]):
        bad = pattern_ids[(pattern_ids < 0) | (pattern_ids >= library.shape[0])][0]
        raise PatternVerifyError(
            f"{where}: pattern id {int(bad)} out of range: the library has {library.shape[0]} entries")
    strides, padding = _ints(op, "strides"), _ints(op, "padding")
    if len(strides) != 2 or len(padding) != 2 or min(strides) < 1 or min(padding) < 0:
        raise PatternVerifyError(f"{where}: strides {strides} / padding {padding} must be 2 values (>= 1 / >= 0)")
    ho = (h + 2 * padding[0] - 3) // strides[0] + 1
    wo = (w + 2 * padding[1] - 3) // strides[1] + 1
    if out_shape != (n, f, ho, wo):
        raise PatternVerifyError(f"{where}: shape mismatch: the output is {out_shape}, expected {(n, f, ho, wo)}")
    if b_shape != (f,):
        raise PatternVerifyError(f"{where}: shape mismatch: bias is {b_shape}, expected ({f},)")
    n_kept = int(kept[np.arange(f) // fb].sum())
    if len(w_shape) != 2 or w_shape[1] != 4 or w_shape[0] != n_kept:
        raise PatternVerifyError(
            f"{where}: weight count mismatch: weights are {w_shape}, the kept kernels need ({n_kept}, 4)")
    if "kernel_order" in op.attributes:
        order = _elements(op, "kernel_order")
        if order.shape != (n_kept,) or not np.array_equal(np.sort(order), np.arange(n_kept)):
            raise PatternVerifyError(f"{where}: kernel_order is not a permutation of the {n_kept} kept kernels")
    if "groups" in op.attributes:
        groups = _elements(op, "groups")
        ends = np.cumsum(groups[:, 1]) if groups.ndim == 2 and groups.shape[1] == 2 else None
        if ends is None or ends[-1] != f or not np.array_equal(groups[:, 0], np.concatenate([[0], ends[:-1]])):
            raise PatternVerifyError(f"{where}: groups must be consecutive (first, count) rows covering [0, {f})")
    _verify_schedule_tables(op, where, f, n_kept, library.shape[0])


def _verify_schedule_tables(op: ir.Operation, where: str, f: int, n_kept: int, n_patterns: int) -> None:
    """The shapes and ranges of the microkernel schedule tables (filter-kernel-reorder's chunks, group-patterns'
    runs, reuse-loads' marks, compact-weights' filter bytes). Whether their contents agree with each other is
    lower-to-microkernels' check (a PlanError naming the table), since a hand-edited schedule may be valid."""
    has = {name: name in op.attributes for name in ("chunk_filters", "chunk_sizes", "runs", "run_taps",
                                                     "kernel_filter")}
    if has["chunk_filters"] != has["chunk_sizes"]:
        raise PatternVerifyError(f"{where}: chunk_filters and chunk_sizes come together (one without the other)")
    if has["chunk_filters"]:
        filters, sizes = _elements(op, "chunk_filters"), _elements(op, "chunk_sizes")
        if filters.ndim != 1 or sizes.ndim != 1 or np.any(sizes < 1) or int(sizes.sum()) != filters.size:
            raise PatternVerifyError(f"{where}: chunk_sizes {sizes.tolist()} must be >= 1 and add up to the "
                                     f"{filters.size} entries of chunk_filters")
        if filters.size and (filters.min() < 0 or filters.max() >= f):
            raise PatternVerifyError(f"{where}: chunk_filters holds a filter outside [0, {f})")
    n_runs = None
    if has["runs"]:
        runs = _elements(op, "runs")
        if runs.ndim != 2 or runs.shape[1] != 3:
            raise PatternVerifyError(f"{where}: runs must be [R, 3] (first kernel, pattern, count), got {runs.shape}")
        if runs.size and (runs[:, 1].min() < 0 or runs[:, 1].max() >= n_patterns):
            raise PatternVerifyError(f"{where}: runs name a pattern outside the library's {n_patterns} entries")
        if runs.size and (runs[:, 0].min() < 0 or (runs[:, 0] + runs[:, 2]).max() > n_kept):
            raise PatternVerifyError(f"{where}: runs reach past the {n_kept} kept kernels")
        n_runs = len(runs)
    if has["run_taps"]:
        marks = _elements(op, "run_taps")
        if marks.ndim != 1 or (n_runs is not None and marks.size != n_runs):
            raise PatternVerifyError(f"{where}: run_taps must hold one mark per run ({n_runs}), got {marks.shape}")
    if has["kernel_filter"]:
        local = _elements(op, "kernel_filter")
        if local.shape != (n_kept,) or (local.size and (local.min() < 0 or local.max() > 255)):
            raise PatternVerifyError(f"{where}: kernel_filter must be one byte (0..255) per kept kernel "
                                     f"({n_kept}), got shape {local.shape}")


def conv2d_ops(module: ir.Module) -> list[ir.Operation]:
    """Every sparse_pattern.conv2d in the module, in program order."""
    return ops_named(module, CONV2D)


def ops_named(module: ir.Module, name: str) -> list[ir.Operation]:
    """Every op called `name`, in program order."""
    found: list[ir.Operation] = []

    def visit(op: ir.Operation) -> ir.WalkResult:
        if op.name == name:
            found.append(op)
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    return found


def verify_module(module: ir.Module) -> None:
    """Run MLIR's verifier and then ours on every sparse_pattern op."""
    try:
        module.operation.verify()
    except ir.MLIRError as e:
        raise PatternVerifyError(f"the module does not verify: {e}") from None
    for op in conv2d_ops(module):
        verify_conv2d(op)
