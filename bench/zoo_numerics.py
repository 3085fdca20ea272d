"""Numerics of the zoo's classic families on every target that runs here: each model in its small form (32x32,
narrow), dense and pattern-pruned (a random per-kernel plan, spattern.testing.random_plan_for), compiled for each
target with its default lowering and run; the table gives max abs error / max |output| against the (pruned)
PyTorch model (the bar is 1e-4), or the spattern error the compile or run raised. Any other exception is a bug
and is printed as one (BUG: type: message).

    .venv/bin/python bench/zoo_numerics.py                                 # new zoo models, host/arm64/vulkan
    .venv/bin/python bench/zoo_numerics.py --models densenet121 --targets host --out /tmp/t.txt

arm64-linux runs under qemu (the aarch64 iree-run-module), vulkan on lavapipe; a target whose tool is missing is
reported as skipped with the reason. Each cell runs in a child process with `--cell-timeout` seconds (a slow
lavapipe run must not hold up the table); a cell past it is reported as a timeout, which is no numerics result.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import spattern
from spattern.errors import SpatternError
from spattern.models import build
from spattern.runtime.runners import target_availability
from spattern.testing import random_plan_for

REL_TOL = 1e-4
NEW_MODELS = {"resnext50_32x4d": 0.125, "densenet121": 0.125, "googlenet": 0.125, "squeezenet1_1": 0.25,
              "mobilenet_v3_small": 0.25, "efficientnet_b0": 0.25, "unet_small": 0.25, "cspdarknet_small": 0.25}
TARGETS = ["host", "arm64-linux", "vulkan"]
VARIANTS = ["dense", "patterns"]


@dataclass
class Cell:
    model: str
    target: str
    variant: str
    result: str  # "ok 3.1e-07", "FAIL 2.0e-03" or the error's name and message
    seconds: float


def _short(e: BaseException, limit: int = 160) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check(name: str, width: float, target: str, variant: str, size: int) -> str:
    model = build(name, num_classes=10, image_size=size, width=width, seed=0)
    plan = None
    if variant == "patterns":
        model, plan = random_plan_for(model, filter_block=1, connectivity=0.0, seed=1)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x).numpy()
    try:
        compiled = spattern.compile(model, x, target=target, plan=plan)
        (got,) = compiled.run(x.numpy())
    except SpatternError as e:
        return f"{type(e).__name__}: {_short(e)}"
    except Exception as e:  # noqa: BLE001 -- the table reports a bug instead of stopping the sweep
        return f"BUG {type(e).__name__}: {_short(e)}"
    if got.shape != ref.shape:
        return f"BUG shape {got.shape} != {ref.shape}"
    rel = float(np.abs(got - ref).max()) / max(float(np.abs(ref).max()), 1e-30)
    how = "no plan" if plan is None else f"{compiled.info.get('lowering')}, {len(plan.layers)} pattern layers"
    return f"{'ok' if rel <= REL_TOL else 'FAIL'} {rel:.1e} ({how})"


def run_cell(name: str, width: float, target: str, variant: str, size: int, timeout: float) -> str:
    """check() in a child process, so that a run that outlasts `timeout` can be stopped."""
    cmd = [sys.executable, __file__, "--cell", f"{name},{width},{target},{variant},{size}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"TIMEOUT after {timeout:.0f} s (no result)"
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return f"BUG child exited {proc.returncode}: {_short(proc.stderr[-400:])}"
    return lines[-1][len("RESULT "):]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(NEW_MODELS), help="comma-separated zoo names")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--width", type=float, default=None, help="one width for all (default: per model)")
    ap.add_argument("--out", type=Path, default=None, help="also write the table here")
    ap.add_argument("--cell-timeout", type=float, default=900.0, help="seconds per (model, target, variant)")
    ap.add_argument("--cell", default=None, help=argparse.SUPPRESS)  # name,width,target,variant,size (the child)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    if args.cell is not None:
        name, width, target, variant, size = args.cell.split(",")
        print("RESULT " + check(name, float(width), target, variant, int(size)), flush=True)
        return 0
    targets = args.targets.split(",")
    skipped = {t: target_availability(t) for t in targets}
    cells: list[Cell] = []
    for name in args.models.split(","):
        width = args.width if args.width is not None else NEW_MODELS.get(name, 0.25)
        for target in targets:
            for variant in args.variants.split(","):
                t0 = time.perf_counter()
                avail = skipped[target]
                result = (run_cell(name, width, target, variant, args.image_size, args.cell_timeout)
                          if avail.runs_here else f"skipped: {avail.reason}")
                cells.append(Cell(name, target, variant, result, time.perf_counter() - t0))
                print(f"{name:20s} {target:12s} {variant:9s} {result}  [{cells[-1].seconds:.0f} s]", flush=True)
    lines = [f"zoo numerics: {args.image_size}x{args.image_size}, batch 1, max abs error / max |output| against the "
             f"(pruned) PyTorch model (bar {REL_TOL:g}); patterns = random per-kernel plan (filter block 1, "
             "connectivity 0); each target's default lowering", ""]
    header = f"{'model':20s} {'width':>5s} {'target':12s} {'variant':9s} result"
    lines += [header, "-" * len(header)]
    for c in cells:
        width = args.width if args.width is not None else NEW_MODELS.get(c.model, 0.25)
        lines.append(f"{c.model:20s} {width:5.3g} {c.target:12s} {c.variant:9s} {c.result}")
    n_ok = sum(c.result.startswith("ok") for c in cells)
    lines += ["", f"{n_ok}/{len(cells)} ok; total {sum(c.seconds for c in cells):.0f} s (cell timeout "
              f"{args.cell_timeout:.0f} s)"]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0 if n_ok == len(cells) else 1


if __name__ == "__main__":
    sys.exit(main())
