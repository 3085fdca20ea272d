"""lower-to-linalg: the portable lowering of `sparse_pattern.conv2d` to upstream linalg/tensor ops.

Each conv becomes a call to a private function (IREE inlines it) that computes one image in three steps:
1. pad the NCHW input and view it flat ("wide rows"): output row i reads, for tap (dy, dx), the input row
   i + dy from column dx on, so with the output computed over the padded width (`wq` columns, of which the last
   `wq - wo` are junk and cut at the end) every (channel, tap) row of the im2col matrix is ONE contiguous window
   of the flat input. A stride-s conv first splits the input into its s*s phases (a transpose), after which the
   same holds per phase;
2. one `linalg.generic` gathers, for every filter group at once, the group's rows (the (channel, tap) pairs its
   kept kernels read, channel-major so the taps of one channel are read back to back), each a window of the
   flat input. The window's start comes from a constant table read with `tensor.extract` at the generic's outer
   indices, so MLIR's vectorizer sees a contiguous load along the positions (a table read through the generic's
   own block argument would make every load a gather); the table is also an input of the generic, which keeps
   IREE from collapsing the row and position dimensions into one (that too would turn the loads into gathers)
   and marks the rows that only pad a short group (their value is zero);
3. one batched matmul of the groups' [filters, rows] weights (initialised with the bias) by the gathered rows.
   GPU form (PassContext.mmt4d_tile == 0): `linalg.batch_matmul` over [groups, rows, positions]. CPU form (tile
   t > 0): the gather writes the [groups, positions/t, rows, t, 1] right-hand side of IREE's mmt4d microkernel,
   the weights are packed to its [groups, filters/t, rows, t, 1] left-hand side here, and the matmul is one
   `linalg.batch_mmt4d`, whose t x t tiles a transpose puts back in [filters, positions] order. (With a plain
   batch_matmul and data tiling, IREE fuses the gather into its packing but stores one float at a time.)
Why it pays: a group of >= 64 filters that share one pattern per channel reads 4 of 9 taps per kept channel, so the
matmul does 4/9 of the dense MACs (fewer with removed kernels), in few dispatches: VGG-16-BN with 64-filter blocks
1.71x dense IREE on the host (CPU form), 1.64x dense Vulkan on an H200 (GPU form; the figures:
bench/results/pass-measurements.txt, gpu-h200-vulkan.txt). It is correct for every block size: a group's rows are
the union of the taps its filters read (zeros in the weights where a filter does not); fine blocks therefore run
near dense speed, which is why group-patterns merges them into >= 64-filter groups.

Reads `groups` (group-patterns) when present, else one group per plan block. Groups shorter than the longest
are padded with zero filters (and their rows with zero rows) so that all groups share one batched matmul.
A batch of N images calls the one-image function N times (a wrapper concatenates the results).
IREE never sees a sparse_pattern op after this pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
from torch_mlir import ir

from ..dialect.constants import constant_array
from ..dialect.sparse_pattern import CONV2D, Conv2dInfo, conv2d_info, load_dialect
from ..errors import CompileError
from .base import tensor_type as _t
from .base import PassContext, add_functions, f32_constant, ops_named
from .schedule import block_groups, group_tap_masks, optional_table



@dataclass(frozen=True)
class WideRows:
    """Where each (channel, tap) window lies in the flat, padded (and, for stride s > 1, phase-split) input.

    The input is padded to [C, s*hq, s*wq] and split into s*s phases [s, s, C, hq, wq]; tap (dy, dx) of channel c
    is phase (dy % s, dx % s) shifted by (dy // s, dx // s), read over `n = ho * wq` positions (`cols` >= n of
    them: n rounded up to the matmul tile). hq has rows to spare so that the last window's junk columns (and
    the rounding) stay inside the buffer."""

    channels: int
    stride: int
    hq: int
    wq: int
    ho: int
    wo: int
    cols: int
    pad_low: tuple[int, int]
    pad_high: tuple[int, int]

    @staticmethod
    def of(info: Conv2dInfo, c: int, h: int, w: int, ho: int, wo: int, tile: int) -> WideRows:
        (ph, pw), (sh, sw) = info.padding, info.strides
        if sh != sw:
            raise CompileError(f"lower-to-linalg: strides {info.strides} differ; only equal strides are supported")
        s = sh
        wq = -(-(w + 2 * pw) // s)
        cols = ho * wq if tile == 0 else -(-ho * wq // tile) * tile
        hq = -(-(h + 2 * ph) // s) + 1 + -(-(cols - ho * wq) // wq)
        return WideRows(c, s, hq, wq, ho, wo, cols, (ph, pw), (s * hq - h - ph, s * wq - w - pw))

    @property
    def n(self) -> int:
        return self.ho * self.wq

    @property
    def flat_size(self) -> int:
        return self.stride * self.stride * self.channels * self.hq * self.wq

    def start(self, channel: np.ndarray, tap: np.ndarray) -> np.ndarray:
        s = self.stride
        dy, dx = tap // 3, tap % 3
        phase = (dy % s) * s + dx % s
        return ((phase * self.channels + channel) * self.hq + dy // s) * self.wq + dx // s


@dataclass
class GroupRows:
    """A filter group [first, first + count) and the (channel, tap) rows its kept kernels read, channel-major."""

    first: int
    count: int
    channel: np.ndarray
    tap: np.ndarray


def group_rows(info: Conv2dInfo, groups: np.ndarray) -> list[GroupRows]:
    masks = group_tap_masks(info, groups)  # [G, C, 9]
    out = []
    for (first, count), mask in zip(groups, masks):
        channel, tap = np.nonzero(mask)
        out.append(GroupRows(int(first), int(count), channel.astype(np.int64), tap.astype(np.int64)))
    return out


@dataclass(frozen=True)
class MatmulForm:
    """How the groups' matmul is written: `tile` 0 is linalg.batch_matmul over [G, rows, cols] (GPUs); t > 0 is
    linalg.batch_mmt4d with the rows gathered as [G, cols/t, rows, t, 1] and the weights packed (here, in numpy)
    as [G, width/t, rows, t, 1], the layouts IREE's mmt4d microkernel reads, so nothing is repacked at run time
    (IREE's own fusion of the gather into its packing of a batch_matmul stores one float at a time)."""

    tile: int
    groups: int
    width: int  # filters per group, padded to the tile
    depth: int  # rows per group (the longest group's)
    cols: int

    def weights_type(self) -> str:
        if self.tile:
            return _t((self.groups, self.width // self.tile, self.depth, self.tile, 1))
        return _t((self.groups, self.width, self.depth))

    def bias_type(self) -> str:
        if self.tile:
            return _t((self.groups, self.width // self.tile, self.tile))
        return _t((self.groups, self.width))

    def pack(self, weights: np.ndarray, bias: np.ndarray) -> list[np.ndarray]:
        """[G, width, depth] weights and [G, width] bias in the operand layouts."""
        if not self.tile:
            return [weights, bias]
        g, t = self.groups, self.tile
        w = weights.reshape(g, self.width // t, t, self.depth).transpose(0, 1, 3, 2)[..., None]
        return [np.ascontiguousarray(w), bias.reshape(g, self.width // t, t)]


@dataclass
class LowerToLinalg:
    """lower-to-linalg (see the module docstring). Its one setting, the matmul form, comes from the target
    (PassContext.mmt4d_tile)."""

    name: ClassVar[str] = "lower-to-linalg"

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        load_dialect(module.context)
        ops = ops_named(module, CONV2D)
        n_rows = n_padded = 0
        with module.context, ir.Location.unknown():
            for i, op in enumerate(ops):
                rows, padded = self._lower_one(module, op, f"__spattern_conv_{i}", ctx.mmt4d_tile)
                n_rows += rows
                n_padded += padded
        ctx.stats[self.name] = {"convs": len(ops), "matmul": "batch_mmt4d" if ctx.mmt4d_tile else "batch_matmul",
                                "rows": n_rows, "padding_rows": n_padded}

    def _lower_one(self, module: ir.Module, op: ir.Operation, fname: str, tile: int) -> tuple[int, int]:
        info = conv2d_info(op)
        in_shape = tuple(ir.RankedTensorType(op.operands[0].type).shape)
        out_shape = tuple(ir.RankedTensorType(op.results[0].type).shape)
        batch = int(in_shape[0])
        in_shape, out_shape = (1, *in_shape[1:]), (1, *out_shape[1:])  # the body computes one image
        _, c, h, w = in_shape
        f, ho, wo = out_shape[1], out_shape[2], out_shape[3]
        geo = WideRows.of(info, c, h, w, ho, wo, tile)
        groups = optional_table(op, "groups")
        groups = block_groups(info) if groups is None else groups
        rows = group_rows(info, groups)
        width = max(int(groups[:, 1].max()), 1)
        width = -(-width // tile) * tile if tile else width
        form = MatmulForm(tile, len(rows), width, max(max(len(r.channel) for r in rows), 1), geo.cols)

        flat = info.expand(constant_array(op.operands[1])).reshape(f, c, 9)
        bias = constant_array(op.operands[2]).astype(np.float32)
        weights = np.zeros((form.groups, width, form.depth), np.float32)
        bias_gw = np.zeros((form.groups, width), np.float32)
        starts = np.full((form.groups, form.depth), -1, np.int32)  # -1: a row that only pads its group (zero)
        for g, r in enumerate(rows):
            weights[g, :r.count, :len(r.channel)] = flat[r.first:r.first + r.count][:, r.channel, r.tap]
            bias_gw[g, :r.count] = bias[r.first:r.first + r.count]
            starts[g, :len(r.channel)] = geo.start(r.channel, r.tap)
        args = form.pack(weights, bias_gw)

        text = self._body(fname, in_shape, out_shape, geo, form, starts, groups)
        callee = fname
        if batch > 1:
            callee = f"{fname}_batch"
            text += "\n" + self._batch_wrapper(callee, fname, batch, in_shape, out_shape, args)
        add_functions(module, text, self.name, op.location)
        with ir.InsertionPoint(op), op.location:
            values = [f32_constant(a) for a in args]
            call = ir.Operation.create("func.call", results=[op.results[0].type], operands=[op.operands[0], *values],
                                       attributes={"callee": ir.FlatSymbolRefAttr.get(callee)})
        op.results[0].replace_all_uses_with(call.results[0])
        op.erase()
        used = sum(len(r.channel) for r in rows)
        return used, form.groups * form.depth - used

    @staticmethod
    def _body(fname: str, in_shape: tuple, out_shape: tuple, geo: WideRows, form: MatmulForm,
              starts: np.ndarray, groups: np.ndarray) -> str:
        lines: list[str] = []
        emit = lines.append
        emit("%zero = arith.constant 0.000000e+00 : f32")
        _emit_flat_input(emit, in_shape, geo)
        _emit_gather(emit, geo, form, starts)
        matrix = _emit_matmul(emit, form)
        _emit_output(emit, matrix, form, groups, geo, out_shape)
        emit(f"return %out : {_t(out_shape)}")
        return (f"func.func private @{fname}(%x: {_t(in_shape)}, %w: {form.weights_type()}, "
                f"%bias: {form.bias_type()}) -> {_t(out_shape)} {{\n"
                + "\n".join("  " + ln for ln in lines) + "\n}")

    @staticmethod
    def _batch_wrapper(name: str, body: str, batch: int, in_shape: tuple, out_shape: tuple,
                       args: list[np.ndarray]) -> str:
        """A function that runs the one-image body on each image of the batch and concatenates the results
        (the matmul's columns are one image's positions; images stay separate so the layout stays NCHW)."""
        x_t, o_t = _t((batch, *in_shape[1:])), _t((batch, *out_shape[1:]))
        a_args = "".join(f", %a{i}: {_t(a.shape)}" for i, a in enumerate(args))
        a_uses = "".join(f", %a{i}" for i in range(len(args)))
        a_types = "".join(f", {_t(a.shape)}" for a in args)
        lines = []
        for i in range(batch):
            lines.append(f"%x{i} = tensor.extract_slice %x[{i}, 0, 0, 0] [1, {', '.join(str(d) for d in in_shape[1:])}]"
                         f" [1, 1, 1, 1] : {x_t} to {_t(in_shape)}")
            lines.append(f"%y{i} = func.call @{body}(%x{i}{a_uses}) : ({_t(in_shape)}{a_types}) -> {_t(out_shape)}")
        lines.append("%out = tensor.concat dim(0) " + ", ".join(f"%y{i}" for i in range(batch)) + " : ("
                     + ", ".join(_t(out_shape) for _ in range(batch)) + f") -> {o_t}")
        lines.append(f"return %out : {o_t}")
        return (f"func.func private @{name}(%x: {x_t}{a_args}) -> {o_t} {{\n"
                + "\n".join("  " + ln for ln in lines) + "\n}")


def _emit_flat_input(emit: Callable[[str], None], in_shape: tuple, geo: WideRows) -> None:
    """%xf: the padded input, phase-split for stride > 1, as one flat tensor."""
    c, s = geo.channels, geo.stride
    padded = _t((1, c, s * geo.hq, s * geo.wq))
    (pl_h, pl_w), (ph_h, ph_w) = geo.pad_low, geo.pad_high
    emit(f"%xp = tensor.pad %x low[0, 0, {pl_h}, {pl_w}] high[0, 0, {ph_h}, {ph_w}] {{\n"
         f"^bb0(%i0: index, %i1: index, %i2: index, %i3: index):\n  tensor.yield %zero : f32\n"
         f"}} : {_t(in_shape)} to {padded}")
    flat_t = _t((geo.flat_size,))
    if s == 1:
        emit(f"%xf = tensor.collapse_shape %xp [[0, 1, 2, 3]] : {padded} into {flat_t}")
        return
    split = _t((1, c, geo.hq, s, geo.wq, s))
    split5 = _t((c, geo.hq, s, geo.wq, s))
    phases = _t((s, s, c, geo.hq, geo.wq))
    emit(f"%xs = tensor.expand_shape %xp [[0], [1], [2, 3], [4, 5]] output_shape [1, {c}, {geo.hq}, {s}, {geo.wq}, "
         f"{s}] : {padded} into {split}")
    emit(f"%xs2 = tensor.collapse_shape %xs [[0, 1], [2], [3], [4], [5]] : {split} into {split5}")
    emit(f"%pe = tensor.empty() : {phases}")
    emit(f"%xph = linalg.transpose ins(%xs2 : {split5}) outs(%pe : {phases}) permutation = [2, 4, 0, 1, 3]")
    emit(f"%xf = tensor.collapse_shape %xph [[0, 1, 2, 3, 4]] : {phases} into {flat_t}")


def _emit_gather(emit: Callable[[str], None], geo: WideRows, form: MatmulForm, starts: np.ndarray) -> None:
    """%rhs: every group's rows, each a window of %xf, in the matmul's right-hand-side layout."""
    table = np.array2string(starts, separator=", ", threshold=starts.size + 1, max_line_width=1 << 30)
    tab_t = _t(starts.shape, "i32")
    emit(f"%starts = arith.constant dense<{table}> : {tab_t}")
    g, depth, t = form.groups, form.depth, form.tile
    if t:  # (group, column tile, row, column in tile)
        shape, dims, table_map, row, col = (g, form.cols // t, depth, t), 4, "(d0, d2)", "%d2", "%q"
        col_lines = (f"  %ct = arith.constant {t} : index\n  %q0 = arith.muli %d1, %ct : index\n"
                     f"  %q = arith.addi %q0, %d3 : index\n")
    else:  # (group, row, column)
        shape, dims, table_map, row, col, col_lines = (g, depth, form.cols), 3, "(d0, d1)", "%d1", "%d2", ""
    ds = ", ".join(f"d{i}" for i in range(dims))
    parallel = ", ".join(['"parallel"'] * dims)
    out_t = _t(shape)
    index_lines = "".join(f"  %d{i} = linalg.index {i} : index\n" for i in range(dims))
    emit(f"%re = tensor.empty() : {out_t}")
    name = "%rows" if t else "%rhs"
    maps = f"affine_map<({ds}) -> {table_map}>, affine_map<({ds}) -> ({ds})>"
    emit(f"{name} = linalg.generic {{indexing_maps = [{maps}], iterator_types = [{parallel}]}} "
         f"ins(%starts : {tab_t}) outs(%re : {out_t}) {{\n"
         f"^bb0(%start_arg: i32, %o: f32):\n{index_lines}{col_lines}"
         f"  %start = tensor.extract %starts[%d0, {row}] : {tab_t}\n"
         f"  %c0 = arith.constant 0 : i32\n  %from = arith.maxsi %start, %c0 : i32\n"
         f"  %from_i = arith.index_cast %from : i32 to index\n  %at = arith.addi %from_i, {col} : index\n"
         f"  %v = tensor.extract %xf[%at] : {_t((geo.flat_size,))}\n"
         f"  %real = arith.cmpi sge, %start_arg, %c0 : i32\n"
         f"  %y = arith.select %real, %v, %zero : f32\n  linalg.yield %y : f32\n}} -> {out_t}")
    if t:
        emit(f"%rhs = tensor.expand_shape %rows [[0], [1], [2], [3, 4]] output_shape [{g}, {form.cols // t}, {depth}, "
             f"{t}, 1] : {out_t} into {_t((g, form.cols // t, depth, t, 1))}")


def _emit_matmul(emit: Callable[[str], None], form: MatmulForm) -> str:
    """The bias-initialised batched matmul; returns the type of %matrix, [groups * width, cols]."""
    g, t, cols = form.groups, form.tile, form.cols
    matrix_t = _t((g * form.width, cols))
    if not t:
        acc_t = _t((g, form.width, cols))
        emit(f"%ie = tensor.empty() : {acc_t}")
        emit(f"%init = linalg.broadcast ins(%bias : {form.bias_type()}) outs(%ie : {acc_t}) dimensions = [2]")
        emit(f"%mm = linalg.batch_matmul ins(%w, %rhs : {form.weights_type()}, {_t((g, form.depth, cols))}) "
             f"outs(%init : {acc_t}) -> {acc_t}")
        emit(f"%matrix = tensor.collapse_shape %mm [[0, 1], [2]] : {acc_t} into {matrix_t}")
        return matrix_t
    m1, n1 = form.width // t, cols // t
    acc_t = _t((g, m1, n1, t, t))
    emit(f"%ie = tensor.empty() : {acc_t}")
    emit(f"%init = linalg.broadcast ins(%bias : {form.bias_type()}) outs(%ie : {acc_t}) dimensions = [2, 4]")
    emit(f"%mm = linalg.batch_mmt4d ins(%w, %rhs : {form.weights_type()}, {_t((g, n1, form.depth, t, 1))}) "
         f"outs(%init : {acc_t}) -> {acc_t}")
    rows_t = _t((g, m1, t, n1, t))
    emit(f"%ue = tensor.empty() : {rows_t}")
    emit(f"%un = linalg.transpose ins(%mm : {acc_t}) outs(%ue : {rows_t}) permutation = [0, 1, 3, 2, 4]")
    emit(f"%matrix = tensor.collapse_shape %un [[0, 1, 2], [3, 4]] : {rows_t} into {matrix_t}")
    return matrix_t


def _emit_output(emit: Callable[[str], None], matrix_t: str, form: MatmulForm, groups: np.ndarray, geo: WideRows,
                 out_shape: tuple) -> None:
    """%out: the real filters' rows and positions of %matrix (padding filters, rounding and junk columns cut)."""
    f, n = out_shape[1], geo.n
    counts = [int(k) for _, k in groups]
    if all(k == form.width for k in counts[:-1]):  # only the last group (if any) is short: one slice
        emit(f"%filters = tensor.extract_slice %matrix[0, 0] [{f}, {n}] [1, 1] : {matrix_t} to {_t((f, n))}")
    else:
        for g, k in enumerate(counts):
            emit(f"%fg{g} = tensor.extract_slice %matrix[{g * form.width}, 0] [{k}, {n}] [1, 1] : {matrix_t} to "
                 f"{_t((k, n))}")
        emit("%filters = tensor.concat dim(0) " + ", ".join(f"%fg{g}" for g in range(len(counts))) + " : ("
             + ", ".join(_t((k, n)) for k in counts) + f") -> {_t((f, n))}")
    wide_t = _t((1, f, geo.ho, geo.wq))
    emit(f"%wide = tensor.expand_shape %filters [[0, 1], [2, 3]] output_shape [1, {f}, {geo.ho}, {geo.wq}] : "
         f"{_t((f, n))} into {wide_t}")
    emit(f"%out = tensor.extract_slice %wide[0, 0, 0, 0] [1, {f}, {geo.ho}, {geo.wo}] [1, 1, 1, 1] : {wide_t} "
         f"to {_t(out_shape)}")
