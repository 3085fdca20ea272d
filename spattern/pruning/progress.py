"""What a user sees while prune() runs, and how long it should take.

In a terminal: rich progress bars with the time left. Without one (a log file, a pipe, CI): plain lines, one when
each stage ends and one every `every_s` seconds while it runs, with the step, the elapsed time and the estimate
of the time left, so a long run is never silent. `estimate_prune_seconds` turns the measured time of the first
synthesis steps into an estimate of every stage, printed before the long stages run.
"""

from __future__ import annotations

import math
import sys
import time
from typing import IO, Any, Callable


def format_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class LogTask:
    """One stage's progress as log lines (no terminal): a line every `every_s` seconds and one at the end."""

    def __init__(self, description: str, total: int, unit: str, stream: IO[str], every_s: float,
                 clock: Callable[[], float] = time.perf_counter):
        self.description, self.total, self.unit, self.stream, self.every_s = description, total, unit, stream, every_s
        self.clock = clock
        self.start = clock()
        self.last_line = self.start
        self.finished = False

    def __call__(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.total = total
        if self.finished:
            return
        now = self.clock()
        elapsed = now - self.start
        if done >= self.total:
            self.finished = True
            self._line(f"{self.description}: done, {self.total} {self.unit} in {format_seconds(elapsed)}")
        elif now - self.last_line >= self.every_s:
            self.last_line = now
            left = elapsed / done * (self.total - done) if done > 0 else float("nan")
            about = f", about {format_seconds(left)} left" if math.isfinite(left) else ""
            self._line(f"{self.description}: step {done}/{self.total}, {format_seconds(elapsed)} elapsed{about}")

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class Progress:
    """Per-stage progress for prune(): rich bars in a terminal, log lines otherwise, or nothing (enabled=False).
    `task(description, total)` returns the `on_step(done, total)` callback a stage reports to; `note` prints a
    line (an estimate) in either mode."""

    def __init__(self, enabled: bool, stream: IO[str] | None = None, every_s: float = 10.0,
                 terminal: bool | None = None):
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.every_s = every_s
        self.terminal = terminal if terminal is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        self._p: Any = None

    def __enter__(self) -> "Progress":
        if self.enabled and self.terminal:
            from rich.console import Console
            from rich.progress import BarColumn, Progress as Bars, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._p = Bars(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                           TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), transient=False,
                           console=Console(file=self.stream))
            self._p.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._p is not None:
            self._p.__exit__(*exc)

    def task(self, description: str, total: int, unit: str = "steps") -> Callable[..., None]:
        if not self.enabled:
            return lambda done, total=total: None
        if self._p is None:
            return LogTask(description, total, unit, self.stream, self.every_s)
        tid = self._p.add_task(description, total=total)
        return lambda done, total=total: self._p.update(tid, completed=done, total=total)

    def note(self, text: str) -> None:
        if not self.enabled:
            return
        if self._p is not None:
            self._p.console.print(text, highlight=False, soft_wrap=True)
        else:
            print(text, file=self.stream, flush=True)


def matmul_flops_per_second() -> float:
    """This machine's float32 matmul rate as torch runs it now (threads as set), from one ~0.1 s probe."""
    import torch

    a = torch.randn(512, 512)
    a @ a  # warm-up
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < 0.1:
        a @ a
        n += 1
    return 2 * 512 ** 3 * n / (time.perf_counter() - t0)


def layerwise_flops(layers: list[tuple[int, int]], positions: int, admm_iters: int) -> float:
    """Floating-point work of the layer-wise fits for layers given as (input channels, filters): the Gram
    matrix over the sampled positions, the Cholesky factor per rho level and the shared solves of ADMM, and the
    per-filter refit of the kept weights (capped where refit switches to conjugate gradients)."""
    total = 0.0
    levels = max(1, min(8, admm_iters // 3))
    for c, f in layers:
        d = c * 9 + 1
        total += 2.0 * positions * d * d  # H = X X^T
        total += levels * d ** 3 / 3 + admm_iters * 2.0 * 2 * f * d * d  # factors + forward/back solves
        total += min(f * (4 * c + 1) ** 3 / 3, 2e11)  # refit (admm.refit's direct_flops cap)
    return total


# The solves, factorisations and per-filter refits run well below the matmul probe's rate: measured on vgg_small
# at 32x32 (2 shared cores), the layer-wise stage took about 2.7x its flops at the probe's rate.
FIT_SLOWDOWN = 2.7


def estimate_prune_seconds(synth_step_s: float, synth_steps_total: int, distill_steps: int, n_layers: int,
                           n_batches: int, fit_flops: float, flops_per_s: float) -> dict[str, float]:
    """Seconds per stage. A synthesis step is a forward and a backward pass over a batch; a distillation step is
    a little more work (the pruned network's forward and backward plus the dense forward on a batch of the same
    size; 1.2x measured); recording a layer's input runs the network forward once over all images (a third of a step per batch,
    for about half the network on average)."""
    record = n_layers * n_batches * synth_step_s / 3 * 0.5
    return {"synthesis": synth_step_s * synth_steps_total,
            "layerwise": record + fit_flops / (flops_per_s / FIT_SLOWDOWN),
            "recovery": synth_step_s * 1.2 * distill_steps}
