"""The Python API: the only place (with cli.py) that joins pruning, the compiler passes and the runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .errors import ConfigError, InputError, PlanError
from .pipeline import new_state, run_pipeline
from .runtime.module import CompiledModel as _Module
from .runtime.module import load as _load
from .runtime.targets import Target, get_target

__all__ = ["compile", "load", "prune", "finetune", "CompiledModel", "PruneResult"]


class CompiledModel(_Module):
    """A compiled module (spattern.runtime.module.CompiledModel: run, time, save) with its report. The runtime
    returns data; the face (report.py) formats it."""

    def report(self) -> str:
        """Target, module size, stage times, fallbacks and the per-layer table (spattern.report.format_report)."""
        from .report import format_report

        return format_report(self)


def load(path: str | Path, target: str | Target = "host", threads: int | None = None) -> CompiledModel:
    """Load a .vmfb written by `CompiledModel.save` (or `spattern compile`) for the target it was compiled for."""
    module = _load(path, target=target, threads=threads)
    return CompiledModel(vmfb=module.vmfb, target=module.target, threads=module.threads)


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


def _shape_text(shape: Sequence[int]) -> str:
    return ",".join(map(str, shape))


def _check_dtypes(model: Any, inputs: list[torch.Tensor]) -> None:
    for i, x in enumerate(inputs):
        if x.is_floating_point() and x.dtype != torch.float32:
            name = str(x.dtype).replace("torch.", "")
            raise InputError(f"example input {i} is {name}; spattern compiles float32 models: pass x.float() "
                             f"(torch) or x.astype(np.float32) (numpy)")
    if isinstance(model, torch.nn.Module):
        for name, p in model.named_parameters():
            if p.is_floating_point() and p.dtype != torch.float32:
                raise InputError(f"the model's weights are {str(p.dtype).replace('torch.', '')} ({name}); "
                                 "spattern compiles float32 models: call model.float() first")


def check_example_input(model: Any, inputs: list[torch.Tensor]) -> None:
    """Say what is wrong with an example input (dtype, rank, channels) before torch.export does, whose error
    would read as untraceable control flow. Runs the model once, eagerly, and refuses only an input on which
    that run fails; the first conv's input then says which dim is wrong."""
    _check_dtypes(model, inputs)
    if isinstance(model, torch.export.ExportedProgram):
        expected = exported_input_shapes(model)
        got = [tuple(x.shape) for x in inputs]
        if len(expected) == len(got) and all(_shape_fits(e, g) for e, g in zip(expected, got)):
            return
        raise InputError(f"this ExportedProgram was exported at input shape "
                         f"{' and '.join(_shape_text(e) for e in expected)}, and its shapes are fixed; got "
                         f"{' and '.join(_shape_text(g) for g in got)}. Use that shape, or export the model again "
                         "at the new one (torch.export.export(model, (torch.randn(...),)))")
    if not isinstance(model, torch.nn.Module) or len(inputs) != 1:
        return
    seen: dict[str, Any] = {}

    def before_conv(mod: torch.nn.Module, args: tuple[Any, ...]) -> None:
        seen.setdefault("conv", mod)
        seen.setdefault("shape", tuple(args[0].shape) if args and hasattr(args[0], "shape") else ())

    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    names = {id(m): n for n, m in convs}
    hooks = [m.register_forward_pre_hook(before_conv) for _, m in convs]
    x = inputs[0]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(x)
    except Exception as e:  # the model's own forward fails on this input: say why, with torch's first line
        failure = e
    else:
        return
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    conv, shape = seen.get("conv"), seen.get("shape", ())
    if conv is not None:
        where = f"its first conv ({names[id(conv)]}) takes N,C,H,W with C = {conv.in_channels}"
        if len(shape) != 4:
            h, w = (shape[-2], shape[-1]) if len(shape) >= 2 else ("H", "W")
            raise InputError(f"the example input has shape {_shape_text(x.shape)}, but {where}: give a shape like "
                             f"1,{conv.in_channels},{h},{w}")
        if shape[1] != conv.in_channels:
            raise InputError(f"the example input has shape {_shape_text(x.shape)}, but {where}: give a shape like "
                             f"{shape[0]},{conv.in_channels},{shape[2]},{shape[3]}")
    text = str(failure).strip().splitlines()
    raise InputError(f"the model fails on an example input of shape {_shape_text(x.shape)}: "
                     f"{type(failure).__name__}: {text[0] if text else ''}")


def exported_input_shapes(program: torch.export.ExportedProgram) -> list[tuple[Any, ...]]:
    """The user inputs' shapes an ExportedProgram was exported at (an int per static dim, None per dynamic one)."""
    user = set(program.graph_signature.user_inputs)
    shapes = []
    for node in program.graph.nodes:
        if node.op == "placeholder" and node.name in user:
            val = node.meta.get("val")
            if val is not None and hasattr(val, "shape"):
                shapes.append(tuple(d if isinstance(d, int) else None for d in val.shape))
    return shapes


def _shape_fits(expected: tuple[Any, ...], got: tuple[int, ...]) -> bool:
    return len(expected) == len(got) and all(e is None or e == g for e, g in zip(expected, got))


def compile(model: torch.nn.Module | torch.export.ExportedProgram, example_input: Any, target: str | Target = "host",
            plan: Any = None, passes: Sequence[str] | None = None, lowering: str = "auto",
            dump_dir: str | Path | None = None, threads: int | None = None,
            stop_after: str | None = None) -> CompiledModel:
    """Compile a (pruned) PyTorch model for a target.

    With `plan` (a PatternPlan from `spattern.prune`), 3x3 convs the plan covers become pattern convs; `passes`
    replaces the default pass list (for ablations), `lowering` picks "microkernels" (CPU fast path), "linalg"
    (portable) or "auto". `dump_dir` receives every stage's IR. `threads` sets the CPU runtime's thread count.
    """
    if getattr(plan, "quant", None) is not None:
        raise ConfigError("this plan is int8 (quantize: int8), and spattern cannot compile int8 modules yet (issue "
                          "21, items 3-4); run it with spattern.pruning.IntegerReference, or prune "
                          "without quantize to compile float32")
    target = get_target(target)
    inputs = _as_tensors(example_input)
    check_example_input(model, inputs)
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

    check_example_input(model, _as_tensors(example_input))
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
