"""lower-to-linalg: the portable lowering of `sparse_pattern.conv2d` to upstream linalg/tensor ops.

Each conv becomes a call to a private function (IREE inlines it) that, per filter group: (optionally) gathers
the group's used input channels in the group's channel order (one `linalg.generic` + `tensor.extract`), cuts the
taps it needs as strided `tensor.extract_slice`s of the zero-padded NCHW input, stacks them with `tensor.concat`
into a [rows, Ho*Wo] matrix and runs one `linalg.matmul` of the group's [filters, rows] weights (initialised with
the bias); the groups' results are concatenated along channels. Output stays NCHW, so nothing is transposed.
Why it pays: a group of >= 64 filters that share one pattern per channel reads 4 of 9 taps per kept channel, so
the matmul does 4/9 of the dense MACs (less with removed kernels) on a target that has only generic codegen
(Vulkan). It is correct for every block size: a group's rows are the union of the taps its filters need (with
zeros in the weights where a filter does not use a row); fine blocks therefore run near dense speed, which is
why group-patterns merges them into >= 64-filter groups.

Reads, when present: `groups` (group-patterns), `channel_order` (filter-kernel-reorder), `load_schedule`
(reuse-loads); otherwise one group per plan block, input channels in natural order, unmerged slices.
A batch of N images calls the one-image function N times (a wrapper concatenates the results).
IREE never sees a sparse_pattern op after this pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch_mlir import ir

from ..dialect.constants import constant_array
from ..dialect.sparse_pattern import CONV2D, conv2d_info, load_dialect
from ..errors import CompileError
from .base import PassContext, f32_constant, ops_named
from .schedule import Slice, block_groups, group_tap_masks, optional_table, schedule_from_array, slice_schedule


def _t(shape: tuple[int, ...] | list[int], elt: str = "f32") -> str:
    return "tensor<" + "x".join(str(int(d)) for d in shape) + f"x{elt}>"


@dataclass
class GroupPlan:
    first: int
    count: int
    order: np.ndarray | None  # gathered channel order (used channels only) or None: read the input directly
    slices: list[Slice]


@dataclass
class LowerToLinalg:
    """lower-to-linalg (see the module docstring). No options: what it does is set by the passes before it."""

    name: ClassVar[str] = "lower-to-linalg"

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        load_dialect(module.context)
        ops = ops_named(module, CONV2D)
        n_matmuls = n_slices = 0
        with module.context, ir.Location.unknown():
            for i, op in enumerate(ops):
                mm, sl = self._lower_one(module, op, f"__spattern_conv_{i}")
                n_matmuls += mm
                n_slices += sl
        ctx.stats[self.name] = {"convs": len(ops), "matmuls": n_matmuls, "slices": n_slices}

    def _plan_groups(self, op: ir.Operation) -> list[GroupPlan]:
        info = conv2d_info(op)
        groups = optional_table(op, "groups")
        groups = block_groups(info) if groups is None else groups
        orders = optional_table(op, "channel_order")
        if orders is not None and orders.shape != (len(groups), info.in_channels):
            raise CompileError(f"lower-to-linalg: channel_order {orders.shape} does not match {len(groups)} groups")
        table = optional_table(op, "load_schedule")
        schedule = (schedule_from_array(table) if table is not None
                    else slice_schedule(info, groups, orders, merge_runs=False))
        used = group_tap_masks(info, groups).any(axis=2)  # [G, C]
        plans: list[GroupPlan] = []
        for g, (first, count) in enumerate(groups):
            order = None
            if orders is not None:
                n_used = int(used[g].sum())
                order = orders[g][:n_used]
                if np.array_equal(order, np.arange(n_used)):
                    order = None  # already in input order: slice the input itself, no copy
            plans.append(GroupPlan(int(first), int(count), order, [s for s in schedule if s.group == g]))
        return plans

    def _lower_one(self, module: ir.Module, op: ir.Operation, fname: str) -> tuple[int, int]:
        info = conv2d_info(op)
        in_shape = tuple(ir.RankedTensorType(op.operands[0].type).shape)
        out_shape = tuple(ir.RankedTensorType(op.results[0].type).shape)
        batch = int(in_shape[0])
        in_shape, out_shape = (1, *in_shape[1:]), (1, *out_shape[1:])  # the body computes one image
        dense = info.expand(constant_array(op.operands[1]))  # [F, C, 3, 3]
        plans = self._plan_groups(op)
        n, c, h, w = in_shape
        f, ho, wo = out_shape[1], out_shape[2], out_shape[3]
        ph, pw = info.padding
        sh, sw = info.strides
        hp, wp = h + 2 * ph, w + 2 * pw
        flat = dense.reshape(f, c, 9)

        weights: list[np.ndarray] = []
        lines: list[str] = []
        emit = lines.append
        emit("%zero = arith.constant 0.000000e+00 : f32")
        x_src, x_type = "%x", _t(in_shape)
        if ph or pw:
            emit(f"%xp = tensor.pad %x low[0, 0, {ph}, {pw}] high[0, 0, {ph}, {pw}] {{\n"
                 f"^bb0(%i0: index, %i1: index, %i2: index, %i3: index):\n  tensor.yield %zero : f32\n"
                 f"}} : {x_type} to {_t((1, c, hp, wp))}")
            x_src, x_type = "%xp", _t((1, c, hp, wp))
        results: list[tuple[str, int]] = []
        n_slices = 0
        for g, plan in enumerate(plans):
            src, src_type = x_src, x_type
            if plan.order is not None:
                k = len(plan.order)
                idx = ", ".join(str(int(v)) for v in plan.order)
                emit(f"%idx{g} = arith.constant dense<[{idx}]> : {_t((k,), 'i32')}")
                emit(f"%ge{g} = tensor.empty() : {_t((1, k, hp, wp))}")
                emit(f"%gat{g} = linalg.generic {{indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d1)>, "
                     f"affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>], iterator_types = [\"parallel\", "
                     f"\"parallel\", \"parallel\", \"parallel\"]}} ins(%idx{g} : {_t((k,), 'i32')}) "
                     f"outs(%ge{g} : {_t((1, k, hp, wp))}) {{\n"
                     f"^bb0(%chi: i32, %o: f32):\n  %ch = arith.index_cast %chi : i32 to index\n  %d0 = linalg.index 0 : index\n"
                     f"  %d2 = linalg.index 2 : index\n  %d3 = linalg.index 3 : index\n"
                     f"  %v = tensor.extract {x_src}[%d0, %ch, %d2, %d3] : {x_type}\n  linalg.yield %v : f32\n"
                     f"}} -> {_t((1, k, hp, wp))}")
                src, src_type = f"%gat{g}", _t((1, k, hp, wp))
            rows_ch: list[np.ndarray] = []
            rows_tap: list[np.ndarray] = []
            parts: list[tuple[str, int]] = []
            for s_i, s in enumerate(plan.slices):
                dy, dx = divmod(s.tap, 3)
                name = f"%s{g}_{s_i}"
                emit(f"{name} = tensor.extract_slice {src}[0, {s.start}, {dy}, {dx}] [1, {s.count}, {ho}, {wo}] "
                     f"[1, 1, {sh}, {sw}] : {src_type} to {_t((s.count, ho, wo))}")
                positions = np.arange(s.start, s.start + s.count)
                rows_ch.append(plan.order[positions] if plan.order is not None else positions)
                rows_tap.append(np.full(s.count, s.tap))
                parts.append((name, s.count))
            n_slices += len(parts)
            first, count = plan.first, plan.count
            emit(f"%bg{g} = tensor.extract_slice %bias[{first}] [{count}] [1] : {_t((f,))} to {_t((count,))}")
            emit(f"%ie{g} = tensor.empty() : {_t((count, ho * wo))}")
            emit(f"%init{g} = linalg.broadcast ins(%bg{g} : {_t((count,))}) outs(%ie{g} : {_t((count, ho * wo))}) "
                 f"dimensions = [1]")
            if not parts:
                results.append((f"%init{g}", count))
                continue
            rows = sum(k for _, k in parts)
            if len(parts) == 1:
                cat = parts[0][0]
            else:
                cat = f"%cat{g}"
                emit(f"{cat} = tensor.concat dim(0) " + ", ".join(p for p, _ in parts) + " : ("
                     + ", ".join(_t((k, ho, wo)) for _, k in parts) + f") -> {_t((rows, ho, wo))}")
            emit(f"%cols{g} = tensor.collapse_shape {cat} [[0], [1, 2]] : {_t((rows, ho, wo))} into "
                 f"{_t((rows, ho * wo))}")
            ch, tap = np.concatenate(rows_ch), np.concatenate(rows_tap)
            weights.append(np.ascontiguousarray(flat[first:first + count][:, ch, tap]))
            wi = len(weights) - 1
            emit(f"%mm{g} = linalg.matmul ins(%w{wi}, %cols{g} : {_t((count, rows))}, {_t((rows, ho * wo))}) "
                 f"outs(%init{g} : {_t((count, ho * wo))}) -> {_t((count, ho * wo))}")
            results.append((f"%mm{g}", count))
        if len(results) == 1:
            allr = results[0][0]
        else:
            allr = "%all"
            emit("%all = tensor.concat dim(0) " + ", ".join(r for r, _ in results) + " : ("
                 + ", ".join(_t((k, ho * wo)) for _, k in results) + f") -> {_t((f, ho * wo))}")
        emit(f"%out = tensor.expand_shape {allr} [[0, 1], [2, 3]] output_shape [1, {f}, {ho}, {wo}] : "
             f"{_t((f, ho * wo))} into {_t(out_shape)}")
        emit(f"return %out : {_t(out_shape)}")
        w_args = "".join(f", %w{i}: {_t(wt.shape)}" for i, wt in enumerate(weights))
        text = (f"func.func private @{fname}(%x: {_t(in_shape)}, %bias: {_t((f,))}{w_args}) -> {_t(out_shape)} {{\n"
                + "\n".join("  " + ln for ln in lines) + "\n}")
        callee = fname
        if batch > 1:
            callee = f"{fname}_batch"
            text += "\n" + self._batch_wrapper(callee, fname, batch, in_shape, out_shape, f, weights)
        try:
            parsed = ir.Module.parse(text)
        except ir.MLIRError as e:
            raise CompileError(f"lower-to-linalg built invalid IR for {op.location}: {e}") from None
        anchor = module.body.operations[0].operation
        for func in list(parsed.body.operations):
            func.operation.move_before(anchor)
        with ir.InsertionPoint(op), op.location:
            w_vals = [f32_constant(wt) for wt in weights]
            call = ir.Operation.create(
                "func.call", results=[op.results[0].type], operands=[op.operands[0], op.operands[2], *w_vals],
                attributes={"callee": ir.FlatSymbolRefAttr.get(callee)})
        op.results[0].replace_all_uses_with(call.results[0])
        op.erase()
        return len(weights), n_slices

    @staticmethod
    def _batch_wrapper(name: str, body: str, batch: int, in_shape: tuple, out_shape: tuple, f: int,
                       weights: list[np.ndarray]) -> str:
        """A function that runs the one-image body on each image of the batch and concatenates the results
        (the matmul's columns are one image's positions; images stay separate so the layout stays NCHW)."""
        x_t, o_t = _t((batch, *in_shape[1:])), _t((batch, *out_shape[1:]))
        w_args = "".join(f", %w{i}: {_t(wt.shape)}" for i, wt in enumerate(weights))
        w_uses = "".join(f", %w{i}" for i in range(len(weights)))
        w_types = "".join(f", {_t(wt.shape)}" for wt in weights)
        lines = []
        for i in range(batch):
            lines.append(f"%x{i} = tensor.extract_slice %x[{i}, 0, 0, 0] [1, {', '.join(str(d) for d in in_shape[1:])}]"
                         f" [1, 1, 1, 1] : {x_t} to {_t(in_shape)}")
            lines.append(f"%y{i} = func.call @{body}(%x{i}, %bias{w_uses}) : ({_t(in_shape)}, {_t((f,))}{w_types}) "
                         f"-> {_t(out_shape)}")
        lines.append("%out = tensor.concat dim(0) " + ", ".join(f"%y{i}" for i in range(batch)) + " : ("
                     + ", ".join(_t(out_shape) for _ in range(batch)) + f") -> {o_t}")
        lines.append(f"return %out : {o_t}")
        return (f"func.func private @{name}(%x: {x_t}, %bias: {_t((f,))}{w_args}) -> {o_t} {{\n"
                + "\n".join("  " + ln for ln in lines) + "\n}")
