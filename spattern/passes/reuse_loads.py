"""reuse-loads (LRE): has the microkernels load each tap row once per run of same-pattern kernels and reuse it.

Writes on each `sparse_pattern.conv2d`:
  tap_masks  tensor<n_chunks x C x i32>: bit t set when some kept kernel of the chunk (`chunk_size` consecutive
             filters) on that channel reads tap t, i.e. the shifted input rows a tile pass over that (chunk,
             channel) must load at least once.
Its presence is what makes lower-to-microkernels pack with load reuse: the kernels of a (chunk, channel) that
share a pattern form one run, which loads its pattern's tap rows into registers once for all of them (the
kernel's register-level reuse); without it every kernel is its own run and loads its taps for itself (the
ablation in bench/speed.py). The portable path (lower-to-linalg) does not read it.
Stats, over the op's chunks: `runs`, the (chunk, channel, pattern) runs that each load their taps once;
`runs_without_reuse`, the kept kernels (one run each without this pass); `tap_rows`, the set bits of tap_masks
(the loads a tile would need if every tap row were loaded once per (chunk, channel)). The packer deals filters
into its own load-balanced chunks, so the kernel's run count can differ a little from `runs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch_mlir import ir

from ..dialect.sparse_pattern import CONV2D, conv2d_info, i32_elements, load_dialect
from .base import PassContext, ops_named
from .schedule import group_tap_masks


@dataclass
class ReuseLoads:
    name: ClassVar[str] = "reuse-loads"
    chunk_size: int = 64

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        load_dialect(module.context)
        runs = kernels = tap_rows = 0
        with module.context:
            for op in ops_named(module, CONV2D):
                info = conv2d_info(op)
                chunk = (int(ir.IntegerAttr(op.attributes["chunk_size"]).value) if "chunk_size" in op.attributes
                         else self.chunk_size)
                starts = np.arange(0, info.out_channels, chunk)
                chunks = np.stack([starts, np.minimum(chunk, info.out_channels - starts)], axis=1)
                masks = group_tap_masks(info, chunks)  # [n_chunks, C, 9]
                op.attributes["tap_masks"] = i32_elements((masks * (1 << np.arange(9))).sum(axis=2))
                kept = info.filter_kept()  # [F, C]
                used = np.zeros(kept.shape + (len(info.library),), dtype=bool)  # [F, C, L]: kernel's pattern
                f, c = np.nonzero(kept)
                used[f, c, info.filter_patterns()[f, c]] = True
                runs += int(sum(used[s:s + n].any(axis=0).sum() for s, n in chunks))
                kernels += int(kept.sum())
                tap_rows += int(masks.sum())
        ctx.stats[self.name] = {"runs": runs, "runs_without_reuse": kernels, "tap_rows": tap_rows}
