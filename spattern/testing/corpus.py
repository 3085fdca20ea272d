"""One generated model through the whole flow: prune, compile for a target, run, compare with the pruned PyTorch
model. Shared by tests/test_corpus.py and bench/fuzz.py, so both judge a model the same way.

A case ends in one of three results:
- "pass": max abs error <= 1e-4 x max |PyTorch output|;
- "refused": a `spattern.errors` exception on purpose (not a CompileError, which is a compiler stage dying, nor a
  missing tool), whose message says what and why;
- "fail": anything else (a wrong number, a traceback from inside a pass, a CompileError).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import CompileError, SpatternError, ToolUnavailableError
from . import random_plan_for
from .archgen import GeneratedModel, generate

REL_TOL = 1e-4
PRUNE_MODES = ("patterns", "c0.5")


@dataclass
class PrunedCase:
    gen: GeneratedModel
    mode: str  # "patterns" or "c0.5"
    pruner: str  # "random" (spattern.testing.random_plan_for) or "prune" (spattern.prune, a very short config)
    filter_block: int
    model: nn.Module
    plan: object
    x: torch.Tensor
    ref: np.ndarray

    @property
    def label(self) -> str:
        return f"{self.mode}/{self.pruner}" + (f"/fb{self.filter_block}" if self.filter_block != 1 else "")


@dataclass
class Outcome:
    result: str  # "pass", "refused", "fail"
    error: str  # "" on a pass; else the exception's type and message, or the numeric miss
    seconds: float
    max_err: float | None = None
    bound: float | None = None
    fallbacks: dict | None = None  # the compile's info["fallback_counts"]: {path: {reason: count}}


def fast_prune_config(connectivity: float, filter_block: int = 1):
    """A very short spattern.prune config (seconds on a small model; the numbers matter, not the accuracy)."""
    from ..pruning.config import LayerRule, PruneConfig

    return PruneConfig(default=LayerRule(connectivity=connectivity, filter_block=filter_block), num_samples=8,
                       synth_steps=3, positions=256, admm_iters=3, distill_steps=0)


def default_choice(seed: int) -> tuple[str, str, int]:
    """(mode, pruner, filter block) of a seed: modes alternate; every fifth model goes through the real
    spattern.prune; every sixth shares a pattern across 8 filters (the portable path's blocks, partial ones at
    odd widths)."""
    return PRUNE_MODES[seed % 2], "prune" if seed % 5 == 0 else "random", 8 if seed % 6 == 5 else 1


def prepare(seed: int, mode: str | None = None, pruner: str | None = None,
            filter_block: int | None = None) -> PrunedCase:
    """The generated model of `seed`, pruned, with its input and the pruned PyTorch model's output."""
    gen = generate(seed)
    d_mode, d_pruner, d_block = default_choice(seed)
    mode, pruner, block = mode or d_mode, pruner or d_pruner, filter_block or d_block
    connectivity = 0.5 if mode == "c0.5" else 0.0
    x = gen.example_input()
    if pruner == "prune":
        from ..api import prune

        res = prune(gen.model, x, config=fast_prune_config(connectivity, block), seed=seed, progress=False)
        model, plan = res.model, res.plan
    else:
        model, plan = random_plan_for(gen.model, block, connectivity, seed=seed, example_input=x)
    with torch.no_grad():
        ref = model(x).numpy()
    return PrunedCase(gen, mode, pruner, block, model.eval(), plan, x, ref)


def compile_case(case: PrunedCase, target: str):
    from ..api import compile

    return compile(case.model, case.x, target=target, plan=case.plan)


def judge(case: PrunedCase, run) -> Outcome:
    """Runs `run()` (which compiles and runs, returning the output array) and classifies what happened."""
    t0 = time.perf_counter()
    try:
        got = run()
    except (CompileError, ToolUnavailableError) as e:
        return Outcome("fail", f"{type(e).__name__}: {e}", time.perf_counter() - t0)
    except SpatternError as e:
        return Outcome("refused", f"{type(e).__name__}: {e}", time.perf_counter() - t0)
    except Exception as e:  # noqa: BLE001 -- a traceback from inside spattern is exactly what the corpus hunts
        tb = traceback.extract_tb(e.__traceback__)[-1]
        where = f" (at {tb.filename.rsplit('/', 2)[-2:]}:{tb.lineno})"
        return Outcome("fail", f"{type(e).__name__}: {e}{where}", time.perf_counter() - t0)
    seconds = time.perf_counter() - t0
    got = np.asarray(got)
    if got.shape != case.ref.shape:
        return Outcome("fail", f"output shape {got.shape}, PyTorch's is {case.ref.shape}", seconds)
    err = float(np.abs(got - case.ref).max())
    bound = REL_TOL * float(np.abs(case.ref).max())
    if not err <= bound:
        return Outcome("fail", f"max abs error {err:.3e} > {bound:.3e} (= {REL_TOL} x max|ref|)", seconds, err,
                       bound)
    return Outcome("pass", "", seconds, err, bound)


def run_case(case: PrunedCase, target: str) -> Outcome:
    """Compile `case` for `target` once, run it once, judge it; the outcome carries the compile's fallbacks."""
    info: dict = {}

    def run() -> np.ndarray:
        compiled = compile_case(case, target)
        info.update(compiled.info)
        (out,) = compiled.run(case.x.numpy())
        return out

    outcome = judge(case, run)
    outcome.fallbacks = info.get("fallback_counts")
    return outcome
