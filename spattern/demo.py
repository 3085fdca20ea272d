"""`spattern demo`: the main job end to end on a small built-in example.

A small VGG trained on scikit-learn's bundled handwritten digits (trained once, cached) is pruned without data
(pattern per kernel, half the kernels removed), lowered and compiled for this CPU, run by IREE on the test set,
and timed against the dense model compiled by IREE at its best flags and against torch eager.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from . import api
from .timing import interleaved


def _interleaved_ms(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median ms of each fn over alternating rounds: one run, so the ratios hold on a busy machine."""
    return {k: t.median_ms for k, t in interleaved(fns, rounds=rounds, warmup=1).items()}


def _module_accuracy(compiled: api.CompiledModel, x: torch.Tensor, y: torch.Tensor) -> float:
    hits = 0
    for i in range(len(x)):
        hits += int(np.argmax(compiled.run(x[i:i + 1].numpy())[0]) == int(y[i]))
    return hits / len(x)


def _torch_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def _phone_size_speed(connectivity: float, fast: bool, console: Console) -> dict[str, float]:
    """Speed depends on the pruning structure, not on the weight values: time the same structure (a pattern per
    kernel, `connectivity` of the kernels removed) on VGG-16 at 224x224, the size a phone app feeds it."""
    from . import models
    from .report import layer_table, totals
    from .testing import random_plan_for

    name, size, width = ("vgg16_bn", 64, 0.25) if fast else ("vgg16_bn", 224, 1.0)
    model = models.build(name, image_size=size, width=width)
    pruned, plan = random_plan_for(model, 1, connectivity, seed=0)
    x = torch.randn(1, 3, size, size)
    with console.status(f"[6/6] compiling {name} {size}x{size} dense and with the same pruning structure..."):
        dense_mod = api.compile(model, x, target="host", threads=2)
        sparse_mod = api.compile(pruned, x, target="host", plan=plan, threads=2)
    xn = x.numpy()
    ms = _interleaved_ms({"pruned (spattern)": lambda: sparse_mod.run(xn), "dense IREE": lambda: dense_mod.run(xn)},
                         rounds=5 if fast else 15)
    limit = totals(layer_table(pruned, x, plan)).mac_limit
    speedup = ms["dense IREE"] / ms["pruned (spattern)"]
    console.print(f"[6/6] {name} {size}x{size}, same structure (random weights): dense IREE "
                  f"{ms['dense IREE']:.1f} ms, spattern {ms['pruned (spattern)']:.1f} ms: {speedup:.2f}x "
                  f"(MAC limit {limit:.2f}x; dense IREE runs at about half the FMA peak)")
    return {"phone_size_speedup": speedup, "phone_size_mac_limit": limit}


def demo_task(task: str = "digits", model: str = "vgg_small", seed: int = 0, progress: bool = False):
    """(trained model, test images, test labels) for the README demo; trained once (about a minute), then cached
    under ~/.cache/spattern/models. Here in the face, not in pruning: pruning never sees a dataset."""
    from . import data
    from .training import trained_model

    net = trained_model(model, task, seed=seed, progress=progress)
    _, (xte, yte) = data.load_task(task)
    return net, xte, yte


def run_demo(fast: bool = False, connectivity: float = 0.5, console: Console | None = None) -> dict[str, float]:
    from .pruning import LayerRule, PruneConfig
    from .report import layer_table, totals

    console = console or Console()
    torch.manual_seed(0)
    with console.status("[1/6] dense model: vgg_small on handwritten digits (trained once, then cached)..."):
        dense, x_test, y_test = demo_task("digits", "vgg_small", progress=False)
    if fast:
        x_test, y_test = x_test[:64], y_test[:64]
    example = x_test[:1]
    acc_dense = _torch_accuracy(dense, x_test, y_test)
    console.print(f"[1/6] dense vgg_small, digits test set ({len(x_test)} images): top-1 {acc_dense:.1%}")

    # Fewer synthetic images than the library default: the demo should finish in a couple of minutes.
    cfg = PruneConfig(default=LayerRule(connectivity=connectivity), num_samples=128, synth_steps=100)
    if fast:
        cfg = PruneConfig(default=LayerRule(connectivity=connectivity), num_samples=64, synth_steps=30,
                          admm_iters=8, distill_steps=0, positions=2048)
    t0 = time.perf_counter()
    result = api.prune(dense, example, config=cfg, progress=not fast)
    t_prune = time.perf_counter() - t0
    acc_pruned = _torch_accuracy(result.model, x_test, y_test)
    rows = layer_table(result.model, example, plan=result.plan)
    tot = totals(rows)
    console.print(f"[2/6] pruned without data in {t_prune:.0f} s ({len(result.plan.layers)} layers, pattern per "
                  f"kernel, connectivity {connectivity}): top-1 {acc_pruned:.1%} in PyTorch; MACs kept "
                  f"{tot.macs_kept / tot.macs:.1%} (MAC limit {tot.mac_limit:.2f}x)")

    with console.status("[3/6] lower + compile for this CPU (dense and pruned)..."):
        dense_mod = api.compile(dense, example, target="host", threads=2)
        sparse_mod = api.compile(result.model, example, target="host", plan=result.plan, threads=2)
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in sparse_mod.stages.items())
    console.print(f"[3/6] compiled the pruned model through {sparse_mod.info.get('lowering')} ({stages})")

    with torch.no_grad():
        ref = result.model(example).numpy()
    err = float(np.abs(sparse_mod.run(example.numpy())[0] - ref).max())
    acc_module = _module_accuracy(sparse_mod, x_test, y_test)
    console.print(f"[4/6] IREE module on the test set: top-1 {acc_module:.1%}; max |error| vs PyTorch {err:.1e} "
                  f"(max |output| {np.abs(ref).max():.1f})")

    xn = example.numpy()
    with torch.no_grad():
        ms = _interleaved_ms({
            "pruned (spattern)": lambda: sparse_mod.run(xn),
            "dense IREE": lambda: dense_mod.run(xn),
            "dense torch eager": lambda: dense(example),
        }, rounds=15 if fast else 101)
    table = Table("engine", "top-1", "median ms", "spattern speedup", title="[5/6] digits, vgg_small, batch 1")
    accs = {"pruned (spattern)": acc_module, "dense IREE": acc_dense, "dense torch eager": acc_dense}
    for name, t in ms.items():
        table.add_row(name, f"{accs[name]:.1%}", f"{t:.3f}", f"{t / ms['pruned (spattern)']:.2f}x")
    console.print(table)
    console.print(f"MAC limit of this pruning: {tot.mac_limit:.2f}x. Accuracy {acc_dense:.1%} -> {acc_module:.1%}. "
                  "(At 32x32 this model runs in well under a millisecond, where call overhead, not MACs, decides.)")
    phone = _phone_size_speed(connectivity, fast, console)
    return {**phone, "acc_dense": acc_dense, "acc_pruned": acc_pruned, "acc_module": acc_module, "max_error": err,
            "speedup_vs_iree": ms["dense IREE"] / ms["pruned (spattern)"], "mac_limit": tot.mac_limit}
