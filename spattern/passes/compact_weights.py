"""compact-weights (FKW): only kept weights, in the order the kernel reads them, plus the kernel's filter index.

On each `sparse_pattern.conv2d` (weights already 4 per kept kernel since import, their rows in the reading order
filter-kernel-reorder put them in) it writes:
  kernel_filter  tensor<K x i32>: the filter of each weight row as its index in its chunk's filter list
                 (`chunk_filters`), the byte the microkernel reads next to the row's 4 weights.
Why it pays: the microkernel streams weights and filter indices linearly (4 values + 1 byte per kept kernel) and
finds each kernel's accumulator row by that byte, with no search and no per-kernel branch. lower-to-microkernels
packs this table as it is (checking it against the chunks); without this pass it packs `local_filters` of the
reading order. The portable lowering builds its matmul operands at compile time from any order, so this pass
costs it nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch_mlir import ir

from ..dialect.sparse_pattern import CONV2D, conv2d_info, i32_elements, load_dialect
from .base import PassContext, ops_named
from .filter_kernel_reorder import chunk_index, op_chunks, reading_kernels, reading_order


def local_filters(chunks: list[np.ndarray], filters: np.ndarray, f: int) -> np.ndarray:
    """[K] each kernel's chunk-local filter index (of f filters dealt into `chunks`)."""
    return chunk_index(chunks, f)[1][filters]


@dataclass
class CompactWeights:
    name: ClassVar[str] = "compact-weights"

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        load_dialect(module.context)
        total = 0
        with module.context:
            for op in ops_named(module, CONV2D):
                info = conv2d_info(op)
                f, _, _ = reading_kernels(info, reading_order(op, info))
                op.attributes["kernel_filter"] = i32_elements(local_filters(op_chunks(op, info), f,
                                                                            info.out_channels))
                total += len(f)
        ctx.stats[self.name] = {"kept_kernels": total}
