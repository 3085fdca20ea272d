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
    model: Optional[Path] = typer.Argument(None, help="a .pt2 ExportedProgram, a state dict (with --zoo), your "
                                                      "architecture as path/to/model.py:ClassName (with "
                                                      "--weights), or a folder written by `spattern prune`"),
    output: Path = typer.Option(..., "-o", "--output", help="the .vmfb to write"),
    input_shape: Optional[str] = typer.Option(None, help="e.g. 1,3,224,224 (default: from the pruned folder, or "
                                                          "1,3,224,224)"),
    target: str = typer.Option("host", help="see `spattern targets`"),
    zoo: Optional[str] = typer.Option(None, help="zoo architecture for a state dict (vgg16_bn, resnet18, ...)"),
    num_classes: int = typer.Option(1000, help="classes of the zoo model"),
    weights: Optional[Path] = typer.Option(None, help="weights (safetensors, or a state-dict .pt read with "
                                                      "weights_only) for model.py:ClassName or --zoo"),
    lowering: str = typer.Option("auto", help="microkernels | linalg | auto"),
    passes: Optional[str] = typer.Option(None, help="comma-separated pass list replacing the default"),
    dump_dir: Optional[Path] = typer.Option(None, help="write every stage's IR here"),
) -> None:
    """Compile a model (dense, or pruned with its plan) into an IREE module."""
    import torch

    from . import api
    from .fileio import check_output_path
    from .modelfile import load_model

    check_output_path(output, folder=output.suffix != ".vmfb")
    if dump_dir is not None:
        check_output_path(dump_dir, folder=True)
    shape = _parse_shape(input_shape) if input_shape else None
    loaded = load_model(model, zoo=zoo, num_classes=num_classes, image_size=shape[-1] if shape else None,
                        weights=weights)
    if isinstance(loaded.model, torch.export.ExportedProgram):
        shapes = _exported_shapes(loaded.model, model, shape)
        xs = [torch.randn(*s) for s in shapes]
    else:
        if shape is None:
            size = loaded.image_size or 224
            shape = (1, 3, size, size)
        xs = [torch.randn(*shape)]
    with console.status(f"compiling for {target}..."):
        compiled = api.compile(loaded.model, xs, target=target, plan=loaded.plan, lowering=lowering,
                               passes=passes.split(",") if passes else None, dump_dir=dump_dir)
    expected = None
    if isinstance(loaded.model, torch.nn.Module):
        with torch.no_grad():
            expected = loaded.model(xs[0]).numpy()
    written = _write_output(compiled, output, xs[0].numpy(), expected)
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in compiled.stages.items())
    console.print(f"wrote {written} ({len(compiled.vmfb) / 1e6:.1f} MB; {stages})")
    if "fallbacks" in compiled.info:
        from .passes.fallbacks import summary_line

        console.print(summary_line(compiled.info["fallbacks"]), markup=False, soft_wrap=True)  # one line


def _exported_shapes(program, path: Path, asked: tuple[int, ...] | None) -> list[tuple[int, ...]]:
    """An ExportedProgram's input shapes are fixed when it is exported: --input-shape may only repeat them."""
    from .api import exported_input_shapes

    shapes = exported_input_shapes(program)
    text = " and ".join(",".join("?" if d is None else str(d) for d in s) for s in shapes)
    if any(d is None for s in shapes for d in s):
        raise InputError(f"{path} was exported with dynamic input dims ({text}); spattern compiles static shapes: "
                         "export it again with static shapes")
    if asked is not None and (len(shapes) != 1 or tuple(shapes[0]) != asked):
        raise InputError(f"{path} was exported at input shape {text}, and an ExportedProgram's shapes are fixed: "
                         f"drop --input-shape, or export the model again at {','.join(map(str, asked))}")
    return [tuple(s) for s in shapes]


def _write_output(compiled, output: Path, sample, expected=None) -> Path:
    """A .vmfb path gets the module; a folder gets the module plus device artifacts where a target has them."""
    if output.suffix == ".vmfb":
        return compiled.save(output)
    try:
        from .runtime.artifacts import write_device_folder
    except ImportError:
        return compiled.save(output.with_suffix(".vmfb"))
    return write_device_folder(compiled, output, [sample], expected=None if expected is None else [expected])


@app.command()
def prune(
    model: Optional[Path] = typer.Argument(None, help="your architecture as path/to/model.py:ClassName (or "
                                                      ":factory_function; with --weights), or the weights "
                                                      "(safetensors or a state-dict .pt) of a --zoo model"),
    output: Path = typer.Option(..., "-o", "--output", help="folder to write (plan.json, model.safetensors, "
                                                            "model.json); `spattern compile FOLDER` takes it"),
    zoo: Optional[str] = typer.Option(None, help="zoo architecture (vgg16_bn, resnet18, resnet50, mobilenet_v2, "
                                                  "vgg_small)"),
    num_classes: int = typer.Option(1000, help="classes of the zoo model"),
    weights: Optional[Path] = typer.Option(None, help="weights (safetensors, or a state-dict .pt read with "
                                                      "weights_only) for model.py:ClassName or --zoo"),
    input_shape: str = typer.Option("1,3,224,224", help="e.g. 1,3,32,32"),
    config: Optional[Path] = typer.Option(None, help="prune.yaml: default rule, per-layer rules by glob, exclude"),
    quick: bool = typer.Option(False, "--quick", help="shorter preset: 64 synthetic images x 50 steps, 4096 "
                                                      "positions, 12 ADMM iterations, 30 distillation steps "
                                                      "(about 1/16 of the default synthesis work); its accuracy "
                                                      "cost is not yet measured with bench/accuracy.py"),
    connectivity: Optional[float] = typer.Option(None, help="shortcut: fraction of kernels removed in every layer"),
    precision: Optional[str] = typer.Option(None, help="synthesis and distillation passes: float32 (default), "
                                            "bfloat16 (2.5-3x faster on CPUs with AVX512-BF16 / AMX) or auto"),
    quantize: Optional[str] = typer.Option(None, help="int8: per-channel int8 weights and u8 activations, "
                                           "calibrated and recovered on the same synthetic images (the plan "
                                           "holds the scales); default float32"),
    seed: int = typer.Option(0),
) -> None:
    """Prune a trained model without data: a pattern per 3x3 kernel, and whole kernels removed."""
    import torch

    from . import api
    from .fileio import check_output_path
    from .modelfile import load_model
    from .pruning import LayerRule, PruneConfig, save_pruned

    shape = _parse_shape(input_shape)
    check_output_path(output, folder=True)
    loaded = load_model(model, zoo=zoo, num_classes=num_classes, image_size=shape[-1], weights=weights)
    if not isinstance(loaded.model, torch.nn.Module) or loaded.plan is not None:
        what = "an ExportedProgram" if loaded.plan is None else "an already pruned folder"
        raise InputError(f"pruning needs the architecture's modules, and {model} is {what}: give your "
                         "architecture as path/to/model.py:ClassName --weights FILE, or --zoo NAME and the weights")
    if quick and config is not None:
        raise InputError("--quick is a preset of the effort settings, and --config gives its own: use one of them")
    cfg = PruneConfig.from_yaml(config) if config is not None else PruneConfig.quick() if quick else PruneConfig()
    if connectivity is not None:
        cfg.default = LayerRule(connectivity=connectivity, filter_block=cfg.default.filter_block,
                                library_size=cfg.default.library_size, library=cfg.default.library)
    if precision is not None:
        cfg.precision = precision
    if quantize is not None:
        cfg.quantize = quantize
    cfg.validate()
    result = api.prune(loaded.model, torch.randn(*shape), config=cfg, seed=seed, progress=True)
    if loaded.source is not None:  # `spattern compile FOLDER` imports the same file again to rebuild it
        info = {"source": str(loaded.source), "image_size": shape[-1]}
    else:
        info = {"zoo": zoo, "num_classes": num_classes, "image_size": shape[-1], "width": 1.0}
    folder = save_pruned(result, output, model_info=info)
    kept = sum(l.kept_fraction() for l in result.plan.layers) / max(1, len(result.plan.layers))
    console.print(f"wrote {folder}: {len(result.plan.layers)} pattern layers, {kept:.0%} of kernels kept on average")
    if result.plan.quant is not None:
        fallbacks = result.plan.quant.fallbacks()
        console.print(f"int8: {len(result.plan.quant.nodes)} quantized nodes, {len(fallbacks)} run in float32"
                      + (f" ({', '.join(n.name for n in fallbacks[:5])})" if fallbacks else ""), markup=False)


@app.command()
def report(
    model: Optional[Path] = typer.Argument(None, help="a pruned folder, weights with --zoo, or "
                                                      "path/to/model.py:ClassName (with --weights)"),
    zoo: Optional[str] = typer.Option(None),
    weights: Optional[Path] = typer.Option(None, help="weights (safetensors, or a state-dict .pt read with "
                                                      "weights_only) for model.py:ClassName or --zoo"),
    plan: Optional[Path] = typer.Option(None, help="a plan.json to apply to the report"),
    input_shape: Optional[str] = typer.Option(None, help="e.g. 1,3,224,224"),
    num_classes: int = typer.Option(1000),
    plot: Optional[Path] = typer.Option(None, "--plot", help="write a PNG: per-layer MACs, speedup vs peers, "
                                                             "accuracy vs speed"),
    accuracy: Optional[Path] = typer.Option(None, help="bench/accuracy.py --out results"),
    peers: Optional[list[Path]] = typer.Option(None, help="bench/peers.py --out results (repeatable)"),
    target: Optional[str] = typer.Option(None, help="also run the compiler's passes for this target (no "
                                                    "iree-compile) and list the layers that fell back, and why; "
                                                    "arm64-*: each pattern layer's modelled ARM time too "
                                                    "(an llvm-mca model, not a measurement)"),
    lowering: str = typer.Option("auto", help="with --target: microkernels | linalg | auto"),
) -> None:
    """Per-layer table of a model: shapes, dense or pattern, filter block, MACs kept, time share."""
    from .fileio import check_output_path
    from .report import report_command

    if plot is not None:
        check_output_path(plot, suffix=".png")
    report_command(model, zoo=zoo, plan=plan, input_shape=_parse_shape(input_shape) if input_shape else None,
                   num_classes=num_classes, plot_path=plot, accuracy=accuracy, peers=peers, console=out,
                   target=target, lowering=lowering, weights=weights)


@app.command()
def run(
    module: Path = typer.Argument(..., help="a .vmfb written by `spattern compile`"),
    input: list[Path] = typer.Option(..., "--input", help=".npy file(s), one per model input"),
    target: str = typer.Option("host", help="the target it was compiled for"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="write the first output here (.npy)"),
) -> None:
    """Run a compiled module on .npy inputs."""
    import numpy as np

    from .fileio import atomic_write_bytes, check_output_path
    from .runtime.module import load

    if output is not None:
        check_output_path(output)
    arrays = []
    for p in input:
        if not p.is_file():
            raise InputError(f"no input file at {p}")
        try:
            arrays.append(np.load(p, allow_pickle=False))
        except ValueError as e:
            raise InputError(f"{p} is not a plain .npy array: {e}") from None
    # in a child, so that a microkernel's trap on a corrupt table is one line, not a dead process
    from .runtime.trap_guard import run_isolated

    results = run_isolated(lambda: load(module, target=target).run(*arrays), str(module))
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
    from .runtime.runners import target_availability
    from .runtime.targets import TARGETS

    from rich import box

    # Two narrow columns and one wide one (what it is for, then how it runs here or why not, indented), with no
    # box: four equal columns wrapped every cell into ~45 lines at 80 columns.
    table = Table("target", "here", "for; how it runs here (or why not)", box=box.SIMPLE_HEAD, pad_edge=False,
                  show_edge=False)
    for t in TARGETS.values():
        a = target_availability(t)
        detail = (f"runs: {a.how}" if a.runs_here else f"not here: {a.reason}")
        table.add_row(t.name, "yes" if a.runs_here else "no", f"{t.description}\n[dim]{detail}[/dim]")
    out.print(table, highlight=False)


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
