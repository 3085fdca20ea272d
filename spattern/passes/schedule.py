"""Decisions shared by the passes that write them and the portable lowering that reads them: filter groups and
the taps each group reads. Each function is the one definition of its table's meaning; the passes store the
result as attributes, and lower-to-linalg uses the pass-free default (`block_groups`) when group-patterns was
switched off, so every combination of passes stays correct. (The microkernel path's tables and their defaults
live with the passes that decide them: filter_kernel_reorder, group_patterns, compact_weights, reuse_loads.)
"""

from __future__ import annotations

import numpy as np
from torch_mlir import ir

from ..dialect.sparse_pattern import Conv2dInfo


def block_groups(info: Conv2dInfo) -> np.ndarray:
    """[B, 2] (first filter, count): one group per plan block (what the lowering uses without group-patterns)."""
    starts = np.arange(info.n_blocks) * info.filter_block
    counts = np.minimum(info.filter_block, info.out_channels - starts)
    return np.stack([starts, counts], axis=1).astype(np.int64)


def merged_groups(info: Conv2dInfo, min_filters: int) -> np.ndarray:
    """Consecutive plan blocks merged until each group has >= min_filters filters (the last may be smaller)."""
    rows: list[list[int]] = []
    for start, count in block_groups(info):
        if rows and rows[-1][1] < min_filters:
            rows[-1][1] += int(count)
        else:
            rows.append([int(start), int(count)])
    return np.array(rows, dtype=np.int64)


def group_tap_masks(info: Conv2dInfo, groups: np.ndarray) -> np.ndarray:
    """[G, C, 9] bool: tap t of channel c is read by some kept kernel of the group (lower-to-linalg's rows)."""
    kept = info.filter_kept()
    taps = np.zeros((len(info.library), 9), dtype=bool)
    for i, row in enumerate(info.library):
        taps[i, row] = True
    per_filter = taps[info.filter_patterns()] & kept[:, :, None]  # [F, C, 9]
    return np.stack([per_filter[s:s + n].any(axis=0) for s, n in groups])


def optional_table(op: ir.Operation, name: str) -> np.ndarray | None:
    if name not in op.attributes:
        return None
    return np.array(ir.DenseElementsAttr(op.attributes[name])).astype(np.int64)
