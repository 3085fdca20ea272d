"""`spattern report`: the per-layer table of a model file, its fallbacks for a target, and the plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError
from .layers import LayerRow, layer_table
from .plot import plot
from .results import Speedups, read_accuracy, read_peer_ratios, read_peers, speedups_vs_peers
from .tables import shape_text, fallback_table, passes_fallbacks, rows_table


def report_command(model: Path | None = None, zoo: str | None = None, plan: Path | None = None,
                   input_shape: tuple[int, ...] | None = None, num_classes: int = 1000, plot_path: Path | None = None,
                   accuracy: Path | None = None, peers: Path | Sequence[Path] | None = None, time_repeat: int = 3,
                   console: Any = None, target: str | None = None, lowering: str = "auto",
                   weights: Path | None = None) -> list[LayerRow]:
    """`spattern report MODEL [--plan ...] [--target T] [--plot out.png] [--accuracy r.json] [--peers r.json]`.

    MODEL is what `spattern compile` takes (a pruned folder carries its own plan; a state dict needs --zoo);
    `plan` overrides or adds a plan.json; `peers` is one or more `bench/peers.py --out` files. Prints the
    per-layer table and writes the plot; returns the rows. With `target`, it also runs the compiler up to its
    passes for that target (and `lowering`) and prints the fallbacks: which layers stayed off the fast path,
    and why (a .vmfb keeps no record of its compile, so the report recomputes it from the model). With an
    arm64 target, also each pattern layer's modelled time on an A76-class core beside the modelled dense time
    (arm_estimate.py; a model, not a measurement)."""
    import torch
    from rich.console import Console

    from ..modelfile import load_model
    from ..plan import PatternPlan

    console = console or Console()
    loaded = load_model(model, zoo=zoo, num_classes=num_classes,
                        image_size=input_shape[-1] if input_shape else None, weights=weights)
    if not isinstance(loaded.model, torch.nn.Module):
        raise InputError("the report needs the model's modules: give a pruned folder or a state dict with --zoo, "
                         "not an ExportedProgram")
    the_plan = PatternPlan.load(plan) if plan is not None else loaded.plan
    shape = input_shape or (1, 3, loaded.image_size or 224, loaded.image_size or 224)
    x = torch.randn(*shape)
    rows = layer_table(loaded.model, x, the_plan, time_repeat=time_repeat)
    name = loaded.zoo_name or (loaded.source.name if loaded.source else model.name if model else "model")
    console.print(rows_table(rows, title=f"{name} {shape_text(shape)}" + (" (pruned)" if the_plan else " (dense)")))
    if target is not None:
        if the_plan is None:
            console.print(f"{target}: no plan, so every layer runs on IREE's dense path (prune it first)")
        else:
            console.print(fallback_table(passes_fallbacks(loaded.model, x, the_plan, target, lowering)))
        if target.startswith("arm64"):
            from ..arm_estimate import arm_table

            console.print(arm_table(rows))
    peer_files = [] if peers is None else [peers] if isinstance(peers, (str, Path)) else list(peers)
    peer_data: Speedups = {}
    for f in peer_files:  # several bench/peers.py runs (e.g. one per model group); a later file wins per model
        peer_data.update(speedups_vs_peers(read_peers(Path(f)), read_peer_ratios(Path(f))))
    acc_data = read_accuracy(accuracy) if accuracy is not None else None
    if plot_path is not None:
        plot(plot_path, rows, peer_data or None, acc_data, title=name)
        console.print(f"wrote {plot_path}")
    elif peer_files or accuracy is not None:
        console.print("(--peers/--accuracy are drawn with --plot out.png)")
    return rows
