"""group-patterns: forms the filter groups that the portable path's batched matmul serves, one batch entry each.

Writes `groups` [G, 2] (first filter, count) on each `sparse_pattern.conv2d`: consecutive plan blocks merged
until a group has >= `min_filters` filters. Why it pays: lower-to-linalg gathers, per group, the (channel, tap)
rows its kept kernels read and multiplies them by the group's filters, so a group's gather is amortised over its
filters only; a matmul over fewer than ~64 filters cannot amortise it (measured: blocks of 16 filters gave
0.99x), so blocks of 1 or 8 filters are served together, as one entry over the union of their taps (near-dense
work, near-dense speed), while blocks of >= 64 stay alone and keep 4 of 9 taps. The microkernels do not read
`groups` (their packer deals the filters into its own chunks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch_mlir import ir

from ..dialect.sparse_pattern import CONV2D, conv2d_info, i32_elements, load_dialect
from .base import PassContext, ops_named
from .schedule import merged_groups


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
                sizes.append(len(groups))
        ctx.stats[self.name] = {"groups_per_conv": sizes}
