"""group-patterns: forms the runs the microkernel's pattern loops serve, and the portable path's filter groups.

Writes on each `sparse_pattern.conv2d`:
  runs    tensor<R x 3 x i32>: (first kernel, pattern, count): the kernels, in the order the microkernel reads
          them (filter-kernel-reorder's), cut into maximal stretches of one (chunk, channel) and one pattern
          (`pattern`: an index into `library`); each run is one pass of one hard-coded pattern loop.
  groups  tensor<G x 2 x i32>: (first filter, count): consecutive plan blocks merged until a group has >=
          `min_filters` filters, one batch entry of the portable path's matmul.
Why it pays: on the microkernel path a run is what reuse-loads lets load its taps once (lower-to-microkernels
packs exactly these runs; without this pass every kernel is its own run). On the portable path, lower-to-linalg
gathers, per group, the (channel, tap) rows its kept kernels read and multiplies them by the group's filters, so
a group's gather is amortised over its filters only; a matmul over fewer than ~64 filters cannot amortise it
(measured: blocks of 16 filters gave 0.99x), so blocks of 1 or 8 filters are served together, as one entry over
the union of their taps (near-dense work, near-dense speed), while blocks of >= 64 stay alone and keep 4 of 9
taps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch_mlir import ir

from ..dialect.sparse_pattern import CONV2D, Conv2dInfo, conv2d_info, i32_elements, load_dialect
from .base import PassContext, ops_named
from .filter_kernel_reorder import chunk_index, op_chunks, reading_kernels, reading_order
from .schedule import merged_groups


def pattern_runs(groups: np.ndarray, patterns: np.ndarray) -> np.ndarray:
    """[R, 3] (first, pattern, count): maximal stretches of equal (group, pattern) in the kernel order."""
    k = len(patterns)
    new_run = np.ones(k, dtype=bool)
    new_run[1:] = (groups[1:] != groups[:-1]) | (patterns[1:] != patterns[:-1])
    first = np.nonzero(new_run)[0]
    count = np.diff(np.append(first, k))
    return np.stack([first, patterns[first], count], axis=1).astype(np.int64).reshape(-1, 3)


def runs_or_default(runs: np.ndarray | None, patterns: np.ndarray) -> np.ndarray:
    """The op's `runs` table, or without this pass every kernel (of these patterns, in reading order) its own run."""
    if runs is not None:
        return runs.reshape(-1, 3)
    k = len(patterns)
    return np.stack([np.arange(k), patterns, np.ones(k, dtype=np.int64)], axis=1).astype(np.int64).reshape(-1, 3)


def chunk_pattern_runs(info: Conv2dInfo, chunks: list[np.ndarray], order: np.ndarray) -> np.ndarray:
    """The runs of the kernels `order` lists (the reading order) over `chunks`."""
    f, c, p = reading_kernels(info, order)
    chunk_of, _ = chunk_index(chunks, info.out_channels)
    return pattern_runs(chunk_of[f] * info.in_channels + c, p)


@dataclass
class GroupPatterns:
    """Options: `min_filters` per portable group (64: the block size the portable path needs to be fast)."""

    name: ClassVar[str] = "group-patterns"
    min_filters: int = 64

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        load_dialect(module.context)
        sizes: list[int] = []
        n_runs = 0
        with module.context:
            for op in ops_named(module, CONV2D):
                info = conv2d_info(op)
                groups = merged_groups(info, self.min_filters)
                op.attributes["groups"] = i32_elements(groups)
                sizes.append(len(groups))
                runs = chunk_pattern_runs(info, op_chunks(op, info), reading_order(op, info))
                op.attributes["runs"] = i32_elements(runs)
                n_runs += len(runs)
        ctx.stats[self.name] = {"groups_per_conv": sizes, "runs": n_runs}
