"""pool-to-channels-last: rewrites a `linalg.pooling_nchw_max` whose input comes from a dense conv that IREE
compiles itself (through the folded BatchNorm, the ReLU and the -inf pad in front of the pool) into: transpose
to NHWC -> `linalg.pooling_nhwc_max` -> transpose back to NCHW. Same window, same init, same values.

Why it pays: on CPUs IREE runs its own convs channels-last (`iree-preprocessing-convert-conv-to-channels-last`)
and propagates the layout transposes. An NCHW max pool after such a conv (ResNet's stem) then becomes one
dispatch that reads the conv's NHWC output and writes NCHW: a transposing pool that IREE 3.13 vectorizes badly.
Written in NHWC, the first transpose cancels against the conv's, the pool vectorizes over channels, and the
transpose back to NCHW (the layout our microkernels read) fuses into the pool's stores, with the next
microkernel conv's pad: ResNet-18's stem pool 5x faster. A pool whose input is NCHW already (after a microkernel
conv, as in VGG) is not a candidate: there the rewrite would add a transpose (the figures:
bench/results/pass-measurements.txt).

Runs on the microkernel path after import-patterns, when pattern convs are `sparse_pattern.conv2d` ops and only
IREE's own convs count as producers. Pools with dynamic shapes are left alone (counted as `skipped`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch_mlir import ir

from .base import (PassContext, add_functions, fresh_symbol, module_symbols, produced_by, replace_with_call,
                   rewrite_each, tensor_type)

POOL_NCHW_MAX = "linalg.pooling_nchw_max"
CALLEE_PREFIX = "spattern_pool_nhwc_"



def _nhwc(shape: list[int]) -> list[int]:
    n, c, h, w = shape
    return [n, h, w, c]


def _is_iree_conv(op: ir.Operation) -> bool:
    return op.name.startswith("linalg.conv_2d")


def pool_function_text(name: str, x: ir.RankedTensorType, window: ir.Type, out: ir.RankedTensorType,
                       strides: str, dilations: str) -> str:
    """The private function that pools x [N, C, H, W] in NHWC, given the NCHW init, and returns NCHW."""
    elt = x.element_type
    x_t, o_t = tensor_type(list(x.shape), elt), tensor_type(list(out.shape), elt)
    xh_t, oh_t = tensor_type(_nhwc(list(x.shape)), elt), tensor_type(_nhwc(list(out.shape)), elt)
    return f"""
func.func private @{name}(%x: {x_t}, %window: {window}, %init: {o_t}) -> {o_t} {{
  %xe = tensor.empty() : {xh_t}
  %xh = linalg.transpose ins(%x : {x_t}) outs(%xe : {xh_t}) permutation = [0, 2, 3, 1]
  %ie = tensor.empty() : {oh_t}
  %ih = linalg.transpose ins(%init : {o_t}) outs(%ie : {oh_t}) permutation = [0, 2, 3, 1]
  %ph = linalg.pooling_nhwc_max {{dilations = {dilations}, strides = {strides}}}
      ins(%xh, %window : {xh_t}, {window}) outs(%ih : {oh_t}) -> {oh_t}
  %oe = tensor.empty() : {o_t}
  %o = linalg.transpose ins(%ph : {oh_t}) outs(%oe : {o_t}) permutation = [0, 3, 1, 2]
  return %o : {o_t}
}}
"""


@dataclass
class PoolToChannelsLast:
    """pool-to-channels-last (see the module docstring). No options."""

    name: ClassVar[str] = "pool-to-channels-last"

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        taken = module_symbols(module)

        def rewrite(op: ir.Operation) -> bool | None:
            if not produced_by(op.operands[0], _is_iree_conv):
                return None
            return self._rewrite(module, op, taken)

        ctx.stats[self.name] = rewrite_each(module, POOL_NCHW_MAX, rewrite)

    @staticmethod
    def _rewrite(module: ir.Module, op: ir.Operation, taken: set[str]) -> bool:
        x, window, init = op.operands[0], op.operands[1], op.operands[2]
        x_t, out_t = ir.RankedTensorType(x.type), ir.RankedTensorType(op.results[0].type)
        if not (x_t.has_static_shape and out_t.has_static_shape and x_t.rank == 4):
            return False
        name = fresh_symbol(taken, CALLEE_PREFIX)
        text = pool_function_text(name, x_t, window.type, out_t, str(op.attributes["strides"]),
                                  str(op.attributes["dilations"]))
        add_functions(module, text, PoolToChannelsLast.name, op.location)
        replace_with_call(op, name, [x, window, init])
        return True
