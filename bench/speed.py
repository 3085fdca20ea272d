"""Whole-model speed: pattern-pruned vs dense IREE at its best flags, in one run.

    .venv/bin/python bench/speed.py [--models vgg16_bn,resnet18] [--sizes 224,32] [--rounds 9] [--threads 2]
                                    [--ablation] [--out results.json]

Per model and size, compiled once each, then timed in alternating rounds (medians, spread):
  dense                IREE dense (host CPU + channels-last preprocessing: its best flags)
  portable fb64 r      the portable lowering (lower-to-linalg), 64 filters share a pattern per channel
  microkernels fb1 r   the CPU fast path (C pattern microkernels), a pattern per kernel
for r = 0 (patterns only) and r = 0.5 (half the kernels removed), with each plan's MAC limit beside its ratio.
`--ablation` adds, for r = 0, the steps from dense to the full CPU path, each with its speedup over the step
before (as PatDNN reported per optimisation):
  portable fb64        + patterns through the portable lowering (64 filters share a pattern per channel: with a
                       pattern per kernel the portable path is about dense speed)
  mk no FKR/LRE        + microkernels (from here a pattern per kernel), consecutive chunks of <= 64 filters,
                       kernels in filter order, each loading its own taps (passes: import-patterns,
                       dense-3x3-to-patterns, pool-to-channels-last, conv-1x1-to-matmul, lower-1x1-to-microkernels,
                       lower-linear-to-microkernels, lower-pool-to-microkernels, lower-to-microkernels)
  mk FKR               + filter-kernel-reorder / group-patterns / compact-weights: kernels sorted by pattern
  microkernels fb1     + reuse-loads: each run of same-pattern kernels loads its taps once (the default pipeline)
Plans are random-pattern plans: speed depends on the structure, not on the values.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from spattern.timing import interleaved


LOWER = ["pool-to-channels-last", "conv-1x1-to-matmul", "lower-1x1-to-microkernels", "lower-linear-to-microkernels",
         "lower-pool-to-microkernels", "lower-to-microkernels"]
ABLATION_STEPS = [  # (label, the passes run before the microkernels), r = 0, filter_block 1
    ("mk no FKR/LRE", ["import-patterns", "dense-3x3-to-patterns", *LOWER]),
    ("mk FKR", ["import-patterns", "dense-3x3-to-patterns", "filter-kernel-reorder", "group-patterns",
                "compact-weights", *LOWER]),
]


def mac_limit(model: torch.nn.Module, x: torch.Tensor, plan) -> float:
    from spattern.report import layer_table, totals

    return totals(layer_table(model, x, plan)).mac_limit


def bench(name: str, size: int, rounds: int, threads: int, ablation: bool) -> dict:
    import spattern
    from spattern.models import build
    from spattern.testing import random_plan_for

    model = build(name, num_classes=1000 if size >= 224 else 10, image_size=size)
    x = torch.randn(1, 3, size, size)
    variants: dict[str, tuple] = {"dense": (model, None, "auto", None)}
    for r in (0.0, 0.5):
        pruned64, plan64 = random_plan_for(model, 64, r, seed=0)
        pruned1, plan1 = random_plan_for(model, 1, r, seed=0)
        variants[f"portable fb64 r{r}"] = (pruned64, plan64, "linalg", None)
        variants[f"microkernels fb1 r{r}"] = (pruned1, plan1, "microkernels", None)
        if ablation and r == 0.0:
            for label, passes in ABLATION_STEPS:
                variants[f"{label} r{r}"] = (pruned1, plan1, "microkernels", passes)
    compiled, compile_s, limits = {}, {}, {}
    for label, (m, plan, lowering, passes) in variants.items():
        t0 = time.perf_counter()
        compiled[label] = spattern.compile(m, x, plan=plan, lowering=lowering, passes=passes, threads=threads)
        compile_s[label] = time.perf_counter() - t0
        limits[label] = 1.0 if plan is None else mac_limit(m, x, plan)
        print(f"# {name}@{size} {label}: compiled in {compile_s[label]:.0f} s", file=sys.stderr)
    xn = x.numpy()
    timings = interleaved({k: (lambda c=c: c.run(xn)) for k, c in compiled.items()}, rounds=rounds)
    dense_ms = timings["dense"].median_ms
    return {"model": name, "size": size, "threads": threads,
            "rows": [{"variant": k, "median_ms": t.median_ms, "spread": t.spread,
                      "speedup_vs_dense_iree": dense_ms / t.median_ms, "mac_limit": limits[k],
                      "compile_s": compile_s[k]} for k, t in timings.items()]}


def print_ablation(res: dict) -> None:
    """The ablation chain (r = 0, filter_block 1): each step's time and its speedup over the step before."""
    by_label = {row["variant"]: row for row in res["rows"]}
    chain = ["dense", "portable fb64 r0.0", *[f"{label} r0.0" for label, _ in ABLATION_STEPS],
             "microkernels fb1 r0.0"]
    if not all(label in by_label for label in chain):
        return
    print(f"ablation, {res['model']} {res['size']}, patterns only, a pattern per kernel:")
    before = None
    for label in chain:
        ms = by_label[label]["median_ms"]
        step = "" if before is None else f", step {before / ms:.2f}x"
        print(f"  {label:<24} {ms:8.2f} ms  vs dense {by_label['dense']['median_ms'] / ms:.2f}x{step}")
        before = ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="vgg16_bn,resnet18")
    ap.add_argument("--sizes", default="224,32")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ablation", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    from rich.console import Console
    from rich.table import Table

    results = [bench(m, int(s), args.rounds, args.threads, args.ablation)
               for m in args.models.split(",") for s in args.sizes.split(",")]
    table = Table("model", "variant", "median ms", "spread", "vs dense IREE", "MAC limit", "compile s",
                  title=f"whole model, batch 1, {args.threads} threads, {args.rounds} alternating rounds")
    for res in results:
        for row in res["rows"]:
            table.add_row(f"{res['model']} {res['size']}", row["variant"], f"{row['median_ms']:.2f}",
                          f"{row['spread']:.0%}", f"{row['speedup_vs_dense_iree']:.2f}x", f"{row['mac_limit']:.2f}x",
                          f"{row['compile_s']:.0f}")
    Console(width=150).print(table)
    for res in results:
        print_ablation(res)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
