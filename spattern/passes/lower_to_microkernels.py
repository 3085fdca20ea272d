"""lower-to-microkernels: each `sparse_pattern.conv2d` becomes a call to the C pattern microkernel (CPU targets).

Rewrites `%y = sparse_pattern.conv2d(%x, %weights, %bias)` into plain upstream IR:
`%p = tensor.pad %x` (the conv's padding plus the few zero rows the kernel may read past the image) and
`%y = func.call @spattern_mk_<n>(%p, %fkw, %table)`, where `%fkw` (f32: 4 weights per kept kernel in the order the
kernel reads them, then the bias) and `%table` (i32: header, per-kernel filter index, runs of same-pattern kernels
per (filter chunk, channel), filter chunks) are `arith.constant`s packed by `spattern.runtime.microkernel_abi`, and
`@spattern_mk_<n>` is a private declaration whose `spattern.microkernel = {workgroups = ...}` attribute says how to
dispatch it. `spattern.runtime.microkernel_dispatch.materialize_microkernels` later (in IREE's context) gives each
declaration a body: an IREE custom dispatch that links the kernel object for the target.

Why it pays: the kernel runs the conv channel-outer with the chunk's kernels sorted by pattern, each pattern
with its own hard-coded loop and the tap rows reused from registers (PatDNN's FKR + FKW + LRE), so it does
4 of 9 MACs per kept kernel at near-dense FMA throughput, with per-kernel patterns; IREE's own codegen of the
same conv is dense or a gather + matmul that is fast only with >= 64 filters per pattern. Convs the kernel cannot
run (stride other than 1/2, unequal strides or padding, padding > 1) are left for lower-to-linalg.

The packed order follows the passes that ran before: without `filter-kernel-reorder` (no `kernel_order` on the
op) kernels stay in filter order, and without `reuse-loads` (no `tap_masks`) every kernel loads its own taps;
that is how the ablation in bench/speed.py switches FKR and LRE off on this path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch_mlir import ir

from ..dialect.constants import constant_array
from ..dialect.sparse_pattern import CONV2D, conv2d_info, load_dialect
from ..errors import CompileError
from ..runtime.microkernel_abi import DEFAULT_WORKGROUPS, pack_conv
from ..runtime.microkernel_dispatch import CALLEE_PREFIX, MicrokernelCall, declaration_text
from .base import PassContext, ops_named


def _t(shape: tuple[int, ...], elt: str = "f32") -> str:
    return "tensor<" + "x".join(str(int(d)) for d in shape) + f"x{elt}>"


def _constant(values: np.ndarray, elt: ir.Type) -> ir.Value:
    values = np.ascontiguousarray(values)
    attr = ir.DenseElementsAttr.get(values, type=elt)
    return ir.Operation.create("arith.constant", results=[attr.type], attributes={"value": attr}).results[0]


@dataclass
class LowerToMicrokernels:
    """lower-to-microkernels (see the module docstring).

    workgroups: about how many workgroups each conv is split into (tiles x filter chunks), enough to keep 2-8
    threads busy; the packer rounds it to whole tile groups."""

    workgroups: int = DEFAULT_WORKGROUPS
    name: ClassVar[str] = "lower-to-microkernels"

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        load_dialect(module.context)
        lowered = skipped = kept_kernels = 0
        taken = {str(ir.StringAttr(op.attributes["sym_name"]).value) for op in module.body.operations
                 if "sym_name" in op.attributes}
        with module.context, ir.Location.unknown():
            for op in ops_named(module, CONV2D):
                info = conv2d_info(op)
                if not self.supported(info.strides, info.padding):
                    skipped += 1
                    continue
                i = lowered
                while f"{CALLEE_PREFIX}{i}" in taken:
                    i += 1
                name = f"{CALLEE_PREFIX}{i}"
                taken.add(name)
                kept_kernels += self._lower_one(module, op, name)
                lowered += 1
        ctx.stats[self.name] = {"convs": lowered, "left_for_linalg": skipped, "kept_kernels": kept_kernels}

    @staticmethod
    def supported(strides: tuple[int, ...], padding: tuple[int, ...]) -> bool:
        """Whether the microkernel runs a conv with these strides and padding."""
        return (len(set(strides)) == 1 and strides[0] in (1, 2) and len(set(padding)) == 1
                and padding[0] in (0, 1))

    def _lower_one(self, module: ir.Module, op: ir.Operation, name: str) -> int:
        info = conv2d_info(op)
        in_shape = tuple(int(d) for d in ir.RankedTensorType(op.operands[0].type).shape)
        out_shape = tuple(int(d) for d in ir.RankedTensorType(op.results[0].type).shape)
        dense = info.expand(constant_array(op.operands[1]))
        bias = constant_array(op.operands[2]).astype(np.float32)
        global_ids = np.asarray(info.library_ids(), dtype=np.int64)[info.filter_patterns()]
        packed = pack_conv(dense, global_ids, info.filter_kept(), bias, in_shape, stride=info.strides[0],
                           padding=info.padding[0], workgroups=self.workgroups,
                           reorder="kernel_order" in op.attributes, reuse_loads="tap_masks" in op.attributes)
        if packed.out_shape != out_shape:
            raise CompileError(f"lower-to-microkernels: {op.location}: result {out_shape} but the kernel "
                               f"computes {packed.out_shape}")
        call = MicrokernelCall(name, packed.padded_in_shape, packed.weights.size, packed.table.size,
                               out_shape, packed.workgroups)
        top, bottom, left, right = packed.geometry.pads()
        x_t, p_t = _t(in_shape), _t(call.in_shape)
        text = f"""
{declaration_text(call)}
func.func private @{name}_pad(%x: {x_t}) -> {p_t} {{
  %zero = arith.constant 0.000000e+00 : f32
  %p = tensor.pad %x low[0, 0, {top}, {left}] high[0, 0, {bottom}, {right}] {{
  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index):
    tensor.yield %zero : f32
  }} : {x_t} to {p_t}
  return %p : {p_t}
}}
"""
        try:
            parsed = ir.Module.parse(text)
        except ir.MLIRError as e:
            raise CompileError(f"lower-to-microkernels built invalid IR for {op.location}: {e}") from None
        anchor = module.body.operations[0].operation
        for fn in list(parsed.body.operations):
            fn.operation.move_before(anchor)
        with ir.InsertionPoint(op), op.location:
            padded = ir.Operation.create("func.call", results=[ir.Type.parse(p_t)], operands=[op.operands[0]],
                                         attributes={"callee": ir.FlatSymbolRefAttr.get(f"{name}_pad")})
            w = _constant(packed.weights, ir.F32Type.get())
            t = _constant(packed.table, ir.IntegerType.get_signless(32))
            result = ir.Operation.create("func.call", results=[op.results[0].type],
                                         operands=[padded.results[0], w, t],
                                         attributes={"callee": ir.FlatSymbolRefAttr.get(name)})
        op.results[0].replace_all_uses_with(result.results[0])
        op.erase()
        return packed.kept_kernels
