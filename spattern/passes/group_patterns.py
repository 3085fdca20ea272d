"""group-patterns: forms the filter groups that one matmul (portable path) or one inner loop serves.

Writes `groups` [G, 2] (first filter, count) on each `sparse_pattern.conv2d`: consecutive plan blocks merged
until a group has >= `min_filters` filters, and, when FKR ran, re-derives `channel_order` per group (the
channels sorted by the union of the taps the group reads). Why it pays: a matmul over fewer than ~64 filters
cannot amortise its gather (measured: blocks of 16 filters gave 0.99x), so blocks of 1 or 8 filters are served
together, as one matmul over the union of their taps (near-dense work, near-dense speed, instead of many tiny
matmuls that compile for minutes and run slower than dense); blocks of >= 64 stay alone and keep 4 of 9 taps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch_mlir import ir

from ..dialect.sparse_pattern import CONV2D, conv2d_info, i32_elements, load_dialect
from .base import PassContext, ops_named
from .schedule import merged_groups, pattern_sorted_channels


@dataclass
class GroupPatterns:
    """Options: `min_filters` per group (64: the block size the portable path needs to be fast)."""

    name: ClassVar[str] = "group-patterns"
    min_filters: int = 64

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        load_dialect(module.context)
        sizes: list[int] = []
        with module.context:
            for op in ops_named(module, CONV2D):
                info = conv2d_info(op)
                groups = merged_groups(info, self.min_filters)
                op.attributes["groups"] = i32_elements(groups)
                if "channel_order" in op.attributes:
                    op.attributes["channel_order"] = i32_elements(pattern_sorted_channels(info, groups))
                sizes.append(len(groups))
        ctx.stats[self.name] = {"groups_per_conv": sizes}
