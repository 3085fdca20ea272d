"""dense-3x3-to-patterns: a dense 3x3 conv over few input channels (the RGB input conv of VGG-style nets) becomes
a `sparse_pattern.conv2d`, so the pattern microkernel runs it instead of IREE.

Rewrite: every 3x3 kernel is the sum of three pattern kernels, centre plus 3 neighbours each (the library
DECOMPOSITION covers all 9 taps; the centre weight goes to the first pattern, tap 6, which two patterns hold,
to the second, and the copies hold zeros). The conv becomes one over 3C channels, virtual channel j*C + c being
input channel c under pattern j, and its input is `tensor.concat` of three copies of the original input (3 x 3
channels: 1.8 MB at 224x224). The result equals the dense conv up to float summation order. The BatchNorm after
it folds in as import-patterns folds it (the same rewrite), and every later pass treats it as a pattern conv.

Why it pays: IREE runs the RGB conv channels-last and then transposes its output into the padded NCHW input of
the first pattern conv. As a pattern conv it does 12 MACs per 9, but in our kernel, and, its only user being the
next pattern conv, writes that conv's padded input itself: no transpose, no pad (VGG-16-BN 1.03-1.06x). Only
convs with at most MAX_IN_CHANNELS input channels are rewritten: with more, IREE's conv is efficient and the 4/3
MACs cost more than its layout changes (the figures: bench/results/pass-measurements.txt).

Runs on the microkernel path after import-patterns (the plan's convs are already pattern convs, so every
`linalg.conv_2d_nchw_fchw` left is dense), before filter-kernel-reorder. Convs it cannot run (not 3x3, dilated,
stride other than 1 or 2, padding other than 0 or 1, weights not a constant, dynamic shapes, not f32) stay as
they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch_mlir import ir

from ..patterns import candidate_id
from ..plan import LayerPlan
from .base import PassContext, erase_dead, ops_named
from .import_patterns import DenseConv, dense_conv, initial_bias, rewrite_as_pattern_conv

MAX_IN_CHANNELS = 4
INIT_NOT_CONSTANT = "dense 3x3 conv over few channels: its init is not a per-filter constant"

# The three patterns (taps, tap = 3*dy + dx) whose sum is a dense 3x3 kernel, and which of them carries each tap.
DECOMPOSITION = ((0, 1, 2, 4), (3, 4, 5, 6), (4, 6, 7, 8))
TAP_OWNER = (0, 0, 0, 1, 0, 1, 1, 2, 2)


def decompose(weight: np.ndarray) -> np.ndarray:
    """[F, C, 3, 3] -> [F, 3C, 3, 3]: kernel (f, j*C + c) holds the taps of w[f, c] that pattern j carries."""
    f, c = weight.shape[:2]
    flat = weight.reshape(f, c, 9)
    parts = np.zeros((f, len(DECOMPOSITION), c, 9), dtype=weight.dtype)
    for tap, j in enumerate(TAP_OWNER):
        parts[:, j, :, tap] = flat[:, :, tap]
    return parts.reshape(f, len(DECOMPOSITION) * c, 3, 3)


def decomposed_layer(name: str, conv: DenseConv) -> LayerPlan:
    """The pattern structure of the decomposed conv: filter block 1, every kernel kept, virtual channel j*C + c
    under pattern j."""
    f, c = conv.weight.shape[:2]
    parts = len(DECOMPOSITION)
    return LayerPlan(name=name, weight_shape=(f, parts * c, 3, 3), stride=conv.stride, padding=conv.padding,
                     filter_block=1, library=[candidate_id(list(t)) for t in DECOMPOSITION],
                     pattern=np.repeat(np.arange(parts, dtype=np.int32), c)[None, :].repeat(f, 0),
                     kept=np.ones((f, parts * c), dtype=bool))


def _candidate(conv: DenseConv | None) -> bool:
    if conv is None or conv.weight.ndim != 4 or conv.weight.shape[2:] != (3, 3):
        return False
    if conv.dilation != (1, 1) or conv.stride not in ((1, 1), (2, 2)) or conv.padding not in ((0, 0), (1, 1)):
        return False
    in_type = ir.RankedTensorType(conv.input.type)
    return in_type.has_static_shape and in_type.rank == 4 and isinstance(in_type.element_type, ir.F32Type)


def _concat_copies(x: ir.Value, copies: int, before: ir.Operation) -> ir.Value:
    """tensor.concat of `copies` copies of NCHW `x` along C, inserted before `before`."""
    t = ir.RankedTensorType(x.type)
    n, c, h, w = t.shape
    out = ir.RankedTensorType.get([n, copies * c, h, w], t.element_type)
    with ir.InsertionPoint(before):
        op = ir.Operation.create("tensor.concat", results=[out], operands=[x] * copies,
                                 attributes={"dim": ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 1)},
                                 loc=before.location)
    return op.results[0]


@dataclass
class Dense3x3ToPatterns:
    """dense-3x3-to-patterns (see the module docstring). Option: `max_in_channels`."""

    name: ClassVar[str] = "dense-3x3-to-patterns"
    max_in_channels: int = MAX_IN_CHANNELS

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        rewritten: list[str] = []
        with module.context, ir.Location.unknown():
            for op in ops_named(module, "linalg.conv_2d_nchw_fchw"):
                conv = dense_conv(op)
                if not _candidate(conv) or conv.weight.shape[1] > self.max_in_channels:
                    continue
                if initial_bias(op, conv.weight.shape[0]) is None:  # checked before the input copies are built
                    ctx.fall_back(self.name, op, INIT_NOT_CONSTANT)
                    continue
                name = f"dense3x3_{len(rewritten)}"
                virtual = DenseConv(op=op, input=_concat_copies(conv.input, len(DECOMPOSITION), op),
                                    weight=decompose(conv.weight), stride=conv.stride, padding=conv.padding,
                                    dilation=conv.dilation)
                if rewrite_as_pattern_conv(virtual, decomposed_layer(name, conv)):
                    rewritten.append(name)
            erase_dead(module)
        ctx.stats[self.name] = {"rewritten": len(rewritten)}
