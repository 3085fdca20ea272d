"""Decisions shared by the passes that write them and the lowerings that read them: filter groups, channel
orders and the portable path's tap-slice schedule. Each function is the one definition of its table's meaning;
the passes store the result as attributes, and the lowerings recompute the pass-free default when a pass was
switched off (ablation), so every combination of passes stays correct.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """[G, C, 9] bool: tap t of channel c is read by some kept kernel of the group."""
    kept = info.filter_kept()
    taps = np.zeros((len(info.library), 9), dtype=bool)
    for i, row in enumerate(info.library):
        taps[i, row] = True
    per_filter = taps[info.filter_patterns()] & kept[:, :, None]  # [F, C, 9]
    return np.stack([per_filter[s:s + n].any(axis=0) for s, n in groups])


def pattern_sorted_channels(info: Conv2dInfo, groups: np.ndarray) -> np.ndarray:
    """[G, C] channel order per group: channels whose taps match sort together (by the group's tap set, read as a
    9-bit number, center first), unused channels last. FKR's order for the portable path."""
    masks = group_tap_masks(info, groups)
    keys = (masks * (1 << np.arange(9))).sum(axis=2)  # [G, C]
    keys = np.where(masks.any(axis=2), keys, 1 << 10)
    return np.stack([np.argsort(k, kind="stable") for k in keys]).astype(np.int64)


@dataclass
class Slice:
    """Rows [row, row+count) of a group's gathered matrix: tap `tap` of source channels [start, start+count)."""

    group: int
    tap: int
    start: int
    count: int


def slice_schedule(info: Conv2dInfo, groups: np.ndarray, channel_orders: np.ndarray | None,
                   merge_runs: bool) -> list[Slice]:
    """The tap slices each group gathers, tap-major. The source channel index is a position in the group's
    channel order (a gathered copy of the input) when `channel_orders` is given, else an input channel.
    With `merge_runs` (reuse-loads), each maximal run of consecutive source channels that need a tap is one
    slice; without it, one slice per run of channels that share the same tap set (pattern), so a tap shared by
    several patterns is sliced once per pattern."""
    masks = group_tap_masks(info, groups)
    out: list[Slice] = []
    for g in range(len(groups)):
        order = channel_orders[g] if channel_orders is not None else np.arange(info.in_channels)
        m = masks[g][order]  # [C, 9] in source order
        keys = (m * (1 << np.arange(9))).sum(axis=1)
        for tap in range(9):
            need = m[:, tap]
            start = None
            for pos in range(len(order) + 1):
                inside = pos < len(order) and need[pos]
                breaks = (not merge_runs and start is not None and inside and keys[pos] != keys[pos - 1])
                if start is not None and (not inside or breaks):
                    out.append(Slice(g, tap, start, pos - start))
                    start = None
                if inside and start is None:
                    start = pos
    return out


def schedule_to_array(schedule: list[Slice]) -> np.ndarray:
    return np.array([[s.group, s.tap, s.start, s.count] for s in schedule], dtype=np.int64).reshape(-1, 4)


def schedule_from_array(rows: np.ndarray) -> list[Slice]:
    return [Slice(int(g), int(t), int(s), int(n)) for g, t, s, n in rows]


def optional_table(op: ir.Operation, name: str) -> np.ndarray | None:
    if name not in op.attributes:
        return None
    return np.array(ir.DenseElementsAttr(op.attributes[name])).astype(np.int64)
