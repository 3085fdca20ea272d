"""Pruned (portable lower-to-linalg path) vs dense IREE at its best flags, whole models, 2 threads.

    .venv/bin/python bench/speed.py [--models vgg16_bn resnet18] [--sizes 224 32] [--rounds 7] [--filter-block 64]

Each variant is compiled once; rounds alternate the variants (dense, pruned, dense, ...) so drift hits all
alike; each round times `--iters` calls and the table shows medians over rounds, the ratio dense/variant and the
MAC limit of the plan (dense MACs / kept MACs, over the whole model) beside it. Plans are random-pattern plans
with `--connectivity` removed (0: patterns only), which time exactly like ADMM ones. A new column is one entry
in VARIANTS (the microkernel path: `lambda ...: compile_pruned(..., path="microkernels")`).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import iree.compiler as ic  # noqa: E402
import iree.runtime as rt  # noqa: E402
from torch_mlir import fx  # noqa: E402
from torch_mlir.fx import OutputType  # noqa: E402

from spattern.models import build  # noqa: E402
from spattern.passes.pipeline import default_pipeline, run_passes  # noqa: E402
from spattern.pruning.plan import PatternPlan  # noqa: E402
from spattern.testing import random_plan_for  # noqa: E402

HOST = ["--iree-llvmcpu-target-cpu=host"]
CHANNELS_LAST = ["--iree-preprocessing-pass-pipeline=builtin.module(util.func("
                 "iree-preprocessing-convert-conv-to-channels-last))"]


def to_vmfb(module, flags: list[str]) -> bytes:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    module.operation.write_bytecode(buf)
    return ic.compile_str(buf.getvalue(), target_backends=["llvm-cpu"], extra_args=flags)


def export(model: torch.nn.Module, x: torch.Tensor):  # type: ignore[no-untyped-def]
    return fx.export_and_import(model, x, output_type=OutputType.LINALG_ON_TENSORS, func_name="main")


def compile_dense(model: torch.nn.Module, plan: PatternPlan, x: torch.Tensor) -> bytes:
    return to_vmfb(export(model, x), HOST + CHANNELS_LAST)


def compile_pruned(model: torch.nn.Module, plan: PatternPlan, x: torch.Tensor, path: str = "linalg") -> bytes:
    module = export(model, x)
    run_passes(module, plan, default_pipeline(path))
    return to_vmfb(module, HOST + CHANNELS_LAST)  # the flag still helps the layers that stay dense


VARIANTS: dict[str, Callable[[torch.nn.Module, PatternPlan, torch.Tensor], bytes]] = {
    "dense": compile_dense,
    "portable": compile_pruned,
}


def conv_macs(model: torch.nn.Module, x: torch.Tensor) -> dict[str, int]:
    macs: dict[str, int] = {}
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Conv2d):
            def hook(mod, inp, out, name=name):  # type: ignore[no-untyped-def]
                k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
                macs[name] = int(out.numel() * k)
            hooks.append(m.register_forward_hook(hook))
        elif isinstance(m, torch.nn.Linear):
            macs[name] = m.in_features * m.out_features
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return macs


def mac_limit(macs: dict[str, int], plan: PatternPlan) -> float:
    kept = dict(macs)
    for layer in plan.layers:
        kept[layer.name] = macs[layer.name] * layer.macs_kept_fraction()
    return sum(macs.values()) / sum(kept.values())


@dataclass
class Runner:
    fn: Callable[[np.ndarray], object]

    @classmethod
    def load(cls, vmfb: bytes) -> "Runner":
        ctx = rt.SystemContext(config=rt.Config("local-task"))
        ctx.add_vm_module(rt.VmModule.copy_buffer(ctx.instance, vmfb))
        return cls(ctx.modules.module.main)

    def time(self, x: np.ndarray, iters: int) -> float:
        t = time.perf_counter()
        for _ in range(iters):
            np.asarray(self.fn(x))
        return (time.perf_counter() - t) / iters


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["vgg16_bn", "resnet18"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[224, 32])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--iters", type=int, default=0, help="calls per round (0: about 0.3 s worth)")
    ap.add_argument("--filter-block", type=int, default=64)
    ap.add_argument("--connectivity", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    args = ap.parse_args()
    rt.flags.parse_flags(f"--task_topology_max_group_count={args.threads}")
    rows = []
    for name in args.models:
        for size in args.sizes:
            model = build(name, num_classes=1000 if size == 224 else 10, image_size=size)
            pruned, plan = random_plan_for(model, args.filter_block, args.connectivity, seed=0)
            x = torch.randn(1, 3, size, size)
            runners = {}
            for v in args.variants:
                t = time.time()
                runners[v] = Runner.load(VARIANTS[v](model if v == "dense" else pruned, plan, x))
                print(f"# {name}@{size} {v}: compiled in {time.time() - t:.0f} s", file=sys.stderr)
            xn = x.numpy()
            iters = args.iters or max(1, int(0.3 / max(runners["dense"].time(xn, 1), 1e-4)))
            times: dict[str, list[float]] = {v: [] for v in runners}
            for _ in range(args.rounds):
                for v, r in runners.items():
                    times[v].append(r.time(xn, iters))
            med = {v: statistics.median(ts) for v, ts in times.items()}
            rows.append((name, size, med, mac_limit(conv_macs(pruned, x), plan)))
    print(f"| model | size | dense (ms) | " + " | ".join(f"{v} (ms) | {v} speedup" for v in args.variants
                                                       if v != "dense") + " | MAC limit |")
    print("|---|---|---|" + "---|---|" * (len(args.variants) - 1) + "---|")
    for name, size, med, limit in rows:
        cols = " | ".join(f"{med[v] * 1e3:.2f} | {med['dense'] / med[v]:.2f}x" for v in args.variants if v != "dense")
        print(f"| {name} | {size} | {med['dense'] * 1e3:.2f} | {cols} | {limit:.2f}x |")


if __name__ == "__main__":
    main()
