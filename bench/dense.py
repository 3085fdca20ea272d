"""Dense baseline: IREE at default flags and at the channels-last flag, against torch eager.

    .venv/bin/python bench/dense.py [--models vgg16_bn,resnet18] [--size 224] [--rounds 9] [--threads 2]

Prints, per model: median ms of each engine (alternating rounds in one run), ratios against torch eager,
export and compile wall times, and the export+compile peak memory (measured in a child process).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from spattern.timing import interleaved


def export_compile_cost(name: str, size: int) -> dict[str, float]:
    """Export + compile in a fresh process: wall seconds per stage and peak RSS (this process and iree-compile)."""
    code = f"""
import json, resource, torch, spattern
from spattern import models
m = models.build({name!r}, image_size={size})
c = spattern.compile(m, torch.randn(1, 3, {size}, {size}))
peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({{**c.stages, "peak_gb": peak / 1e6, "vmfb_mb": len(c.vmfb) / 1e6}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_model(name: str, size: int, rounds: int, threads: int, cost: dict[str, float]) -> dict:
    from spattern import models
    from spattern.passes.export import export_to_linalg, module_to_bytecode
    from spattern.runtime.compiler import compile_bytecode
    from spattern.runtime.module import CompiledModel
    from spattern.runtime.targets import get_target

    torch.set_num_threads(threads)
    model = models.build(name, image_size=size)
    x = torch.randn(1, 3, size, size)
    t0 = time.perf_counter()
    bytecode = module_to_bytecode(export_to_linalg(model, [x]))
    t_export = time.perf_counter() - t0
    host = get_target("host")
    modules, compile_s = {}, {}
    for label, best in [("iree default", False), ("iree channels-last", True)]:
        t0 = time.perf_counter()
        modules[label] = CompiledModel(compile_bytecode(bytecode, host, dense_best=best), host, threads=threads)
        compile_s[label] = time.perf_counter() - t0
    xn = x.numpy()
    x_cl = x.contiguous(memory_format=torch.channels_last)
    model_cl = models.build(name, image_size=size).to(memory_format=torch.channels_last)

    def torch_eager():
        with torch.no_grad():
            model(x)

    def torch_cl():
        with torch.no_grad():
            model_cl(x_cl)

    fns = {"torch eager": torch_eager, "torch channels_last": torch_cl}
    fns.update({k: (lambda m=m: m.run(xn)) for k, m in modules.items()})
    timings = interleaved(fns, rounds=rounds)
    base = timings["torch eager"].median_ms
    return {
        "model": f"{name} {size}",
        "median_ms": {k: t.median_ms for k, t in timings.items()},
        "spread": {k: t.spread for k, t in timings.items()},
        "speedup_vs_torch_eager": {k: base / t.median_ms for k, t in timings.items()},
        "export_s": t_export,
        "compile_s": compile_s,
        "cost_fresh_process": cost,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="vgg16_bn,resnet18")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from rich.console import Console
    from rich.table import Table

    names = args.models.split(",")
    # Costs first, while this process is small: a child's peak RSS counts what it inherited at fork.
    costs = {m: export_compile_cost(m, args.size) for m in names}
    results = [bench_model(m, args.size, args.rounds, args.threads, costs[m]) for m in names]
    table = Table("model", "engine", "median ms", "spread", "vs torch eager", title=f"dense, {args.threads} threads")
    for r in results:
        for k, ms in r["median_ms"].items():
            table.add_row(r["model"], k, f"{ms:.1f}", f"{r['spread'][k]:.0%}", f"{r['speedup_vs_torch_eager'][k]:.2f}x")
    Console().print(table)
    cost = Table("model", "export s", "compile s (default / channels-last)", "fresh process: export+compile s",
                 "peak GB", "vmfb MB")
    for r in results:
        c = r["cost_fresh_process"]
        cost.add_row(r["model"], f"{r['export_s']:.1f}", " / ".join(f"{v:.1f}" for v in r["compile_s"].values()),
                     f"{c['export'] + c['compile']:.1f}", f"{c['peak_gb']:.2f}", f"{c['vmfb_mb']:.0f}")
    Console().print(cost)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
