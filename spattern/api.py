"""The Python API: the only place (with cli.py) that joins pruning, the compiler passes and the runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .errors import InputError, PlanError
from .pipeline import new_state, run_pipeline
from .runtime.module import CompiledModel, load
from .runtime.targets import Target, get_target

__all__ = ["compile", "load", "prune", "finetune", "CompiledModel", "PruneResult"]


def _as_tensors(example_input: Any) -> list[torch.Tensor]:
    items = list(example_input) if isinstance(example_input, (list, tuple)) else [example_input]
    out = []
    for i, x in enumerate(items):
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        if not isinstance(x, torch.Tensor):
            raise InputError(f"example input {i} must be a torch.Tensor or numpy array, got {type(x).__name__}")
        out.append(x)
    return out


def compile(model: torch.nn.Module | torch.export.ExportedProgram, example_input: Any, target: str | Target = "host",
            plan: Any = None, passes: Sequence[str] | None = None, lowering: str = "auto",
            dump_dir: str | Path | None = None, threads: int | None = None,
            stop_after: str | None = None) -> CompiledModel:
    """Compile a (pruned) PyTorch model for a target.

    With `plan` (a PatternPlan from `spattern.prune`), 3x3 convs the plan covers become pattern convs; `passes`
    replaces the default pass list (for ablations), `lowering` picks "microkernels" (CPU fast path), "linalg"
    (portable) or "auto". `dump_dir` receives every stage's IR. `threads` sets the CPU runtime's thread count.
    """
    target = get_target(target)
    inputs = _as_tensors(example_input)
    if plan is not None:
        if isinstance(model, torch.nn.Module):
            plan.check_state_dict(model.state_dict())
        elif not hasattr(plan, "layers"):
            raise PlanError("plan must be a spattern PatternPlan")
    state = new_state(model, inputs, target, plan=plan, passes=list(passes) if passes is not None else None,
                      lowering=lowering, dump_dir=dump_dir)
    run_pipeline(state, stop_after=stop_after)
    if state.vmfb is None:
        raise InputError(f"compilation stopped after stage {stop_after!r}; no module was produced")
    info = dict(state.info)
    if isinstance(model, torch.nn.Module):  # what CompiledModel.report() shows; one forward pass
        from .report import layer_table

        info["layers"] = [row.to_json() for row in layer_table(model, inputs[0], plan)]
    return CompiledModel(vmfb=state.vmfb, target=target, threads=threads, stages=dict(state.timings), info=info)


def prune(model: torch.nn.Module, example_input: Any, config: Any = None, seed: int = 0, progress: bool = True):
    """Data-free pattern + connectivity pruning (see spattern.pruning.prune)."""
    from .pruning import prune as _prune

    return _prune(model, example_input, config=config, seed=seed, progress=progress)


def finetune(model: torch.nn.Module, plan: Any, loader: Any, epochs: int = 1, **kw: Any) -> torch.nn.Module:
    """Masked fine-tuning on the owner's own data; pruned weights stay exactly zero."""
    from .pruning import finetune as _finetune

    return _finetune(model, plan, loader, epochs=epochs, **kw)


def __getattr__(name: str) -> Any:
    if name == "PruneResult":
        from .pruning import PruneResult

        return PruneResult
    raise AttributeError(name)
