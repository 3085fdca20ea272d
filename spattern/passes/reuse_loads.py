"""reuse-loads (LRE): marks, per run of same-pattern kernels, the taps it loads once for all its kernels.

Writes on each `sparse_pattern.conv2d` (after group-patterns):
  run_taps  tensor<R x i32>: per run of `runs`, bit t set when the run loads tap t's input row into registers
            once and every kernel of the run reuses it: its pattern's 4 taps. 0 means no reuse: each kernel of
            the run loads its taps for itself.
Why it pays: the microkernel's run loop loads its pattern's 3 off-centre tap rows (the centre is loaded once per
channel) and then costs 4 FMAs per vector per kernel; without reuse each kernel is a run of its own and pays the
loads and the loop setup alone (the ablation in bench/speed.py). lower-to-microkernels packs a marked run as one
kernel run and splits an unmarked one (or every run, without this pass) into runs of one kernel. The portable
path (lower-to-linalg) does not read it.
Stats, over the ops: `runs`, the kernel runs the microkernel executes; `runs_without_reuse`, the kept kernels
(one run each without this pass).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch_mlir import ir

from ..dialect.sparse_pattern import CONV2D, conv2d_info, i32_elements, load_dialect
from ..errors import PlanError
from .base import PassContext, ops_named
from .filter_kernel_reorder import reading_kernels, reading_order
from .group_patterns import runs_or_default
from .schedule import optional_table


def tap_bits(library: np.ndarray) -> np.ndarray:
    """[L] each library pattern's taps as a bit mask (bit t: tap t = 3*dy + dx)."""
    return (1 << np.asarray(library, dtype=np.int64)).sum(axis=1)


def kernel_runs(runs: np.ndarray, run_taps: np.ndarray | None, library: np.ndarray) -> np.ndarray:
    """[R', 3] the runs the microkernel executes: a run marked with its pattern's taps stays whole, an unmarked
    one (run_taps 0, or no run_taps: this pass did not run) becomes one run per kernel. PlanError for a mark
    that is neither (the kernel can only load a run's own pattern's taps)."""
    if np.any(runs[:, 2] < 1):
        raise PlanError(f"runs: run {int(np.nonzero(runs[:, 2] < 1)[0][0])} has no kernels")
    marks = np.zeros(len(runs), dtype=np.int64) if run_taps is None else run_taps.reshape(-1)
    if len(marks) != len(runs):
        raise PlanError(f"run_taps: {len(marks)} marks for {len(runs)} runs")
    bits = tap_bits(library)
    pattern_ok = (runs[:, 1] >= 0) & (runs[:, 1] < len(library))
    reuse = pattern_ok & (marks == np.where(pattern_ok, bits[np.clip(runs[:, 1], 0, len(library) - 1)], -1))
    if np.any(~reuse & (marks != 0)):
        bad = int(np.nonzero(~reuse & (marks != 0))[0][0])
        raise PlanError(f"run_taps: run {bad} is marked {int(marks[bad])}, neither 0 nor its pattern's taps")
    pieces = np.where(reuse, 1, runs[:, 2])  # kernel runs per run
    run = np.repeat(np.arange(len(runs)), pieces)
    step = np.arange(len(run)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    whole = reuse[run]
    return np.stack([runs[run, 0] + step, runs[run, 1], np.where(whole, runs[run, 2], 1)],
                    axis=1).astype(np.int64).reshape(-1, 3)


@dataclass
class ReuseLoads:
    name: ClassVar[str] = "reuse-loads"

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        load_dialect(module.context)
        runs_total = kernels = 0
        with module.context:
            for op in ops_named(module, CONV2D):
                info = conv2d_info(op)
                _, _, patterns = reading_kernels(info, reading_order(op, info))
                runs = runs_or_default(optional_table(op, "runs"), patterns)
                marks = tap_bits(info.library)[runs[:, 1]]
                op.attributes["run_taps"] = i32_elements(marks)
                runs_total += len(kernel_runs(runs, marks, info.library))
                kernels += len(patterns)
        ctx.stats[self.name] = {"runs": runs_total, "runs_without_reuse": kernels}
