"""The `spattern` command line: prune, compile, run, demo, targets, report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .errors import InputError, SpatternError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="spattern: pattern-pruning compiler for phones (prune -> lower -> compile -> run).")
console = Console(stderr=True)
out = Console()


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--input-shape must be comma-separated integers like 1,3,224,224, got {text!r}") from None
    if not shape or any(d <= 0 for d in shape):
        raise InputError(f"--input-shape must be positive integers like 1,3,224,224, got {text!r}")
    return shape


@app.command()
def compile(
    model: Optional[Path] = typer.Argument(None, help="a .pt2 ExportedProgram, a state dict (with --zoo), or a "
                                                      "folder written by `spattern prune`"),
    output: Path = typer.Option(..., "-o", "--output", help="the .vmfb to write"),
    input_shape: Optional[str] = typer.Option(None, help="e.g. 1,3,224,224 (default: from the pruned folder, or "
                                                          "1,3,224,224)"),
    target: str = typer.Option("host", help="see `spattern targets`"),
    zoo: Optional[str] = typer.Option(None, help="zoo architecture for a state dict (vgg16_bn, resnet18, ...)"),
    num_classes: int = typer.Option(1000, help="classes of the zoo model"),
    lowering: str = typer.Option("auto", help="microkernels | linalg | auto"),
    passes: Optional[str] = typer.Option(None, help="comma-separated pass list replacing the default"),
    dump_dir: Optional[Path] = typer.Option(None, help="write every stage's IR here"),
) -> None:
    """Compile a model (dense, or pruned with its plan) into an IREE module."""
    import torch

    from . import api
    from .modelfile import load_model

    shape = _parse_shape(input_shape) if input_shape else None
    loaded = load_model(model, zoo=zoo, num_classes=num_classes, image_size=shape[-1] if shape else None)
    if shape is None:
        size = loaded.image_size or 224
        shape = (1, 3, size, size)
    x = torch.randn(*shape)
    with console.status(f"compiling for {target}..."):
        compiled = api.compile(loaded.model, x, target=target, plan=loaded.plan, lowering=lowering,
                               passes=passes.split(",") if passes else None, dump_dir=dump_dir)
    written = _write_output(compiled, output, x.numpy())
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in compiled.stages.items())
    console.print(f"wrote {written} ({len(compiled.vmfb) / 1e6:.1f} MB; {stages})")


def _write_output(compiled, output: Path, sample) -> Path:
    """A .vmfb path gets the module; a folder gets the module plus device artifacts where a target has them."""
    if output.suffix == ".vmfb":
        return compiled.save(output)
    try:
        from .runtime.artifacts import write_device_folder
    except ImportError:
        return compiled.save(output.with_suffix(".vmfb"))
    return write_device_folder(compiled, output, [sample])


@app.command()
def run(
    module: Path = typer.Argument(..., help="a .vmfb written by `spattern compile`"),
    input: list[Path] = typer.Option(..., "--input", help=".npy file(s), one per model input"),
    target: str = typer.Option("host", help="the target it was compiled for"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="write the first output here (.npy)"),
) -> None:
    """Run a compiled module on .npy inputs."""
    import numpy as np

    from .fileio import atomic_write_bytes
    from .runtime.module import load

    arrays = []
    for p in input:
        if not p.is_file():
            raise InputError(f"no input file at {p}")
        try:
            arrays.append(np.load(p, allow_pickle=False))
        except ValueError as e:
            raise InputError(f"{p} is not a plain .npy array: {e}") from None
    results = load(module, target=target).run(*arrays)
    for i, r in enumerate(results):
        flat = r.reshape(-1)
        top = np.argsort(flat)[::-1][:5]
        out.print(f"output {i}: shape {tuple(r.shape)} {r.dtype}; top-5 index {top.tolist()} values "
                  f"{[round(float(flat[j]), 4) for j in top]}")
    if output is not None:
        import io

        buf = io.BytesIO()
        np.save(buf, results[0])
        atomic_write_bytes(output, buf.getvalue())


@app.command()
def targets() -> None:
    """List the compile targets and what each is for."""
    from .runtime.targets import TARGETS

    table = Table("target", "for", "runs here through")
    for t in TARGETS.values():
        how = {"python": "iree.runtime in this process", "qemu-aarch64": "iree-run-module under qemu-aarch64"}
        table.add_row(t.name, t.description, f"{how[t.runner]} ({t.driver})")
    out.print(table)


@app.command()
def demo(
    fast: bool = typer.Option(False, help="smaller settings (for tests)"),
    connectivity: float = typer.Option(0.5, help="fraction of kernels removed (0 = patterns only)"),
) -> None:
    """Prune, lower, compile and run a small built-in example; print accuracy and speedup."""
    from .demo import run_demo

    run_demo(fast=fast, connectivity=connectivity, console=out)


def main() -> None:
    try:
        app(standalone_mode=False)
    except SpatternError as e:
        console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        console.print("aborted")
        sys.exit(130)
    except Exception as e:  # usage errors of typer's click (vendored as typer._click in typer >= 0.29)
        if hasattr(e, "show") and hasattr(e, "exit_code"):
            e.show()
            sys.exit(e.exit_code)
        raise


if __name__ == "__main__":
    main()
