"""conv-1x1-to-matmul: a 1x1 conv next to our pattern convs becomes a matmul in NCHW, W[F, C] x X[C, H*W], so
it needs no layout change.

Rewrite: a stride-1, unpadded 1x1 `linalg.conv_2d_nchw_fchw` over one image (the stride-2 ones have become
stride-1 convs of a subsampled input in strided-1x1-to-slice) becomes a call to a private function that collapses
x [1, C, H, W] to [C, H*W], the weight to [F, C] and the init to [F, H*W], runs `linalg.matmul` and expands the
result back to [1, F, H, W]: the same products summed over C, in NCHW. IREE inlines the call.

Which convs: those connected to a pattern conv, directly or through elementwise ops, pads and reshapes (a
folded BatchNorm, a ReLU, a residual add), or through 1x1 convs this pass has already rewritten: the conv reads
a tensor such a conv produced, its result reaches one, or its result is added to one's (a downsample's). That is
where the pattern microkernels' NCHW meets IREE's convs. Elsewhere (MobileNet-V2's 1x1 convs between depthwise
convs) IREE's own channels-last conv stays: there the NCHW matmul adds layout changes.

Why it pays: IREE runs its convs channels-last, so between our NCHW pattern convs every 1x1 conv came with
transposes, and one that reads our output fused the transpose into its loads, which kept it off IREE's
data-tiled (mmt4d) matmul path. As NCHW matmuls the chain needs no transpose and every 1x1 conv is data-tiled:
pattern ResNet-50 1.10x (the figures: bench/results/pass-measurements.txt).

Runs on the microkernel path after import-patterns and dense-3x3-to-patterns (the pattern convs exist as
`sparse_pattern.conv2d`), before lower-to-microkernels. Convs over a batch (N > 1), with dynamic shapes or mixed
element types are left alone (counted as `skipped`, recorded as fallbacks with the reason); convs not connected
to a pattern conv are not counted. A rewritten downsample conv may then be fused as a residual by
lower-to-microkernels (the call is not one of IREE's contractions there): in NCHW it needs no transpose, which is
what kept IREE's own contractions unfused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

from torch_mlir import ir

from .base import (CARRIERS, PassContext, add_functions, fresh_symbol, is_elementwise, module_symbols, ops_named,
                   produced_by, replace_with_call, tensor_type, users)

CONV_NCHW = "linalg.conv_2d_nchw_fchw"
CALLEE_PREFIX = "spattern_conv1x1_nchw_"
PATTERN_CONV = "sparse_pattern.conv2d"
_SEARCH_DEPTH = 8


def matmul_function_text(name: str, x: ir.RankedTensorType, w: ir.RankedTensorType,
                         out: ir.RankedTensorType) -> str:
    """The private function computing the 1x1 conv of x [1, C, H, W] by w [F, C, 1, 1] onto init [1, F, H, W]."""
    elt = x.element_type
    _, c, h, wd = x.shape
    f = w.shape[0]
    x_t, w_t, o_t = (tensor_type(list(t.shape), elt) for t in (x, w, out))
    xm_t, wm_t, om_t = tensor_type([c, h * wd], elt), tensor_type([f, c], elt), tensor_type([f, h * wd], elt)
    return f"""
func.func private @{name}(%x: {x_t}, %w: {w_t}, %init: {o_t}) -> {o_t} {{
  %xm = tensor.collapse_shape %x [[0, 1], [2, 3]] : {x_t} into {xm_t}
  %wm = tensor.collapse_shape %w [[0], [1, 2, 3]] : {w_t} into {wm_t}
  %im = tensor.collapse_shape %init [[0, 1], [2, 3]] : {o_t} into {om_t}
  %m = linalg.matmul ins(%wm, %xm : {wm_t}, {xm_t}) outs(%im : {om_t}) -> {om_t}
  %o = tensor.expand_shape %m [[0, 1], [2, 3]] output_shape [1, {f}, {h}, {wd}] : {om_t} into {o_t}
  return %o : {o_t}
}}
"""


def _is_nchw_conv(op: ir.Operation) -> bool:
    """A pattern conv, or a 1x1 conv this pass has made a call to its matmul function."""
    if op.name == PATTERN_CONV:
        return True
    return op.name == "func.call" and str(op.attributes["callee"]).startswith(f"@{CALLEE_PREFIX}")


def _reaches(value: ir.Value, match: Callable[[ir.Operation], bool], depth: int = _SEARCH_DEPTH) -> bool:
    """Whether `value` flows into an op that `match`es, through carriers and elementwise ops, or meets the result
    of one at an elementwise op (a residual add)."""
    if depth <= 0:
        return False
    for user in users(value):
        if user is None:
            continue
        if match(user):
            return True
        if is_elementwise(user) and any(produced_by(v, match, depth - 1, any_input=True)
                                        for v in user.operands if v != value):
            return True
        if (user.name in CARRIERS or is_elementwise(user)) and any(
                _reaches(r, match, depth - 1) for r in user.results):
            return True
    return False


def _is_1x1(op: ir.Operation) -> bool:
    w_t = ir.RankedTensorType(op.operands[1].type)
    return w_t.rank == 4 and list(w_t.shape[2:]) == [1, 1]


def _declined(op: ir.Operation) -> str | None:
    """Why a 1x1 conv next to pattern convs stays IREE's conv, or None: it is rewritable (static shapes, one
    element type, one image, stride 1 and no padding: strided-1x1-to-slice has made strided 1x1 convs so)."""
    x_t, w_t, out_t = (ir.RankedTensorType(v.type) for v in (op.operands[0], op.operands[1], op.results[0]))
    if not (x_t.has_static_shape and w_t.has_static_shape and out_t.has_static_shape):
        return "1x1 conv with dynamic shapes: IREE's conv"
    if not x_t.element_type == w_t.element_type == out_t.element_type:
        return "1x1 conv of mixed element types: IREE's conv"  # the function text has one element type
    if x_t.shape[0] != 1:
        return "1x1 conv over a batch: IREE's conv"
    if list(x_t.shape[2:]) != list(out_t.shape[2:]):
        return "strided or padded 1x1 conv: IREE's conv"
    return None


def _rewritable(op: ir.Operation) -> bool:
    return _declined(op) is None


def _connected(op: ir.Operation) -> bool:
    return (produced_by(op.operands[0], _is_nchw_conv, _SEARCH_DEPTH, any_input=True)
            or _reaches(op.results[0], _is_nchw_conv))


@dataclass
class Conv1x1ToMatmul:
    """conv-1x1-to-matmul (see the module docstring). No options."""

    name: ClassVar[str] = "conv-1x1-to-matmul"

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        taken = module_symbols(module)
        counts = {"rewritten": 0, "skipped": 0}
        with module.context, ir.Location.unknown():
            changed = True
            while changed:  # a rewritten conv connects its neighbours: repeat until nothing changes
                changed = False
                for op in ops_named(module, CONV_NCHW):
                    if _is_1x1(op) and _rewritable(op) and _connected(op):
                        self._rewrite(module, op, taken)
                        counts["rewritten"] += 1
                        changed = True
            left = [op for op in ops_named(module, CONV_NCHW) if _is_1x1(op) and _connected(op)]
            for op in left:
                ctx.fall_back(self.name, op, _declined(op) or "1x1 conv: IREE's conv")
            counts["skipped"] = len(left)
        ctx.stats[self.name] = counts

    @staticmethod
    def _rewrite(module: ir.Module, op: ir.Operation, taken: set[str]) -> None:
        x, w, init = op.operands[0], op.operands[1], op.operands[2]
        name = fresh_symbol(taken, CALLEE_PREFIX)
        text = matmul_function_text(name, *(ir.RankedTensorType(v.type) for v in (x, w, op.results[0])))
        add_functions(module, text, Conv1x1ToMatmul.name, op.location)
        replace_with_call(op, name, [x, w, init])
