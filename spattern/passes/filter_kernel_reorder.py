"""filter-kernel-reorder (FKR): orders each chunk's kernels by (input channel, pattern).

Rewrites each `sparse_pattern.conv2d`: the weight rows are permuted into (filter chunk, input channel, pattern,
filter) order and `kernel_order` records which canonical kernel each row now holds (`chunk_size` records the
chunk). Why it pays: the microkernels walk each chunk's kernels in this order, so each (chunk, channel, pattern)
is one contiguous run that one hard-coded pattern loop serves, with no pattern branch per kernel (`kernel_order`
on the op is what makes lower-to-microkernels pack this order; its packer deals the filters into its own
load-balanced chunks and sorts each chunk the same way). The portable path (lower-to-linalg) does not depend on
it: it derives each group's rows from the kept kernels' taps.

Not done (see DESIGN.md notes): permuting filters across chunks for load balance, paid by permuting the next
layer's input channels; every permutation here is inside one op, so it costs nothing at run time by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch_mlir import ir

from ..dialect.constants import constant_array
from ..dialect.sparse_pattern import CONV2D, conv2d_info, i32_elements, load_dialect
from .base import PassContext, f32_constant, ops_named


def chunked_kernel_order(info, chunk_size: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Permutation of the canonical kernels into (chunk, channel, pattern, filter) order."""
    f, c = info.canonical_kernels()
    p = info.filter_patterns()[f, c]
    return np.lexsort((f, p, c, f // chunk_size)).astype(np.int64)


@dataclass
class FilterKernelReorder:
    """Options: `chunk_size` (filters per chunk of work; 64 matches the microkernels' accumulator tile)."""

    name: ClassVar[str] = "filter-kernel-reorder"
    chunk_size: int = 64

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        load_dialect(module.context)
        n = 0
        with module.context, ir.Location.unknown():
            for op in ops_named(module, CONV2D):
                info = conv2d_info(op)
                weights = constant_array(op.operands[1])
                current = info.kernel_order if info.kernel_order is not None else np.arange(len(weights))
                canonical = np.empty_like(weights)
                canonical[current] = weights  # back to canonical order, then into the new one
                order = chunked_kernel_order(info, self.chunk_size)
                with ir.InsertionPoint(op):
                    op.operands[1] = f32_constant(canonical[order])
                op.attributes["kernel_order"] = i32_elements(order)
                op.attributes["chunk_size"] = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), self.chunk_size)
                n += 1
        ctx.stats[self.name] = {"reordered": n}
