"""The pass registry and the pipeline runner: names -> passes, the default pipelines, and `run_passes`, which
verifies after every pass, writes `NN-<pass>.mlir` dumps (large constants elided) and turns any failure into an
error that names the pass, the file holding the module as it was before that pass (bytecode) and the
spattern-opt command, with every option the pass ran with, that reproduces it.

The module before each pass is kept as an in-memory clone, not as bytecode: on VGG-16-BN at 224 a clone takes
0.2-2 ms (attributes, weights included, are shared, not copied), writing bytecode 0.8-1.9 s and 530-570 MB. The
clone is written out only when the pass fails."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Callable

from torch_mlir import ir

from ..dialect.sparse_pattern import verify_module
from ..errors import CompileError, PatternVerifyError, PlanError, SpatternError
from ..fileio import atomic_write_text
from ..plan import PatternPlan
from .base import Pass, PassContext
from .export import module_to_text
from .compact_weights import CompactWeights
from .conv_1x1_to_matmul import Conv1x1ToMatmul
from .dense_3x3_to_patterns import Dense3x3ToPatterns
from .depthwise_conv_to_generic import DepthwiseConvToGeneric
from .filter_kernel_reorder import FilterKernelReorder
from .group_patterns import GroupPatterns
from .import_patterns import ImportPatterns
from .lower_1x1_to_microkernels import Lower1x1ToMicrokernels
from .lower_linear_to_microkernels import LowerLinearToMicrokernels
from .lower_pool_to_microkernels import LowerPoolToMicrokernels
from .lower_to_linalg import LowerToLinalg
from .lower_to_microkernels import LowerToMicrokernels
from .pad_source_barrier import PadSourceBarrier
from .pool_to_channels_last import PoolToChannelsLast
from .reuse_loads import ReuseLoads
from .strided_1x1_to_slice import Strided1x1ToSlice

DUMP_ELEMENTS_LIMIT = 256

PASSES: dict[str, Callable[[], Pass]] = {
    ImportPatterns.name: ImportPatterns,
    FilterKernelReorder.name: FilterKernelReorder,
    GroupPatterns.name: GroupPatterns,
    CompactWeights.name: CompactWeights,
    ReuseLoads.name: ReuseLoads,
    LowerToLinalg.name: LowerToLinalg,
    DepthwiseConvToGeneric.name: DepthwiseConvToGeneric,
    Strided1x1ToSlice.name: Strided1x1ToSlice,
    PoolToChannelsLast.name: PoolToChannelsLast,
    PadSourceBarrier.name: PadSourceBarrier,
    Dense3x3ToPatterns.name: Dense3x3ToPatterns,
    Conv1x1ToMatmul.name: Conv1x1ToMatmul,
    Lower1x1ToMicrokernels.name: Lower1x1ToMicrokernels,
    LowerLinearToMicrokernels.name: LowerLinearToMicrokernels,
    LowerPoolToMicrokernels.name: LowerPoolToMicrokernels,
    LowerToMicrokernels.name: LowerToMicrokernels,
}


OPTIMIZE = ["import-patterns", "filter-kernel-reorder", "group-patterns", "compact-weights", "reuse-loads"]


def default_pipeline(path: str = "linalg") -> list[str]:
    """The pass names of one path: "linalg" (portable) or "microkernels" (CPU)."""
    if path == "linalg":
        return [*OPTIMIZE, "lower-to-linalg"]
    if path == "microkernels":
        return [OPTIMIZE[0], "dense-3x3-to-patterns", *OPTIMIZE[1:], "pool-to-channels-last", "conv-1x1-to-matmul",
                "lower-1x1-to-microkernels", "lower-linear-to-microkernels", "lower-pool-to-microkernels",
                "lower-to-microkernels", "lower-to-linalg"]  # the last: pattern convs the kernel cannot run
    raise CompileError(f"unknown lowering path {path!r}; use 'linalg' or 'microkernels'")


def make_pass(name: str) -> Pass:
    if name not in PASSES:
        raise CompileError(f"unknown pass {name!r}; known: {', '.join(PASSES)}")
    return PASSES[name]()


def print_ir(module: ir.Module, limit: int | None = None) -> str:
    """Module text with constants above `limit` elements elided (weights never travel as text)."""
    return module_to_text(module, DUMP_ELEMENTS_LIMIT if limit is None else limit)


def _repro_command(failing: Path, pass_name: str, plan_path: Path | None, ctx: PassContext) -> str:
    """The spattern-opt command that runs `pass_name` on `failing` as run_passes ran it (every PassContext
    setting that a pass reads is an option here)."""
    cmd = [sys.executable, "-m", "spattern.opt", f"--pass-pipeline={pass_name}"]
    if plan_path is not None:
        cmd += ["--plan", str(plan_path)]
    if ctx.mmt4d_tile:
        cmd += ["--mmt4d-tile", str(ctx.mmt4d_tile)]
    return shlex.join([*cmd, str(failing)])


def run_passes(module: ir.Module, plan: PatternPlan | None, pass_names: list[str],
               dump_dir: str | Path | None = None, ctx: PassContext | None = None,
               mmt4d_tile: int = 0) -> PassContext:
    """Run the named passes in order on `module` (in place); returns the context with each pass's stats.
    A pass raising PlanError propagates as is (the user's input is wrong). A PatternVerifyError (a pass broke a
    dialect invariant) stays a PatternVerifyError, and any other exception (an AttributeError or AssertionError
    included) becomes a CompileError; both name the file holding the module before the failing pass (bytecode,
    so weights survive) and the command that reproduces the failure from it."""
    ctx = ctx or PassContext(plan=plan, mmt4d_tile=mmt4d_tile)
    ctx.plan = plan if plan is not None else ctx.plan
    dump = Path(dump_dir) if dump_dir is not None else None
    if dump is not None:
        dump.mkdir(parents=True, exist_ok=True)
        atomic_write_text(dump / "00-input.mlir", print_ir(module))
    for i, name in enumerate(pass_names, start=1):
        p = make_pass(name)
        before = module.operation.clone()  # the repro's input, should this pass fail (see the module docstring)
        try:
            p.run(module, ctx)
            verify_module(module)
        except PlanError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure inside a pass is a bug to reproduce, never a traceback
            raise _failure(before, ctx, name, dump, e) from e
        finally:
            before.erase()
        if dump is not None:
            atomic_write_text(dump / f"{i:02d}-{name}.mlir", print_ir(module))
    return ctx


def failure_folder(dump: Path | None) -> Path:
    """Where a failing step keeps its input: the --dump-dir when given, else a fresh temporary folder."""
    import tempfile

    return dump if dump is not None else Path(tempfile.mkdtemp(prefix="spattern-fail-"))


def repro_text(step: str, what: str, kept: str, cmd: str) -> str:
    """Says on stderr how to reproduce `step`'s failure, and returns the error's text naming the kept input."""
    print(f"spattern: {step} failed; reproduce with:\n  {cmd}", file=sys.stderr)
    return f"{what}\n  {kept}\n  reproduce: {cmd}"


def _failure(before: ir.Operation, ctx: PassContext, name: str, dump: Path | None,
             err: Exception) -> SpatternError:
    """The error for pass `name` failing with `err`; `before` is the module as it was before the pass. A broken
    dialect invariant stays a PatternVerifyError (as the dialect documents), anything else is a CompileError."""
    kind = PatternVerifyError if isinstance(err, PatternVerifyError) else CompileError
    what = f"pass {name} failed: {type(err).__name__}: {err}"
    folder = failure_folder(dump)
    failing = folder / f"failed-{name}.mlirbc"
    plan_path = None
    try:
        with open(failing, "wb") as f:
            before.write_bytecode(f)
        if ctx.plan is not None:
            plan_path = ctx.plan.save(folder)
    except (OSError, ir.MLIRError, ValueError) as e:
        return kind(f"{what}\n  (its IR could not be kept in {folder}: {e}; rerun with --dump-dir DIR for each "
                    "stage's IR)")
    cmd = _repro_command(failing, name, plan_path, ctx)
    return kind(repro_text(f"pass {name}", what, f"the module before {name} (bytecode): {failing}", cmd))
