"""reuse-loads (LRE): schedules each input tap to be loaded once and reused by every kernel that needs it.

Writes on each `sparse_pattern.conv2d`:
  tap_masks      tensor<n_chunks x C x i32>: bit t set when some kernel of the chunk on that channel reads tap t
                 (the microkernels load exactly these shifted vectors once per (tile, channel) and keep them in
                 registers for every kernel of the chunk);
  load_schedule  tensor<S x 4 x i32>: the portable path's tap slices (group, tap, first source channel, count):
                 per group and tap, each maximal run of consecutive source channels that read the tap is one
                 slice, so a tap shared by several patterns (the center tap: all of them) is sliced once.
Why it pays: without it the portable path slices each tap once per pattern run (VGG-small at 32x32: see the lit
test and bench/speed.py's ablation) and the gathered matrix is built from many more, shorter copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch_mlir import ir

from ..dialect.sparse_pattern import CONV2D, conv2d_info, i32_elements, load_dialect
from .base import PassContext, ops_named
from .schedule import block_groups, group_tap_masks, optional_table, schedule_to_array, slice_schedule


@dataclass
class ReuseLoads:
    name: ClassVar[str] = "reuse-loads"
    chunk_size: int = 64

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        load_dialect(module.context)
        merged = unmerged = 0
        with module.context:
            for op in ops_named(module, CONV2D):
                info = conv2d_info(op)
                chunk = (int(ir.IntegerAttr(op.attributes["chunk_size"]).value) if "chunk_size" in op.attributes
                         else self.chunk_size)
                starts = np.arange(0, info.out_channels, chunk)
                chunks = np.stack([starts, np.minimum(chunk, info.out_channels - starts)], axis=1)
                masks = group_tap_masks(info, chunks)
                op.attributes["tap_masks"] = i32_elements((masks * (1 << np.arange(9))).sum(axis=2))
                groups = optional_table(op, "groups")
                groups = block_groups(info) if groups is None else groups
                orders = optional_table(op, "channel_order")
                schedule = slice_schedule(info, groups, orders, merge_runs=True)
                op.attributes["load_schedule"] = i32_elements(schedule_to_array(schedule))
                merged += len(schedule)
                unmerged += len(slice_schedule(info, groups, orders, merge_runs=False))
        ctx.stats[self.name] = {"slices": merged, "slices_without_reuse": unmerged}
