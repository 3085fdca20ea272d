"""lower-to-microkernels: each `sparse_pattern.conv2d` becomes a call to the C pattern microkernel (CPU targets).

Rewrites `%y = sparse_pattern.conv2d(%x, %weights, %bias)` into plain upstream IR:
`%p = tensor.pad %x` (the conv's padding plus the few zero rows the kernel may read past the image) and
`%y = func.call @spattern_mk_<n>(%p, %fkw, %table)`, where `%fkw` (f32: 4 weights per kept kernel in the order the
kernel reads them, then the bias) and `%table` (i32: header, per-kernel filter index, runs of same-pattern kernels
per (filter chunk, channel), filter chunks) are `arith.constant`s packed by `spattern.microkernels.microkernel_abi`, and
`@spattern_mk_<n>` is a private declaration whose `spattern.microkernel = {workgroups = ...}` attribute says how to
dispatch it. `spattern.microkernels.microkernel_dispatch.materialize_microkernels` later (in IREE's context) gives each
declaration a body: an IREE custom dispatch that links the kernel object for the target.

The conv's epilogue is fused where the IR allows: a ReLU that is the conv's only user, and a residual add (the
conv plus another tensor of its shape, as in a ResNet block) that is the conv's only user, with or without a ReLU
that is the add's only user. A residual that IREE computes with a conv, matmul or pool of its own (a downsample
branch) is left unfused (see `_from_iree_contraction`). The kernel then writes relu(conv + bias + residual) in
its write-out, and the elementwise dispatches IREE would otherwise run over the whole output (one read and one
write of it each) are gone. The residual is the kernel's fourth, read-only operand (microkernel_dispatch). The
kernel's ReLU maps NaN to 0 (as `max(x, 0)`), where torch keeps it.

A conv whose result (after its fused epilogue) is the input of another pattern conv this pass lowers writes
that conv's padded input directly (`out_pad`: the zeros around the outputs included, each element written by
exactly one workgroup); its call returns the padded tensor, marked `spattern.padded_output`, the consumer takes
it as is, and the `tensor.pad` copy between the two convs (a dispatch of its own) is gone. The result may have
other users where they cost no copy of their own (`pattern_consumer_pads`): pattern convs that add it as their
fused residual read it from the padded buffer in place (`res_pad`), and slices (a strided 1x1 conv's
subsampling) read through the interior. Other users see the outputs through a `tensor.extract_slice`. VGG-16: 7
of its 12 pattern convs write padded outputs (35 -> 23 dispatches per call with the ReLU fusion); ResNet-18: 9
of 16, the first block's output among them (the next block's first conv and residual add both read it: one pad
copy fewer). Its later block outputs also feed a downsample's subsampling (strided-1x1-to-slice's reshape):
allowing that user too left the number of copies unchanged (measured), so they stay unpadded.

Why it pays: the kernel runs the conv channel-outer with the chunk's kernels sorted by pattern, each pattern
with its own hard-coded loop and the tap rows reused from registers (PatDNN's FKR + FKW + LRE), so it does
4 of 9 MACs per kept kernel at near-dense FMA throughput, with per-kernel patterns; IREE's own codegen of the
same conv is dense or a gather + matmul that is fast only with >= 64 filters per pattern. Convs the kernel cannot
run (stride other than 1/2, unequal strides or padding, padding > 1) are left for lower-to-linalg, which the
microkernel pipeline runs after this pass (recorded as "portable" fallbacks; an unfused residual as "unfused").

The kernel's tables are the op's, packed as they are (`op_schedule`; microkernel_abi.pack_conv checks and
serializes them): filter-kernel-reorder's chunks and kernel order, compact-weights' chunk-local filter indices,
group-patterns' runs as reuse-loads marked them. A table whose pass did not run takes that pass's default (no
reorder: consecutive chunks of <= 64 filters, kernels in (chunk, channel, filter) order; no runs or no marks:
every kernel its own run); that is how the ablation in bench/speed.py switches FKR and LRE off on this path. A
hand-edited table runs as edited, and one the kernel cannot follow is a PlanError naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith

from ..dialect.constants import constant_array
from ..dialect.sparse_pattern import CONV2D, Conv2dInfo, conv2d_info, load_dialect
from ..errors import CompileError, PlanError
from ..patterns import CANDIDATES
from ..microkernels.microkernel_abi import (DEFAULT_WORKGROUPS, ConvGeometry, ConvSchedule, PackedConv,
                                             consumer_pads, pack_conv)
from ..microkernels.microkernel_dispatch import CALLEE_PREFIX, MicrokernelCall, declaration_text
from .base import tensor_type as _t
from .compact_weights import local_filters
from .filter_kernel_reorder import (chunk_size, deal_filters, identity_chunks, op_chunks, reading_kernels,
                                    reading_order, sorted_kernels)
from .group_patterns import chunk_pattern_runs, runs_or_default
from .reuse_loads import kernel_runs, tap_bits
from .schedule import optional_table
from .base import (PassContext, add_functions, add_pad_function, as_op, dense_constant, fresh_symbol, indexing_maps,
                   is_elementwise, module_symbols, ops_named, produced_by, same_value, users)

_RELU_PREDICATES = frozenset({int(arith.CmpFPredicate.OGT), int(arith.CmpFPredicate.UGT)})
PADDED_OUTPUT_ATTR = "spattern.padded_output"  # on a microkernel call that writes its consumer's padded input


@dataclass
class Epilogue:
    """The ops after a conv that the kernel's write-out takes over: out = relu?(conv + bias + residual?).
    `ops` are the fused ops in program order (empty: nothing fused); the call replaces the last one's result."""

    ops: list[ir.Operation]
    residual: ir.Value | None = None
    relu: bool = False


def _identity_elementwise(op: ir.Operation, n_inputs: int, like: ir.Type) -> bool:
    """A `linalg.generic` with n_inputs inputs and one result, all of type `like`, identity maps, all parallel."""
    if not is_elementwise(op) or len(op.results) != 1 or op.results[0].type != like:
        return False
    if list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"])) != [n_inputs, 1]:
        return False
    identity = ir.AffineMap.get_identity(ir.RankedTensorType(like).rank)
    return all(m == identity for m in indexing_maps(op)) and all(o.type == like for o in op.operands[:n_inputs])


def _is_zero(value: ir.Value) -> bool:
    op = as_op(value.owner)
    if op is None or op.name != "arith.constant":
        return False
    try:
        return float(ir.FloatAttr(op.attributes["value"]).value) == 0.0
    except ValueError:
        return False


def _body(op: ir.Operation) -> tuple[list[ir.Operation], list[ir.Value]]:
    block = op.regions[0].blocks[0]
    return [as_op(o) for o in block.operations], list(block.arguments)


def is_relu(op: ir.Operation, like: ir.Type) -> bool:
    """max(x, 0) as torch-mlir writes it (cmpf ugt/ogt + select) or as arith.maximumf / maxnumf."""
    if not _identity_elementwise(op, 1, like):
        return False
    ops, args = _body(op)
    x = args[0]
    if [o.name for o in ops] == ["arith.cmpf", "arith.select", "linalg.yield"]:
        cmp, sel, yld = ops
        return (ir.IntegerAttr(cmp.attributes["predicate"]).value in _RELU_PREDICATES
                and cmp.operands[0] == x and _is_zero(cmp.operands[1])
                and sel.operands[0] == cmp.results[0] and sel.operands[1] == x and _is_zero(sel.operands[2])
                and yld.operands[0] == sel.results[0])
    if [o.name for o in ops] in (["arith.maximumf", "linalg.yield"], ["arith.maxnumf", "linalg.yield"]):
        mx, yld = ops
        a, b = mx.operands[0], mx.operands[1]
        return ((a == x and _is_zero(b)) or (b == x and _is_zero(a))) and yld.operands[0] == mx.results[0]
    return False


def _residual_of(op: ir.Operation, conv_result: ir.Value) -> ir.Value | None:
    """The other addend when `op` is conv_result + other (either order) of one shape; else None."""
    if not _identity_elementwise(op, 2, conv_result.type):
        return None
    ops, args = _body(op)
    if [o.name for o in ops] != ["arith.addf", "linalg.yield"] or ops[1].operands[0] != ops[0].results[0]:
        return None
    p, q = ops[0].operands[0], ops[0].operands[1]
    if not ((p == args[0] and q == args[1]) or (p == args[1] and q == args[0])):
        return None
    a, b = op.operands[0], op.operands[1]
    if a == conv_result and b != conv_result:
        return b
    if b == conv_result and a != conv_result:
        return a
    return None


_CONTRACTIONS = ("linalg.conv", "linalg.matmul", "linalg.batch_matmul", "linalg.depthwise", "linalg.pooling")


def _from_iree_contraction(value: ir.Value) -> bool:
    """Whether `value` is computed by a conv/matmul/pooling that IREE compiles itself, possibly through
    elementwise ops (a folded-in BatchNorm). Such a residual stays unfused: as an operand of our dispatch it must
    arrive in NCHW, and IREE 3.13 then fuses the layout transpose into the contraction, which loses its fast path
    (ResNet-18's 1x1 downsample, 128x28x28x64: 0.13 -> 35 ms)."""
    return produced_by(value, lambda op: op.name.startswith(_CONTRACTIONS) or (
        op.name == "linalg.generic" and not is_elementwise(op)))


UNFUSED_RESIDUAL = "residual add not fused: the residual comes from IREE's own conv, matmul or pool"
BEYOND_KERNEL = "pattern conv beyond the microkernel (strides 1-2, equal padding 0-1): portable path"


def declined_residual(conv: ir.Operation) -> bool:
    """Whether `conv`'s only user is a residual add that find_epilogue leaves unfused (_from_iree_contraction)."""
    y = conv.results[0]
    after = users(y)
    if len(after) != 1 or after[0] is None:
        return False
    residual = _residual_of(after[0], y)
    return residual is not None and _from_iree_contraction(residual)


def find_epilogue(conv: ir.Operation) -> Epilogue:
    """The relu / residual add / residual add + relu that follows `conv` and only it (see the module docstring)."""
    y = conv.results[0]
    after = users(y)
    if len(after) != 1 or after[0] is None:
        return Epilogue([])
    first = after[0]
    if is_relu(first, y.type):
        return Epilogue([first], relu=True)
    residual = _residual_of(first, y)
    if residual is None or _from_iree_contraction(residual):
        return Epilogue([])
    then = users(first.results[0])
    if len(then) == 1 and then[0] is not None and is_relu(then[0], y.type):
        return Epilogue([first, then[0]], residual=residual, relu=True)
    return Epilogue([first], residual=residual)


def _residual_of_pattern_conv(user: ir.Operation, value: ir.Value) -> bool:
    """Whether `user` is an add that lower-to-microkernels fuses into a pattern conv's kernel with `value` as the
    residual (the conv + value, the conv's only user). Any other user (a 1x1 kernel's call that took the pattern
    conv's result as its own fused residual, with `value` as its input) is not."""
    for other in user.operands:
        conv = as_op(other.owner) if other != value else None
        if conv is None or conv.name != CONV2D:
            continue
        info = conv2d_info(conv)
        if LowerToMicrokernels.supported(info.strides, info.padding) and same_value(
                find_epilogue(conv).residual, value):
            return True
    return False


class PackedKernelOperands(Protocol):
    """What emit_kernel_call needs of a packed layer (conv1x1_abi.PackedConv1x1, maxpool_abi.PackedMaxPool)."""

    weights: np.ndarray
    table: np.ndarray
    workgroups: int

    @property
    def in_shape(self) -> tuple[int, int, int, int]: ...

    @property
    def out_shape(self) -> tuple[int, int, int, int]: ...

    @property
    def out_buffer_shape(self) -> tuple[int, int, int, int]: ...


def emit_kernel_call(module: ir.Module, taken: set[str], packed: PackedKernelOperands, kernel: str, x: ir.Value,
                     residual: ir.Value | None, pass_name: str, where: ir.Location) -> ir.Operation:
    """At the current insertion point: `func.call @spattern_mk_<n>(x, weights, table[, residual])` of the C kernel
    `kernel` (a spattern.microkernels.kernels.KERNELS name other than the pattern conv's) on `packed` (its result:
    packed.out_buffer_shape), and the private declaration of that callee."""
    name = fresh_symbol(taken, CALLEE_PREFIX)
    decl = MicrokernelCall(name, packed.in_shape, packed.weights.size, packed.table.size, packed.out_buffer_shape,
                           packed.workgroups, res_shape=packed.out_shape if residual is not None else None,
                           kernel=kernel)
    add_functions(module, declaration_text(decl), pass_name, where)
    operands = [x, dense_constant(packed.weights, ir.F32Type.get()),
                dense_constant(packed.table, ir.IntegerType.get_signless(32))]
    if residual is not None:
        operands.append(residual)
    return ir.Operation.create("func.call", results=[ir.Type.parse(_t(packed.out_buffer_shape))],
                               operands=operands, attributes={"callee": ir.FlatSymbolRefAttr.get(name)})


def padded_source(value: ir.Value) -> tuple[ir.Value, tuple[int, int, int, int]] | None:
    """(buffer, pads) when `value` is the interior of a microkernel's padded output (see `interior`)."""
    sliced = as_op(value.owner)
    if sliced is None or sliced.name != "tensor.extract_slice":
        return None
    source = sliced.operands[0]
    producer = as_op(source.owner)
    if producer is None or producer.name != "func.call" or PADDED_OUTPUT_ATTR not in producer.attributes:
        return None
    pads = tuple(ir.DenseI64ArrayAttr(producer.attributes[PADDED_OUTPUT_ATTR]))
    n, f, h, w = (int(d) for d in ir.RankedTensorType(value.type).shape)
    whole = [n, f, h + pads[0] + pads[1], w + pads[2] + pads[3]]
    if (list(ir.DenseI64ArrayAttr(sliced.attributes["static_offsets"])) != [0, 0, pads[0], pads[2]]
            or any(v != 1 for v in ir.DenseI64ArrayAttr(sliced.attributes["static_strides"]))
            or [int(d) for d in ir.RankedTensorType(source.type).shape] != whole):
        return None  # not the whole interior
    return source, pads


def pattern_consumer_pads(value: ir.Value, shared: bool = False) -> tuple[int, int, int, int]:
    """The padding the microkernel of a pattern conv lower-to-microkernels lowers reads, when that conv is
    `value`'s only user (so the producer can write its padded input); else no padding. shared: also when, besides
    that conv, `value` is read as the fused residual of pattern convs (which then read the padded buffer's
    interior in place) or through slices. A ResNet block's output feeds the next block's first conv and its
    residual add: written padded, it needs no pad copy."""
    after = users(value)
    convs = [u for u in after if u is not None and u.name == CONV2D and u.operands[0] == value]
    if len(convs) != 1:
        return (0, 0, 0, 0)
    others = [u for u in after if u is None or u != convs[0]]
    if others and not (shared and all(
            u is not None and (u.name == "tensor.extract_slice" or _residual_of_pattern_conv(u, value))
            for u in others)):
        return (0, 0, 0, 0)
    info = conv2d_info(convs[0])
    if not LowerToMicrokernels.supported(info.strides, info.padding):
        return (0, 0, 0, 0)
    n, c, h, w = (int(d) for d in ir.RankedTensorType(value.type).shape)
    return consumer_pads(n, c, h, w, info.strides[0], info.padding[0])


@dataclass
class LowerToMicrokernels:
    """lower-to-microkernels (see the module docstring).

    workgroups: about how many workgroups each conv is split into (tiles x filter chunks), enough to keep 2-8
    threads busy; the packer rounds it to whole tile groups."""

    workgroups: int = DEFAULT_WORKGROUPS
    name: ClassVar[str] = "lower-to-microkernels"

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        load_dialect(module.context)
        lowered = skipped = kept_kernels = fused_relu = fused_residual = padded_outputs = 0
        taken = module_symbols(module)
        with module.context, ir.Location.unknown():
            for op in ops_named(module, CONV2D):
                info = conv2d_info(op)
                if not self.supported(info.strides, info.padding):
                    skipped += 1
                    ctx.fall_back(self.name, op, BEYOND_KERNEL, path="portable")
                    continue
                if declined_residual(op):
                    ctx.fall_back(self.name, op, UNFUSED_RESIDUAL, path="unfused")
                kept, epilogue, padded_output = self._lower_one(module, op, fresh_symbol(taken, CALLEE_PREFIX))
                kept_kernels += kept
                padded_outputs += padded_output
                fused_relu += epilogue.relu
                fused_residual += epilogue.residual is not None
                lowered += 1
        ctx.stats[self.name] = {"convs": lowered, "left_for_linalg": skipped, "kept_kernels": kept_kernels,
                                "fused_relu": fused_relu, "fused_residual": fused_residual,
                                "padded_outputs": padded_outputs}

    @staticmethod
    def supported(strides: tuple[int, ...], padding: tuple[int, ...]) -> bool:
        """Whether the microkernel runs a conv with these strides and padding."""
        return (len(set(strides)) == 1 and strides[0] in (1, 2) and len(set(padding)) == 1
                and padding[0] in (0, 1))

    def _lower_one(self, module: ir.Module, op: ir.Operation, name: str) -> tuple[int, Epilogue, bool]:
        info = conv2d_info(op)
        in_shape = tuple(int(d) for d in ir.RankedTensorType(op.operands[0].type).shape)
        out_shape = tuple(int(d) for d in ir.RankedTensorType(op.results[0].type).shape)
        dense = info.expand(constant_array(op.operands[1]))
        bias = constant_array(op.operands[2]).astype(np.float32)
        epilogue = find_epilogue(op)
        # At the last fused op: a residual may be computed after the conv (ResNet's downsample branch).
        last = epilogue.ops[-1] if epilogue.ops else op
        residual, res_pad = epilogue.residual, (0, 0, 0, 0)
        residual_slice = as_op(residual.owner) if residual is not None else None
        found = padded_source(residual) if residual is not None else None
        if found is not None:
            residual, res_pad = found  # read in place: no copy of the interior
        packed = pack_conv(dense, op_schedule(op, info), bias, in_shape, stride=info.strides[0],
                           padding=info.padding[0], workgroups=self.workgroups, relu=epilogue.relu,
                           residual=residual is not None,
                           out_pad=pattern_consumer_pads(last.results[0], shared=True), res_pad=res_pad)
        if packed.out_shape != out_shape:
            raise CompileError(f"lower-to-microkernels: {op.location}: result {out_shape} but the kernel "
                               f"computes {packed.out_shape}")
        call = MicrokernelCall(name, packed.padded_in_shape, packed.weights.size, packed.table.size,
                               packed.out_buffer_shape, packed.workgroups,
                               res_shape=packed.res_buffer_shape if packed.residual else None)
        prepadded = _prepadded_input(op.operands[0], packed)
        top, bottom, left, right = packed.geometry.pads()
        p_t = _t(call.in_shape)
        if prepadded is None:  # (the declaration then goes above it, where the two were parsed before)
            add_pad_function(module, f"{name}_pad", ir.RankedTensorType(op.operands[0].type), [0, 0, top, left],
                             [0, 0, bottom, right], op.location)
        add_functions(module, declaration_text(call), self.name, op.location)
        with ir.InsertionPoint(last), op.location:
            if prepadded is None:
                prepadded = ir.Operation.create(
                    "func.call", results=[ir.Type.parse(p_t)], operands=[op.operands[0]],
                    attributes={"callee": ir.FlatSymbolRefAttr.get(f"{name}_pad")}).results[0]
            w = dense_constant(packed.weights, ir.F32Type.get())
            t = dense_constant(packed.table, ir.IntegerType.get_signless(32))
            operands = [prepadded, w, t]
            if residual is not None:
                operands.append(residual)
            result = ir.Operation.create("func.call", results=[ir.Type.parse(_t(call.out_shape))],
                                         operands=operands, attributes={"callee": ir.FlatSymbolRefAttr.get(name)})
            value = result.results[0]
            if any(packed.out_pad):
                result.attributes[PADDED_OUTPUT_ATTR] = ir.DenseI64ArrayAttr.get(list(packed.out_pad))
                value = interior(value, packed.out_pad, out_shape)
        last.results[0].replace_all_uses_with(value)
        input_slice = as_op(op.operands[0].owner)
        for fused in reversed(epilogue.ops):
            fused.erase()
        op.erase()
        same = residual_slice is not None and input_slice is not None and residual_slice == input_slice
        slices = [input_slice] if same else [input_slice, residual_slice]
        for sliced in slices:  # interiors of padded outputs now read in place (one slice may serve both)
            if sliced is not None and sliced.name == "tensor.extract_slice" and not list(sliced.results[0].uses):
                sliced.erase()
        return packed.kept_kernels, epilogue, any(packed.out_pad)


def op_schedule(op: ir.Operation, info: Conv2dInfo) -> ConvSchedule:
    """The kernel's tables as the passes left them on `op` (each absent one: its pass's default)."""
    return schedule_tables(info, op_chunks(op, info), reading_order(op, info), optional_table(op, "kernel_filter"),
                           optional_table(op, "runs"), optional_table(op, "run_taps"))


def schedule_tables(info: Conv2dInfo, chunks: list[np.ndarray], order: np.ndarray, kernel_filter: np.ndarray | None,
                    runs: np.ndarray | None, run_taps: np.ndarray | None) -> ConvSchedule:
    """The ConvSchedule of these chunks, reading order (canonical kernels), kernel_filter, runs (library pattern
    indices) and run_taps; None: that table's pass did not run (its default)."""
    f, c, p = reading_kernels(info, order)
    if kernel_filter is None:
        kernel_filter = local_filters(chunks, f, info.out_channels)
    runs = runs_or_default(runs, p)
    if np.any((runs[:, 1] < 0) | (runs[:, 1] >= len(info.library))):
        raise PlanError(f"runs: a run's pattern is outside the library's {len(info.library)} entries")
    table_runs = kernel_runs(runs, run_taps, info.library)
    ids = np.asarray(info.library_ids(), dtype=np.int64)
    table_runs[:, 1] = ids[table_runs[:, 1]]
    return ConvSchedule(tuple(chunks), f, c, ids[p], kernel_filter, table_runs)


def pack_pruned_conv(weight: np.ndarray, pattern_ids: np.ndarray, kept: np.ndarray, bias: np.ndarray | None,
                     input_shape: tuple[int, int, int, int], *, stride: int = 1, padding: int = 1,
                     reorder: bool = True, reuse_loads: bool = True, **packing: object) -> PackedConv:
    """pack_conv of a pruned dense weight [F, C, 3, 3] (global pattern ids and kept mask [F, C]) with the tables the
    passes decide for it: filter-kernel-reorder (reorder), group-patterns, compact-weights and reuse-loads
    (reuse_loads); for tests and benchmarks that run the kernel without IR. `packing`: pack_conv's options."""
    f, c = np.asarray(weight).shape[:2]
    pattern_ids, kept = np.asarray(pattern_ids, dtype=np.int64), np.asarray(kept, dtype=bool)
    if pattern_ids.shape != (f, c) or kept.shape != (f, c):
        raise PlanError(f"pattern ids {pattern_ids.shape} and kept mask {kept.shape} must both be [F, C] = {(f, c)}")
    if np.any(kept & ((pattern_ids < 0) | (pattern_ids >= len(CANDIDATES)))):
        raise PlanError("a kept kernel has a pattern id outside 0..55")
    ids, index = np.unique(np.where(kept, pattern_ids, pattern_ids[kept][0] if kept.any() else 0),
                           return_inverse=True)
    info = Conv2dInfo(c, f, 1, np.asarray(CANDIDATES, dtype=np.int64)[ids], index.reshape(f, c), kept,
                      (stride, stride), (padding, padding), None)
    n, _, h, w = input_shape
    units = n * ConvGeometry(n, c, h, w, f, stride, padding).ntiles()
    chunks = (deal_filters(kept.sum(axis=1), chunk_size(f, units)) if reorder else identity_chunks(f))
    order = sorted_kernels(info, chunks, by_pattern=reorder)
    runs = chunk_pattern_runs(info, chunks, order)
    marks = tap_bits(info.library)[runs[:, 1]] if reuse_loads else None
    return pack_conv(weight, schedule_tables(info, chunks, order, None, runs, marks), bias, input_shape,
                     stride=stride, padding=padding, **packing)  # type: ignore[arg-type]


def interior(padded: ir.Value, pads: tuple[int, int, int, int], shape: tuple[int, ...]) -> ir.Value:
    """The outputs inside a padded microkernel output, as a tensor.extract_slice."""
    top, _, left, _ = pads
    elt = ir.RankedTensorType(padded.type).element_type
    return ir.Operation.create(
        "tensor.extract_slice", results=[ir.RankedTensorType.get(list(shape), elt)], operands=[padded],
        attributes={"static_offsets": ir.DenseI64ArrayAttr.get([0, 0, top, left]),
                    "static_sizes": ir.DenseI64ArrayAttr.get(list(shape)),
                    "static_strides": ir.DenseI64ArrayAttr.get([1, 1, 1, 1]),
                    "operandSegmentSizes": ir.DenseI32ArrayAttr.get([1, 0, 0, 0])}).results[0]


def _prepadded_input(x: ir.Value, packed: PackedConv) -> ir.Value | None:
    """The padded tensor a producing microkernel wrote for this conv (x = its interior), if it wrote exactly the
    padding this conv reads; else None (the conv pads its input itself)."""
    found = padded_source(x)
    if found is None:
        return None
    source, pads = found
    shape = tuple(int(d) for d in ir.RankedTensorType(source.type).shape)
    if pads != packed.geometry.pads() or shape != packed.padded_in_shape:
        return None
    return source
