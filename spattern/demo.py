"""`spattern demo`: the main job end to end on a small built-in example.

A small VGG trained on scikit-learn's bundled handwritten digits (trained once, cached) is pruned without data
(pattern per kernel, half the kernels removed), lowered and compiled for this CPU, run by IREE on the test set,
and timed against the dense model on the fastest dense engines this machine has: torch channels-last always,
ONNX Runtime when it is installed (`pip install -e .[bench]`), and IREE at its best flags. The speedup it
states is over the fastest of them, named; dense IREE (about half the FMA peak) is a row of the table, not the
headline.
"""

from __future__ import annotations

import contextlib
import copy
import io
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from . import api
from .timing import interleaved


THREADS = 2  # every engine runs on this many threads, IREE's modules included
OURS = "pruned (spattern)"


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _torch_channels_last(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], object]:
    """The dense model in torch eager, channels-last (oneDNN's fast layout for convs on CPUs)."""
    m = copy.deepcopy(model).to(memory_format=torch.channels_last)
    xc = x.contiguous(memory_format=torch.channels_last)

    def call() -> object:
        with torch.no_grad():
            return m(xc)
    return call


def _onnxruntime(model: torch.nn.Module, x: torch.Tensor) -> tuple[Callable[[], object] | None, str]:
    """(the dense model in ONNX Runtime's CPU provider with all graph optimisations on THREADS threads, or None;
    what ran, or why it did not)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None, "ONNX Runtime is not installed (pip install -e .[bench])"
    with tempfile.TemporaryDirectory(prefix="spattern-demo-onnx-") as tmp:  # the session holds the weights
        path = Path(tmp) / "model.onnx"
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                torch.onnx.export(model, (x,), str(path), dynamo=True, opset_version=18, external_data=True)
        except Exception as e:  # noqa: BLE001 - the exporter's own failures (onnxscript missing, an op) skip it
            return None, f"ONNX Runtime skipped: the ONNX export failed ({type(e).__name__})"
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = THREADS, 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name, xn = sess.get_inputs()[0].name, x.numpy()
    return (lambda: sess.run(None, {name: xn})), f"dense ONNX Runtime {ort.__version__}"


def _dense_engines(model: torch.nn.Module, x: torch.Tensor, console: Console) -> dict[str, Callable[[], object]]:
    """The dense peers besides IREE: torch channels-last, and ONNX Runtime where it is installed."""
    engines = {"dense torch channels-last": _torch_channels_last(model, x)}
    ort_call, label = _onnxruntime(model, x)
    if ort_call is None:
        console.print(f"({label}: the fastest dense engine measured is the fastest of torch and IREE)")
    else:
        engines[label] = ort_call
    return engines


def _fastest_dense(ms: dict[str, float]) -> tuple[str, float]:
    """(name, speedup of ours over it) for the fastest dense engine in `ms`."""
    name = min((k for k in ms if k != OURS), key=ms.__getitem__)
    return name, ms[name] / ms[OURS]


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
        dense_mod = api.compile(model, x, target="host", threads=THREADS)
        sparse_mod = api.compile(pruned, x, target="host", plan=plan, threads=THREADS)
        engines = _dense_engines(model, x, console)
    xn = x.numpy()
    with _torch_threads(THREADS):
        ms = _interleaved_ms({OURS: lambda: sparse_mod.run(xn), "dense IREE": lambda: dense_mod.run(xn), **engines},
                             rounds=5 if fast else 9)
    limit = totals(layer_table(pruned, x, plan)).mac_limit
    fastest, speedup = _fastest_dense(ms)
    others = ", ".join(f"{k} {v:.1f} ms" for k, v in ms.items() if k != OURS)
    console.print(f"[6/6] {name} {size}x{size}, same structure (random weights): spattern {ms[OURS]:.1f} ms; "
                  f"speedup over the fastest dense engine here ({fastest}): {speedup:.2f}x (MAC limit {limit:.2f}x; "
                  f"{others})")
    return {"phone_size_speedup": speedup, "phone_size_fastest_dense": fastest, "phone_size_mac_limit": limit,
            "phone_size_speedup_vs_iree": ms["dense IREE"] / ms[OURS]}


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
        dense_mod = api.compile(dense, example, target="host", threads=THREADS)
        sparse_mod = api.compile(result.model, example, target="host", plan=result.plan, threads=THREADS)
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in sparse_mod.stages.items())
    console.print(f"[3/6] compiled the pruned model through {sparse_mod.info.get('lowering')} ({stages})")

    with torch.no_grad():
        ref = result.model(example).numpy()
    err = float(np.abs(sparse_mod.run(example.numpy())[0] - ref).max())
    acc_module = _module_accuracy(sparse_mod, x_test, y_test)
    console.print(f"[4/6] IREE module on the test set: top-1 {acc_module:.1%}; max |error| vs PyTorch {err:.1e} "
                  f"(max |output| {np.abs(ref).max():.1f})")

    xn = example.numpy()
    engines = _dense_engines(dense, example, console)
    with torch.no_grad(), _torch_threads(THREADS):
        ms = _interleaved_ms({OURS: lambda: sparse_mod.run(xn), "dense IREE": lambda: dense_mod.run(xn), **engines},
                             rounds=15 if fast else 101)
    fastest, speedup = _fastest_dense(ms)
    table = Table("engine", "top-1", "median ms", "spattern speedup", title="[5/6] digits, vgg_small, batch 1")
    for name, t in ms.items():
        table.add_row(name, f"{acc_module if name == OURS else acc_dense:.1%}", f"{t:.3f}", f"{t / ms[OURS]:.2f}x")
    console.print(table)
    console.print(f"Speedup over the fastest dense engine here ({fastest}): {speedup:.2f}x; MAC limit of this "
                  f"pruning: {tot.mac_limit:.2f}x. Accuracy {acc_dense:.1%} -> {acc_module:.1%}. (At 32x32 this model runs "
                  "in well under a millisecond, where call overhead, not MACs, decides.)")
    phone = _phone_size_speed(connectivity, fast, console)
    return {**phone, "acc_dense": acc_dense, "acc_pruned": acc_pruned, "acc_module": acc_module, "max_error": err,
            "speedup": speedup, "fastest_dense": fastest, "speedup_vs_iree": ms["dense IREE"] / ms[OURS],
            "mac_limit": tot.mac_limit}
