"""compact-weights (FKW): only kept weights, in the order the kernel reads them, plus the index tables.

On each `sparse_pattern.conv2d` (weights already 4 per kept kernel since import) it puts the rows in the
reading order (FKR's `kernel_order`; chunk-major with `chunk_size`, default 64, when FKR did not run) and adds:
  kernel_filter  tensor<K x i32>: the filter of each weight row, relative to its chunk's first filter;
  group_offsets  tensor<n_chunks x C x (L+1) x i32>: first weight row of each (chunk, channel, pattern), so
                 the rows of pattern p on channel c of chunk j are [off[j, c, p], off[j, c, p+1]).
Why it pays: the microkernels then stream weights and filter indices linearly (4 values + 1 index per kept
kernel) and find each pattern's run by one table load, with no search and no per-kernel branch. The portable
lowering builds its matmul operands at compile time from any order, so this pass costs it nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch_mlir import ir

from ..dialect.sparse_pattern import CONV2D, conv2d_info, i32_elements, load_dialect
from ..errors import PatternVerifyError
from .base import PassContext, ops_named
from .filter_kernel_reorder import FilterKernelReorder


@dataclass
class CompactWeights:
    name: ClassVar[str] = "compact-weights"
    chunk_size: int = 64

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        load_dialect(module.context)
        ops = ops_named(module, CONV2D)
        if any("kernel_order" not in op.attributes for op in ops):
            FilterKernelReorder(chunk_size=self.chunk_size).run(module, ctx)  # the reading order is FKR's
        total = 0
        with module.context:
            for op in ops:
                info = conv2d_info(op)
                chunk = int(ir.IntegerAttr(op.attributes["chunk_size"]).value)
                f, c = info.canonical_kernels()
                f, c = f[info.kernel_order], c[info.kernel_order]
                p = info.filter_patterns()[f, c]
                j = f // chunk
                key = (j * info.in_channels + c) * len(info.library) + p
                if np.any(np.diff(key) < 0):
                    raise PatternVerifyError(f"compact-weights: the kernels of {op.location} are not in (chunk, "
                                             "channel, pattern) order; run filter-kernel-reorder first")
                n_chunks = -(-info.out_channels // chunk)
                counts = np.bincount(key, minlength=n_chunks * info.in_channels * len(info.library))
                offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
                shaped = np.empty((n_chunks, info.in_channels, len(info.library) + 1), dtype=np.int64)
                base = offsets[:-1].reshape(n_chunks, info.in_channels, len(info.library))
                shaped[:, :, :-1] = base
                shaped[:, :, -1] = base[:, :, -1] + counts.reshape(base.shape)[:, :, -1]
                op.attributes["kernel_filter"] = i32_elements(f - j * chunk)
                op.attributes["group_offsets"] = i32_elements(shaped)
                total += len(f)
        ctx.stats[self.name] = {"kept_kernels": total}
