"""Vulkan timing: dense vs pattern-pruned module of the same model, on whatever Vulkan device is here.

On a machine with a GPU this measures the portable (linalg) lowering on the GPU. Without one it runs on lavapipe
(Mesa's CPU Vulkan) and says so on every line: those ratios are CPU-emulated and say nothing about a phone GPU,
they only show the script and the modules work.

    .venv/bin/python bench/gpu.py                          # vgg_small, 32x32, blocks of 64, half the kernels kept
    .venv/bin/python bench/gpu.py --model vgg16_bn --image-size 224 --rounds 9
    .venv/bin/python bench/gpu.py --target vulkan-adreno   # only on a real Adreno GPU

Medians of interleaved rounds (dense, pattern, dense, ...), each round `--calls` calls, so drift affects both.
The pattern module needs the pass pipeline (`spattern.compile(..., plan=...)`) and a plan: from
`spattern.testing.random_plan_for` when present (random patterns, for timing only), else the dense row only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

import spattern
from spattern.models import build
from spattern.runtime.runners import VulkanRunner, is_software_vulkan, require_vulkan
from spattern.runtime.targets import get_target


@dataclass
class Row:
    name: str
    median_ms: float
    max_err: float | None  # vs the PyTorch model it was compiled from
    note: str = ""


def _pattern_model(model: torch.nn.Module, filter_block: int, connectivity: float,
                   seed: int) -> tuple[torch.nn.Module, Any] | None:
    """(pruned model, plan) from spattern.testing.random_plan_for, or None where that does not exist yet."""
    try:
        from spattern.testing import random_plan_for  # type: ignore[import-not-found]
    except ImportError:
        return None
    out = random_plan_for(model, filter_block, connectivity, seed)
    if isinstance(out, tuple):
        return out[0], out[1]
    return model, out


def conv_macs(model: torch.nn.Module, x: torch.Tensor, plan: Any = None) -> int:
    """MACs kept (the report's layer table); dense/pattern is the most a pattern module can gain."""
    from spattern.report import layer_table, totals

    return totals(layer_table(model, x, plan)).macs_kept


def _time(fn: Callable[[], Any], calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="vgg_small")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--target", default="vulkan", help="vulkan, or vulkan-adreno / vulkan-mali on such a GPU")
    ap.add_argument("--filter-block", type=int, default=64, help="filters sharing a pattern (portable path: >= 64)")
    ap.add_argument("--connectivity", type=float, default=0.5, help="fraction of kernels removed")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=5)
    args = ap.parse_args(argv)

    target = get_target(args.target)
    device = require_vulkan(target)
    emulated = is_software_vulkan(device)
    label = f"{device} (CPU-EMULATED Vulkan: ratios say nothing about a GPU)" if emulated else device
    print(f"device: {label}; target {target.name}; {args.model} width {args.width} at {args.image_size}x"
          f"{args.image_size}")

    model = build(args.model, num_classes=10 if args.image_size < 224 else 1000, image_size=args.image_size,
                  width=args.width)
    x = torch.randn(1, 3, args.image_size, args.image_size, generator=torch.Generator().manual_seed(0))
    variants: dict[str, tuple[torch.nn.Module, Any]] = {"dense": (model, None)}
    pattern = _pattern_model(model, args.filter_block, args.connectivity, seed=0)
    if pattern is None:
        print("pattern: not measured (spattern.testing.random_plan_for is not there yet: the pass pipeline has not "
              "landed); dense only")
    else:
        variants[f"pattern b{args.filter_block} r{args.connectivity}"] = pattern

    runs: dict[str, Callable[[], Any]] = {}
    macs = {name: conv_macs(m, x, plan) for name, (m, plan) in variants.items()}
    errs: dict[str, float | None] = {}
    for name, (m, plan) in variants.items():
        t0 = time.perf_counter()
        compiled = spattern.compile(m, x, target=target, plan=plan)
        runner = VulkanRunner(compiled.vmfb, target)
        with torch.no_grad():
            ref = m(x).numpy()
        (got,) = runner.run([x.numpy()])
        errs[name] = float(np.abs(got - ref).max())
        xs = [x.numpy()]
        runs[name] = lambda r=runner, xs=xs: r.run(xs)
        print(f"compiled {name} in {time.perf_counter() - t0:.1f} s; max abs err vs PyTorch {errs[name]:.3g} "
              f"(max |out| {np.abs(ref).max():.3g})")

    for fn in runs.values():  # warm-up: pipelines are created on first use
        fn()
    samples: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.rounds):
        for name, fn in runs.items():
            samples[name].append(_time(fn, args.calls))
    rows = [Row(n, statistics.median(s), errs[n]) for n, s in samples.items()]
    dense = rows[0].median_ms
    tag = " [CPU-emulated Vulkan]" if emulated else ""
    for r in rows:
        limit = macs["dense"] / macs[r.name]
        print(f"{r.name:<28} {r.median_ms:9.3f} ms  {macs[r.name] / 1e6:8.1f} MMAC   speed-up vs dense "
              f"{dense / r.median_ms:5.2f}x (MAC limit {limit:4.2f}x){tag}")
    if emulated and len(rows) > 1 and dense / rows[1].median_ms > macs["dense"] / macs[rows[1].name]:
        print("note: a speed-up above the MAC limit means lavapipe runs the dense conv codegen worse than the "
              "pattern path's matmuls; it is not a property of the pattern structure.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
