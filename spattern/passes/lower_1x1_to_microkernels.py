"""lower-1x1-to-microkernels: the 1x1 convs that conv-1x1-to-matmul made NCHW matmuls run in our C 1x1 kernel,
their BatchNorm, ReLU and residual add fused (CPU targets).

Rewrites each `func.call @spattern_conv1x1_nchw_<i>(%x, %w, %init)` (conv-1x1-to-matmul's matmul function, its
weight a constant and its init a per-filter constant: the conv's bias) and what follows it:
- the per-channel affine chain of an eval-mode BatchNorm, folded into the weights and bias (as import-patterns
  does for pattern convs);
- a ReLU, a residual add, or a residual add then a ReLU (lower-to-microkernels' `find_epilogue`),
into `func.call @spattern_mk_<n>(%x, %weights, %table[, %residual])`, where `%weights` (the weights packed in
blocks of 8 filters, then the bias) and `%table` (the header) are constants packed by
`spattern.microkernels.conv1x1_abi`. When the result's only user is a pattern conv that lower-to-microkernels lowers,
the call writes that conv's padded input, zeros included, as the pattern kernel's padded outputs do (marked
`spattern.padded_output`: the conv reads it with no pad copy). The private declaration carries
`spattern.microkernel = {workgroups = ..., kernel = "conv1x1"}`: `materialize_microkernels` gives it a custom
dispatch of kernels/conv1x1.c, as for the pattern convs. The unused matmul function is erased.

Why it pays: IREE runs these matmuls at 29-50% of the FMA peak, with data-tiling copies around each; the kernel's
register-blocked microtile is faster per core, its epilogue costs no pass over memory, and a padded output saves
the pad copy before a 3x3 conv: pattern ResNet-50 1.16-1.18x (the figures: bench/results/pass-measurements.txt,
bench/results/session7-conv1x1-kernel.txt).

Runs after conv-1x1-to-matmul (which picks the convs next to pattern convs) and before lower-to-microkernels, on
the microkernel path only. A call whose weight or init is not a constant is left to IREE (counted `skipped`,
recorded as a fallback).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch_mlir import ir

from ..dialect import constants
from ..microkernels.conv1x1_abi import KERNEL, pack_conv1x1
from .base import PassContext, erase_dead, module_symbols, ops_named, users
from .conv_1x1_to_matmul import CALLEE_PREFIX as MATMUL_PREFIX
from .import_patterns import fold_affine_chain, initial_bias
from .lower_to_microkernels import (PADDED_OUTPUT_ATTR, UNFUSED_RESIDUAL, Epilogue, declined_residual,
                                    emit_kernel_call, find_epilogue, interior, pattern_consumer_pads)


DECLINED = "1x1 conv whose weight or bias is not an f32 constant: IREE's matmul"


def _matmul_calls(module: ir.Module) -> list[ir.Operation]:
    return [op for op in ops_named(module, "func.call")
            if ir.FlatSymbolRefAttr(op.attributes["callee"]).value.startswith(MATMUL_PREFIX)]


@dataclass
class Lower1x1ToMicrokernels:
    """lower-1x1-to-microkernels (see the module docstring). workgroups: about how many workgroups each conv is
    split into (filter blocks x position panels); None: by the conv's size (conv1x1_abi.default_workgroups)."""

    workgroups: int | None = None
    name: ClassVar[str] = "lower-1x1-to-microkernels"

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        taken = module_symbols(module)
        stats = {"convs": 0, "skipped": 0, "fused_relu": 0, "fused_residual": 0, "padded_outputs": 0,
                 "filter_layout": 0}
        with module.context, ir.Location.unknown():
            for call in _matmul_calls(module):
                lowered = self._lower_one(module, call, taken, ctx)
                if lowered is None:
                    stats["skipped"] += 1
                    ctx.fall_back(self.name, call, DECLINED)
                    continue
                epilogue, padded, layout = lowered
                stats["convs"] += 1
                stats["padded_outputs"] += padded
                stats["filter_layout"] += layout != 0  # 1, or 2 (one position): vectors over filters
                stats["fused_relu"] += epilogue.relu
                stats["fused_residual"] += epilogue.residual is not None
            used = {ir.FlatSymbolRefAttr(op.attributes["callee"]).value for op in ops_named(module, "func.call")}
            for fn in list(module.body.operations):
                name = ir.StringAttr(fn.attributes["sym_name"]).value if "sym_name" in fn.attributes else ""
                if name.startswith(MATMUL_PREFIX) and name not in used:
                    fn.operation.erase()
            erase_dead(module)  # the conv's weight and bias constants
        ctx.stats[self.name] = stats

    def _lower_one(self, module: ir.Module, call: ir.Operation, taken: set[str],
                   ctx: PassContext) -> tuple[Epilogue, bool, int] | None:
        """(the fused epilogue, whether the output is a pattern conv's padded input, the kernel's layout), or
        None: left to IREE."""
        x, w_value = call.operands[0], call.operands[1]
        weight = constants.try_constant_array(w_value)
        _, c, h, w = (int(d) for d in ir.RankedTensorType(x.type).shape)
        out_shape = tuple(int(d) for d in ir.RankedTensorType(call.results[0].type).shape)
        f = out_shape[1]
        bias = initial_bias(call, f)
        if weight is None or bias is None or ir.RankedTensorType(x.type).element_type != ir.F32Type.get():
            return None
        scale, shift, last = fold_affine_chain(call, f)
        if declined_residual(last):
            ctx.fall_back(self.name, call, UNFUSED_RESIDUAL, path="unfused")
        epilogue = find_epilogue(last)
        end = epilogue.ops[-1] if epilogue.ops else last
        packed = pack_conv1x1(weight.reshape(f, c).astype(np.float32) * scale[:, None].astype(np.float32),
                              (bias * scale + shift).astype(np.float32), h, w, relu=epilogue.relu,
                              residual=epilogue.residual is not None, workgroups=self.workgroups,
                              out_pad=pattern_consumer_pads(end.results[0]))
        with ir.InsertionPoint(end), call.location:
            new = emit_kernel_call(module, taken, packed, KERNEL, x, epilogue.residual, self.name, call.location)
            value = new.results[0]
            if any(packed.out_pad):  # lower-to-microkernels' pattern conv then reads the padded buffer as is
                new.attributes[PADDED_OUTPUT_ATTR] = ir.DenseI64ArrayAttr.get(list(packed.out_pad))
                value = interior(value, packed.out_pad, out_shape)
        end.results[0].replace_all_uses_with(value)
        for dead in reversed(_chain(call, last) + epilogue.ops):
            dead.erase()
        call.erase()
        return epilogue, any(packed.out_pad), packed.layout


def _chain(call: ir.Operation, last: ir.Operation) -> list[ir.Operation]:
    """The ops from the call's only user to `last` (the affine chain fold_affine_chain folded), in order."""
    ops: list[ir.Operation] = []
    op = call
    while op != last:
        op = users(op.results[0])[0]
        ops.append(op)
    return ops
