"""The compiler driver: an ordered list of named stages.

    export    torch.nn.Module -> linalg-on-tensors (torch-mlir)
    passes    linalg + PatternPlan -> sparse_pattern IR -> reordered, grouped, compacted, lowered IR
              (first the target's pre-passes, on every model: e.g. Vulkan's depthwise-conv-to-generic)
    finalize  MLIR bytecode for IREE (on the CPU fast path: microkernel calls become IREE custom dispatches)
    compile   bytecode -> .vmfb (iree-compile)

Each stage reads and writes fields of one PipelineState, so a caller can stop after any stage
(`stop_after="export"`), and `dump_dir` receives each stage's IR (large constants elided). The run stage is
`CompiledModel.run`.
"""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from .errors import CompileError, ConfigError, OutputPathError, SpatternError
from .fileio import atomic_write_text
from .passes.export import export_to_linalg, module_to_bytecode, module_to_text
from .runtime.compiler import compile_bytecode
from .runtime.targets import Target, get_target


@dataclass
class PipelineState:
    model: torch.nn.Module | torch.export.ExportedProgram
    example_inputs: Sequence[torch.Tensor]
    target: Target
    plan: Any = None  # PatternPlan or None (dense)
    passes: list[str] | None = None  # None: the default pipeline for the target
    lowering: str = "auto"  # "microkernels" | "linalg" | "auto"
    dump_dir: Path | None = None
    module: Any = None  # torch_mlir.ir.Module
    bytecode: bytes | None = None
    vmfb: bytes | None = None
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def dump(self, name: str, text: str) -> None:
        if self.dump_dir is not None:
            atomic_write_text(self.dump_dir / name, text)


def _stage_export(state: PipelineState) -> None:
    state.module = export_to_linalg(state.model, state.example_inputs)
    state.dump("00-export.mlir", module_to_text(state.module))


def resolve_lowering(state: PipelineState) -> str:
    if state.lowering == "auto":
        return "microkernels" if state.target.is_cpu and _microkernels_available(state.target) else "linalg"
    if state.lowering not in ("microkernels", "linalg"):
        raise ConfigError(f"unknown lowering {state.lowering!r}; use 'microkernels', 'linalg' or 'auto'")
    return state.lowering


def _microkernels_available(target: Target) -> bool:
    from .errors import ToolUnavailableError
    from .microkernels.kernels import kernel_object

    try:
        kernel_object(target.name)
    except ToolUnavailableError:
        return False
    return True


def _stage_passes(state: PipelineState) -> None:
    """The target's pre-passes (every model, dense too), then, with a plan, the plan's pass pipeline, then the
    target's post-passes (every model)."""
    pre, post = list(state.target.pre_passes), list(state.target.post_passes)
    if state.plan is None and not pre and not post:
        return
    from .passes.registry import default_pipeline, run_passes

    names = list(pre)
    if state.plan is not None:
        lowering = resolve_lowering(state)
        chosen = state.passes if state.passes is not None else default_pipeline(lowering)
        names += [n for n in chosen if n not in pre and n not in post]
        state.info["lowering"] = lowering
    names += post
    state.info["passes"] = list(names)
    ctx = run_passes(state.module, state.plan, names, dump_dir=state.dump_dir,
                     mmt4d_tile=state.target.mmt4d_tile)
    state.info["pass_stats"] = getattr(ctx, "stats", {})
    if state.plan is not None:  # what stayed off the fast path, and why (a dense model is dense by choice)
        from .passes.fallbacks import fallbacks_info

        state.info.update(fallbacks_info(state.module, ctx))


def _stage_finalize(state: PipelineState) -> None:
    state.bytecode = module_to_bytecode(state.module)
    if state.info.get("lowering") == "microkernels":
        state.bytecode = _materialize(state.bytecode, state.target.name, state.dump_dir)
    if state.dump_dir is not None and state.info.get("lowering") == "microkernels":
        from iree.compiler import ir as iree_ir

        ctx = iree_ir.Context()
        ctx.allow_unregistered_dialects = True
        state.dump("90-finalize.mlir", iree_ir.Module.parse(state.bytecode, ctx).operation.get_asm(
            large_elements_limit=16, large_resource_limit=16))


def _materialize(bytecode: bytes, target: str, dump_dir: Path | None) -> bytes:
    """materialize_microkernels; on any failure, its input (the module before it, bytecode) is kept and the error
    names the file and the spattern-opt command that reproduces the failure, as a failing pass's does."""
    from .microkernels.microkernel_dispatch import materialize_microkernels
    from .passes.registry import failure_folder, repro_text

    try:
        return materialize_microkernels(bytecode, target)
    except Exception as e:  # noqa: BLE001 - MLIR raises its own error types; a CompileError gets the repro too
        folder = failure_folder(dump_dir)
        failing = folder / "failed-materialize-microkernels.mlirbc"
        what = f"materialize-microkernels failed for target {target!r}: {type(e).__name__}: {e}"
        try:
            failing.write_bytes(bytecode)
        except OSError as io_err:
            raise CompileError(f"{what}\n  (its input could not be kept in {folder}: {io_err.strerror})") from e
        cmd = shlex.join([sys.executable, "-m", "spattern.opt", f"--materialize={target}", str(failing),
                          "-o", str(folder / "materialized.mlirbc")])
        raise CompileError(repro_text("materialize-microkernels", what, f"its input (bytecode): {failing}", cmd)) from e


def _stage_compile(state: PipelineState) -> None:
    assert state.bytecode is not None
    text = module_to_text(state.module) if state.module is not None else None
    state.vmfb = compile_bytecode(state.bytecode, state.target, dense_best=True,
                                  failure_dir=state.dump_dir, input_text=text)


STAGES: list[tuple[str, Callable[[PipelineState], None]]] = [
    ("export", _stage_export),
    ("passes", _stage_passes),
    ("finalize", _stage_finalize),
    ("compile", _stage_compile),
]
STAGE_NAMES = [name for name, _ in STAGES]


def run_pipeline(state: PipelineState, stop_after: str | None = None,
                 on_stage: Callable[[str], None] | None = None) -> PipelineState:
    if stop_after is not None and stop_after not in STAGE_NAMES:
        raise ConfigError(f"unknown stage {stop_after!r}; stages: {', '.join(STAGE_NAMES)}")
    if state.dump_dir is not None:
        try:
            state.dump_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputPathError(f"cannot create the dump folder {state.dump_dir}: {e.strerror}") from None
    for name, stage in STAGES:
        if on_stage:
            on_stage(name)
        t0 = time.perf_counter()
        try:
            stage(state)
        except SpatternError:
            raise
        except Exception as e:  # noqa: BLE001 - a stage's own bug: one message to act on, never a traceback
            raise _stage_failure(name, state, e) from e
        state.timings[name] = time.perf_counter() - t0
        if name == stop_after:
            break
    return state


def _stage_failure(name: str, state: PipelineState, err: Exception) -> CompileError:
    """A stage that raised something other than a spattern error (the passes and iree-compile turn their own
    failures into CompileErrors with the IR and a repro command; this catches what is left)."""
    if isinstance(err, OSError):
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        return CompileError(f"the {name} stage failed: cannot read or write a file{where}: {err.strerror or err}; "
                            "check the free disk space and the permissions of the temporary folder")
    kept = (f"each stage's IR so far is in {state.dump_dir}" if state.dump_dir is not None else
            "rerun with --dump-dir DIR (dump_dir=) to keep each stage's IR")
    return CompileError(f"the {name} stage failed: {type(err).__name__}: {err}. This is a spattern bug, not an "
                        f"input error; {kept} and report it with that folder.")


def new_state(model: Any, example_inputs: Sequence[torch.Tensor], target: str | Target, **kw: Any) -> PipelineState:
    dump_dir = kw.pop("dump_dir", None)
    return PipelineState(model=model, example_inputs=list(example_inputs), target=get_target(target),
                         dump_dir=Path(dump_dir) if dump_dir else None, **kw)
