"""Pattern geometry shared by pruning, the dialect and the kernels.

A pattern is a set of 4 taps of a 3x3 kernel that always contains the center. Taps are numbered row-major,
tap = 3 * dy + dx with dy, dx in {0, 1, 2}, so the center is tap 4. There are C(8, 3) = 56 candidates; their
order here is fixed (lexicographic on the sorted taps) and is the global pattern id used everywhere: in a
PatternPlan's library, in `sparse_pattern` attributes and in the C microkernels, which have one loop per
candidate. Changing this order is a breaking change for saved plans and built kernels.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

CENTER_TAP = 4
TAPS_PER_PATTERN = 4

CANDIDATES: tuple[tuple[int, int, int, int], ...] = tuple(
    tuple(sorted((CENTER_TAP, *others)))  # type: ignore[misc]
    for others in combinations([t for t in range(9) if t != CENTER_TAP], 3)
)
assert len(CANDIDATES) == 56

_INDEX = {taps: i for i, taps in enumerate(CANDIDATES)}


def candidate_id(taps: tuple[int, ...] | list[int]) -> int:
    """Global id of the pattern with these taps; ValueError if it is not a center-plus-3 shape."""
    key = tuple(sorted(int(t) for t in taps))
    if key not in _INDEX:
        raise ValueError(f"taps {list(key)} are not a 4-tap pattern that keeps the center (tap 4)")
    return _INDEX[key]


def pattern_mask(candidate: int) -> np.ndarray:
    """3x3 boolean mask of a candidate pattern."""
    m = np.zeros(9, dtype=bool)
    m[list(CANDIDATES[candidate])] = True
    return m.reshape(3, 3)


def all_masks() -> np.ndarray:
    """[56, 3, 3] boolean masks of every candidate, in id order."""
    return np.stack([pattern_mask(i) for i in range(len(CANDIDATES))])


def tap_offset(tap: int) -> tuple[int, int]:
    """(dy, dx) of a tap, each in {0, 1, 2}."""
    return divmod(tap, 3)
