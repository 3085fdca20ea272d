"""Timing shared by the benchmarks and `spattern demo`: ratios measured in one run, by alternating rounds,
reported as medians.

These machines are shared and noisy, so a benchmark never compares numbers from two runs: every engine is
timed in the same process, round-robin, and the ratio of medians is what is reported (with the spread).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class Timing:
    name: str
    samples: list[float]

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples) * 1e3

    @property
    def spread(self) -> float:
        """(p75 - p25) / median: the relative interquartile spread."""
        if len(self.samples) < 4:
            return float("nan")
        q = statistics.quantiles(self.samples, n=4)
        return (q[2] - q[0]) / statistics.median(self.samples)


def interleaved(fns: dict[str, Callable[[], object]], rounds: int = 9, warmup: int = 2,
                inner: int = 1) -> dict[str, Timing]:
    """Time each fn `rounds` times, alternating between them each round (fn order rotates)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            t0 = time.perf_counter()
            for _ in range(inner):
                fns[name]()
            samples[name].append((time.perf_counter() - t0) / inner)
    return {k: Timing(k, v) for k, v in samples.items()}
