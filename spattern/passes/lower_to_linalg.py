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
from typing import ClassVar

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith, func, linalg, tensor

from ..dialect.constants import constant_array
from ..dialect.sparse_pattern import CONV2D, Conv2dInfo, conv2d_info, load_dialect
from ..errors import CompileError
from .base import PassContext, affine_map, f32_constant, ops_named, zero_pad
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

    def weights_type(self) -> ir.RankedTensorType:
        if self.tile:
            return _t((self.groups, self.width // self.tile, self.depth, self.tile, 1))
        return _t((self.groups, self.width, self.depth))

    def bias_type(self) -> ir.RankedTensorType:
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

        anchor = module.body.operations[0].operation  # the helper functions go at the top of the module
        with ir.InsertionPoint(anchor), op.location:
            _build_body(fname, in_shape, out_shape, geo, form, starts, groups)
            callee = fname
            if batch > 1:
                callee = f"{fname}_batch"
                _build_batch_wrapper(callee, fname, batch, in_shape, out_shape, args)
        with ir.InsertionPoint(op), op.location:
            values = [f32_constant(a) for a in args]
            call = ir.Operation.create("func.call", results=[op.results[0].type], operands=[op.operands[0], *values],
                                       attributes={"callee": ir.FlatSymbolRefAttr.get(callee)})
        op.results[0].replace_all_uses_with(call.results[0])
        op.erase()
        used = sum(len(r.channel) for r in rows)
        return used, form.groups * form.depth - used


def _t(shape: tuple[int, ...] | list[int], elt: ir.Type | None = None) -> ir.RankedTensorType:
    return ir.RankedTensorType.get([int(d) for d in shape], elt or ir.F32Type.get())


def _empty(shape: tuple[int, ...]) -> ir.Value:
    return tensor.EmptyOp([int(d) for d in shape], ir.F32Type.get()).result


def _slice(source: ir.Value, offsets: list[int], sizes: list[int], result: ir.RankedTensorType) -> ir.Value:
    """A unit-stride static tensor.extract_slice."""
    return tensor.ExtractSliceOp(result, source, [], [], [], offsets, sizes, [1] * len(sizes)).result


def _parallel(n: int) -> ir.ArrayAttr:
    return ir.ArrayAttr.get([ir.Attribute.parse("#linalg.iterator_type<parallel>")] * n)


def _build_body(fname: str, in_shape: tuple, out_shape: tuple, geo: WideRows, form: MatmulForm,
                starts: np.ndarray, groups: np.ndarray) -> None:
    """func.func private @fname(%x, %w, %bias) -> out: one image's conv (steps 1-3 of the module docstring), at
    the current insertion point."""
    fn = func.FuncOp(fname, ([_t(in_shape), form.weights_type(), form.bias_type()], [_t(out_shape)]),
                     visibility="private")
    with ir.InsertionPoint(fn.add_entry_block()):
        x, w, bias = fn.arguments
        zero = arith.ConstantOp(ir.F32Type.get(), 0.0).result
        flat = _flat_input(x, zero, in_shape, geo)
        rhs = _gather(flat, zero, geo, form, starts)
        matrix = _matmul(w, bias, rhs, form)
        func.ReturnOp([_output(matrix, form, groups, geo, out_shape)])


def _build_batch_wrapper(name: str, body: str, batch: int, in_shape: tuple, out_shape: tuple,
                         args: list[np.ndarray]) -> None:
    """A function that runs the one-image body on each image of the batch and concatenates the results
    (the matmul's columns are one image's positions; images stay separate so the layout stays NCHW)."""
    image_t, one_t = _t((batch, *in_shape[1:])), _t(out_shape)
    fn = func.FuncOp(name, ([image_t, *(_t(a.shape) for a in args)], [_t((batch, *out_shape[1:]))]),
                     visibility="private")
    with ir.InsertionPoint(fn.add_entry_block()):
        x, *weights = fn.arguments
        outs = []
        for i in range(batch):
            xi = _slice(x, [i, 0, 0, 0], [1, *in_shape[1:]], _t(in_shape))
            outs.append(func.CallOp([one_t], ir.FlatSymbolRefAttr.get(body), [xi, *weights]).result)
        func.ReturnOp([tensor.ConcatOp(_t((batch, *out_shape[1:])), 0, outs).result])


def _flat_input(x: ir.Value, zero: ir.Value, in_shape: tuple, geo: WideRows) -> ir.Value:
    """The padded input, phase-split for stride > 1, as one flat tensor."""
    c, s = geo.channels, geo.stride
    padded = _t((1, c, s * geo.hq, s * geo.wq))
    pad = zero_pad(x, [0, 0, *geo.pad_low], [0, 0, *geo.pad_high], zero)
    assert pad.type == padded, (pad.type, padded)
    flat_t = _t((geo.flat_size,))
    if s == 1:
        return tensor.CollapseShapeOp(flat_t, pad, [[0, 1, 2, 3]]).result
    split = tensor.ExpandShapeOp(_t((1, c, geo.hq, s, geo.wq, s)), pad, [[0], [1], [2, 3], [4, 5]], [],
                                 [1, c, geo.hq, s, geo.wq, s]).result
    split5 = tensor.CollapseShapeOp(_t((c, geo.hq, s, geo.wq, s)), split, [[0, 1], [2], [3], [4], [5]]).result
    phases = linalg.transpose(split5, outs=[_empty((s, s, c, geo.hq, geo.wq))], permutation=[2, 4, 0, 1, 3])
    return tensor.CollapseShapeOp(flat_t, phases, [[0, 1, 2, 3, 4]]).result


def _gather(flat: ir.Value, zero: ir.Value, geo: WideRows, form: MatmulForm, starts: np.ndarray) -> ir.Value:
    """Every group's rows, each a window of `flat`, in the matmul's right-hand-side layout: one generic over
    (group, row, column), or with tile t over (group, column tile, row, column in tile)."""
    i32, index = ir.IntegerType.get_signless(32), ir.IndexType.get()
    table = arith.ConstantOp(_t(starts.shape, i32), ir.DenseElementsAttr.get(np.ascontiguousarray(starts),
                                                                           type=i32)).result
    g, depth, t = form.groups, form.depth, form.tile
    shape, row_dim = ((g, form.cols // t, depth, t), 2) if t else ((g, depth, form.cols), 1)
    dims = len(shape)
    maps = [affine_map(dims, [0, row_dim]), ir.AffineMap.get_identity(dims)]
    gather = linalg.GenericOp([_t(shape)], [table], [_empty(shape)], ir.ArrayAttr.get([ir.AffineMapAttr.get(m)
                                                                                     for m in maps]), _parallel(dims))
    block = gather.regions[0].blocks.append(i32, ir.F32Type.get())
    with ir.InsertionPoint(block):
        d = [linalg.IndexOp(i).result for i in range(dims)]
        if t:
            col = arith.AddIOp(arith.MulIOp(d[1], arith.ConstantOp(index, t).result).result, d[3]).result
        else:
            col = d[2]
        start = tensor.ExtractOp(table, [d[0], d[row_dim]]).result
        c0 = arith.ConstantOp(i32, 0).result
        begin = arith.IndexCastOp(index, arith.MaxSIOp(start, c0).result).result
        value = tensor.ExtractOp(flat, [arith.AddIOp(begin, col).result]).result
        real = arith.CmpIOp(arith.CmpIPredicate.sge, block.arguments[0], c0).result
        linalg.YieldOp([arith.SelectOp(real, value, zero).result])
    if not t:
        return gather.result
    return tensor.ExpandShapeOp(_t((g, form.cols // t, depth, t, 1)), gather.result, [[0], [1], [2], [3, 4]], [],
                                [g, form.cols // t, depth, t, 1]).result


def _matmul(w: ir.Value, bias: ir.Value, rhs: ir.Value, form: MatmulForm) -> ir.Value:
    """The bias-initialised batched matmul, as a [groups * width, cols] matrix."""
    g, t, cols = form.groups, form.tile, form.cols
    matrix_t = _t((g * form.width, cols))
    if not t:
        init = linalg.broadcast(bias, outs=[_empty((g, form.width, cols))], dimensions=[2])
        product = linalg.batch_matmul(w, rhs, outs=[init])
        return tensor.CollapseShapeOp(matrix_t, product, [[0, 1], [2]]).result
    m1, n1 = form.width // t, cols // t
    init = linalg.broadcast(bias, outs=[_empty((g, m1, n1, t, t))], dimensions=[2, 4])
    tiles = linalg.batch_mmt4d(w, rhs, outs=[init])
    rows = linalg.transpose(tiles, outs=[_empty((g, m1, t, n1, t))], permutation=[0, 1, 3, 2, 4])
    return tensor.CollapseShapeOp(matrix_t, rows, [[0, 1, 2], [3, 4]]).result


def _output(matrix: ir.Value, form: MatmulForm, groups: np.ndarray, geo: WideRows, out_shape: tuple) -> ir.Value:
    """The real filters' rows and positions of `matrix` (padding filters, rounding and junk columns cut)."""
    f, n = out_shape[1], geo.n
    counts = [int(k) for _, k in groups]
    if all(k == form.width for k in counts[:-1]):  # only the last group (if any) is short: one slice
        filters = _slice(matrix, [0, 0], [f, n], _t((f, n)))
    else:
        parts = [_slice(matrix, [g * form.width, 0], [k, n], _t((k, n))) for g, k in enumerate(counts)]
        filters = tensor.ConcatOp(_t((f, n)), 0, parts).result
    wide = tensor.ExpandShapeOp(_t((1, f, geo.ho, geo.wq)), filters, [[0, 1], [2, 3]], [],
                                [1, f, geo.ho, geo.wq]).result
    return _slice(wide, [0, 0, 0, 0], [1, f, geo.ho, geo.wo], _t(out_shape))
