"""Vulkan (portable lowering) on a real GPU: export the modules here, run them on a machine with only numpy and
iree-base-runtime (no torch, no compiler, no spattern).

    .venv/bin/python bench/gpu_device.py export .gpu --real-params resnet18:0.5   # here: modules, manifest.json
    python3 bench/gpu_device.py run .gpu                   # there: numerics, timing table, per-dispatch profile

What it measures: the median wall time of one batch-1 call of `main` through `iree-benchmark-module
--device=vulkan` (dispatch + GPU work + sync; each repetition is Google Benchmark's mean over its iterations;
median over all repetitions of interleaved rounds), for the dense module and pattern-pruned modules (random
plans from `spattern.testing.random_plan_for`, filter blocks of 64, `r` = fraction of kernels removed), with the
speed-up vs dense and the MAC limit (dense MACs / kept MACs, `bench/gpu.py`'s `conv_macs`, saved at export).
Then, per module, IREE's HAL profiler (`--device_profiling_mode=dispatch-events`): dispatches per call, summed
GPU dispatch time, its split by dispatch kind and the costliest dispatches.

Numerics: the small modules (vgg_small 32x32) embed their weights, `--real-params` models carry their real
parameter archive; `run` compares the GPU output with the PyTorch output saved at export (max abs err / max
|ref|, bar 1e-4), `--numerics-runs` times in separate processes.

Timing-only: the 224x224 models are too large to carry with their weights (VGG-16 ~550 MB), so their weights are
parameters (constants >= 16 KiB) served from a splat archive (`--iree-parameter-splat`): every weight reads as a
constant, so their outputs are meaningless, but they do the same work. A `--real-params` module is timed with
both archives, which checks that.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SCOPE = "model"  # parameter scope of the externalised weights
# Constants above 64 KiB become parameters: the weights of every conv but the smallest (a [1, 64, 256] pattern
# layer, 64 KiB, stays inline), while the lowering's i32 window tables (<= 8 groups x 2048 rows = 64 KiB) and the
# biases stay inline, so the splat archive does not change which input windows are read.
MIN_PARAM_BYTES = (64 << 10) + 1
REL_ERR_BAR = 1e-4


# --- export (here: torch + spattern + iree-compile) ----------------------------------------------------------
def _variants(spec: str) -> list[float | None]:
    """'dense,0,0.5' -> [None, 0.0, 0.5] (None = dense; a number = connectivity of an fb64 random plan)."""
    return [None if v == "dense" else float(v) for v in spec.split(",")]


def _vmfb(model: Any, x: Any, plan: Any, params: Path | None, splat: Path | None) -> bytes:
    """The vulkan module; with `params`, constants >= MIN_PARAM_BYTES become parameters in scope SCOPE, written to
    `params` (real values) and, with `splat`, also to a splat archive of the same keys.

    `--iree-parameter-export` alone exports nothing here: it runs at the end of global optimization, where the
    weights are still inline `arith.constant`s (only const-eval results are globals by then). So compile to
    global-optimization (const-eval included), outline the constants into globals, export, and compile on."""
    import spattern
    from iree.compiler.tools.binaries import find_tool
    from spattern.pipeline import new_state, run_pipeline
    from spattern.runtime.compiler import compile_bytecode
    from spattern.runtime.targets import get_target

    target = get_target("vulkan")
    if params is None:
        return spattern.compile(model, x, target=target, plan=plan).vmfb
    state = new_state(model, [x], target, plan=plan, passes=None, lowering="auto", dump_dir=None)
    run_pipeline(state, stop_after="finalize")
    phase = "global-optimization"
    mid = compile_bytecode(state.bytecode, target, extra_flags=[f"--compile-to={phase}", "--emit-mlir-bytecode"])
    passes = ["iree-flow-outline-constants",
              f"iree-io-export-parameters{{path={SCOPE}={params} minimum-size={MIN_PARAM_BYTES}}}"]
    if splat is not None:
        passes.append(f"iree-io-generate-splat-parameter-archive{{file={splat}}}")
    with tempfile.TemporaryDirectory(prefix="gpu-device-") as tmp:
        src, dst = Path(tmp) / "mid.mlirbc", Path(tmp) / "ext.mlirbc"
        src.write_bytes(mid)
        subprocess.run([str(find_tool("iree-opt")), str(src), f"--pass-pipeline=builtin.module({','.join(passes)})",
                        "--emit-bytecode", "-o", str(dst)], check=True)
        ext = dst.read_bytes()
    return compile_bytecode(ext, target, extra_flags=[f"--compile-from={phase}"])


def export(out: Path, small: list[float | None], big_models: list[str], big: list[float | None],
           real_params: list[str], block: int) -> None:
    import torch

    from gpu import conv_macs  # bench/gpu.py
    from spattern.models import build
    from spattern.testing import random_plan_for

    out.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    jobs = [("vgg_small", 32, v, "embedded") for v in small]
    for name in big_models:
        jobs += [(name, 224, v, "real" if f"{name}:{'dense' if v is None else v}" in real_params else "splat")
                 for v in big]
    models: dict[str, Any] = {}
    for name, size, conn, weights in jobs:
        if (name, size) not in models:
            models[name, size] = build(name, num_classes=10 if size < 224 else 1000, image_size=size)
            x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
            np.save(out / f"{name}-{size}.x.npy", x.numpy())
        model = models[name, size]
        x = torch.from_numpy(np.load(out / f"{name}-{size}.x.npy"))
        m, plan = (model, None) if conn is None else random_plan_for(model, filter_block=block, connectivity=conn,
                                                                     seed=0)
        variant = "dense" if conn is None else f"fb{block} r{conn}"
        stem = f"{name}-{size}-{'dense' if conn is None else f'fb{block}-r{conn}'}"
        t0 = time.perf_counter()
        splat = None if weights == "embedded" else f"{stem}.splat.irpa"
        with tempfile.TemporaryDirectory(prefix="gpu-device-") as tmp:
            if weights == "embedded":
                vmfb = _vmfb(m, x, plan, None, None)
            else:  # "real": the real archive travels too; "splat": real values to a scratch file
                real = out / f"{stem}.irpa" if weights == "real" else Path(tmp) / "real.irpa"
                vmfb = _vmfb(m, x, plan, real, out / str(splat))
        (out / f"{stem}.vmfb").write_bytes(vmfb)
        ref = None
        if weights != "splat":
            with torch.no_grad():
                np.save(out / f"{stem}.ref.npy", m(x).numpy())
            ref = f"{stem}.ref.npy"
        common = dict(model=name, size=size, variant=variant, vmfb=f"{stem}.vmfb", input=f"{name}-{size}.x.npy",
                      macs=conv_macs(m, x, plan), macs_dense=conv_macs(model, x, None))
        if weights == "real":  # timed with both archives: splat timing == real timing, or splat is no proxy
            entries.append(dict(common, weights="real", params=f"{stem}.irpa", ref=ref))
        entries.append(dict(common, weights="embedded" if weights == "embedded" else "splat", params=splat,
                            ref=ref if weights == "embedded" else None))
        print(f"exported {stem} ({weights} weights) in {time.perf_counter() - t0:.1f} s: "
              f"{len(vmfb) / 1e6:.2f} MB module", flush=True)
    (out / "manifest.json").write_text(json.dumps({"scope": SCOPE, "entries": entries}, indent=1))


# --- run (there: numpy + iree-base-runtime only) -------------------------------------------------------------
def _tools() -> Path:
    import iree._runtime_libs as libs  # type: ignore[import-not-found]

    return Path(libs.__file__).parent


def _sh(cmd: list[str], log: list[str]) -> subprocess.CompletedProcess[str]:
    log.append("$ " + shlex.join(cmd))
    return subprocess.run(cmd, capture_output=True, text=True)


def _args(d: Path, e: dict[str, Any], scope: str, device: str) -> list[str]:
    a = [f"--device={device}", f"--module={d / e['vmfb']}", "--function=main", f"--input=@{d / e['input']}"]
    if e["params"]:
        a.append(f"--parameters={scope}={d / e['params']}")
    return a


def _profile(d: Path, e: dict[str, Any], scope: str, device: str, calls: int, log: list[str]) -> str:
    """One line per module from IREE's HAL profiler (device timestamps per dispatch, `calls` benchmark calls):
    dispatches and summed GPU dispatch time per call, the share per dispatch kind, the 3 costliest dispatches."""
    tools = _tools()
    with tempfile.TemporaryDirectory(prefix="gpu-device-") as tmp:
        prof = Path(tmp) / "p.ireeprof"
        p = _sh([str(tools / "iree-benchmark-module"), *_args(d, e, scope, device), f"--benchmark_min_time={calls}x",
                 "--benchmark_repetitions=1", "--device_profiling_mode=dispatch-events",
                 f"--device_profiling_output={prof}"], log)
        q = _sh([str(tools / "iree-profile"), "dispatch", "--format=jsonl", str(prof)], log) if p.returncode == 0 else p
    if q.returncode != 0:
        return f"profile FAILED: {q.stderr.strip()[-500:]}"
    groups = [g for g in map(json.loads, q.stdout.splitlines()) if g.get("type") == "dispatch_group"]
    n = statistics.mode(g["count"] for g in groups)  # calls seen (every dispatch of main runs once per call)
    total = sum(g["total_ns"] for g in groups) / n
    kinds: dict[str, float] = {}
    for g in groups:
        words = g["key"].split("_")[3:] if g["key"].startswith("main_dispatch_") else [g["key"]]
        kind = "_".join(w for w in words if not any(c.isdigit() for c in w)) or "other"
        kinds[kind] = kinds.get(kind, 0.0) + g["total_ns"] / n
    share = ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])[:4])
    top = sorted(groups, key=lambda g: -g["total_ns"])[:3]
    tops = "; ".join(f"{g['key'].split('_', 3)[-1]} {g['total_ns'] / n / 1e6:.2f}" for g in top)
    return (f"{sum(g['count'] for g in groups) / n:5.0f} dispatches, GPU {total / 1e6:8.3f} ms/call ({share}); "
            f"top ms: {tops}")


def run(d: Path, device: str, rounds: int, reps: int, min_time: float, numerics_runs: int,
        profile_calls: int) -> int:
    manifest = json.loads((d / "manifest.json").read_text())
    scope, entries = manifest["scope"], manifest["entries"]
    tools = _tools()
    log: list[str] = []
    rc = 0
    ident = _sh([str(tools / "iree-run-module"), "--dump_devices=vulkan"], log)
    print("== device (iree-run-module --dump_devices=vulkan)\n" + (ident.stdout + ident.stderr).strip())

    print("\n== numerics (GPU output vs PyTorch, max abs err / max |ref|)")
    with tempfile.TemporaryDirectory(prefix="gpu-device-") as tmp:
        for e in entries:
            if not e["ref"]:
                continue
            label = f"{e['model']} {e['size']} {e['variant']} ({e['weights']} weights)"
            ref = np.load(d / e["ref"])
            rels: list[float] = []
            for k in range(numerics_runs):  # separate processes: a race would show as run-to-run differences
                got_path = Path(tmp) / f"out{k}.npy"
                p = _sh([str(tools / "iree-run-module"), *_args(d, e, scope, device), f"--output=@{got_path}"], log)
                if p.returncode != 0:
                    print(f"{label}: FAILED\n{p.stderr.strip()[-2000:]}")
                    break
                got = np.load(got_path)
                rels.append(float(np.abs(got - ref).max() / np.abs(ref).max()) if got.shape == ref.shape else np.inf)
            ok = len(rels) == numerics_runs and max(rels) <= REL_ERR_BAR
            rc |= 0 if ok else 1
            print(f"{label:<48} rel err {max(rels, default=np.inf):.2e} (max of {len(rels)} runs)  "
                  f"{'OK' if ok else 'FAIL'} (bar {REL_ERR_BAR:g})")

    print(f"\n== timing: iree-benchmark-module --device={device}, batch 1, {rounds} interleaved rounds x {reps} "
          f"repetitions (min time {min_time} s each); median ms")
    samples: dict[int, list[float]] = {i: [] for i in range(len(entries))}
    for _ in range(rounds):
        for i, e in enumerate(entries):
            p = _sh([str(tools / "iree-benchmark-module"), *_args(d, e, scope, device),
                     f"--benchmark_repetitions={reps}", f"--benchmark_min_time={min_time}s",
                     f"--benchmark_min_warmup_time={min_time}",
                     "--benchmark_format=json"], log)
            if p.returncode != 0:
                print(f"{e['vmfb']}: benchmark FAILED\n{p.stderr.strip()[-2000:]}")
                rc = 1
                continue
            runs = json.loads(p.stdout)["benchmarks"]
            samples[i] += [r["real_time"] * {"ns": 1e-6, "us": 1e-3, "ms": 1.0}[r["time_unit"]]
                           for r in runs if r.get("run_type") == "iteration"]
    print(f"{'model':<11}{'size':>5}  {'variant':<11}{'weights':<10}{'median ms':>11}{'min ms':>11}"
          f"{'vs dense':>10}{'MAC limit':>11}")
    dense_ms: dict[tuple[str, int], float] = {}
    for i, e in enumerate(entries):
        if not samples[i]:
            continue
        med = statistics.median(samples[i])
        key = (e["model"], e["size"])
        if e["variant"] == "dense":
            dense_ms[key] = med
        speed = f"{dense_ms[key] / med:9.2f}x" if key in dense_ms else f"{'-':>10}"
        print(f"{e['model']:<11}{e['size']:>5}  {e['variant']:<11}{e['weights']:<10}{med:11.3f}"
              f"{min(samples[i]):11.3f}{speed}{e['macs_dense'] / e['macs']:10.2f}x")
    print("\nsplat weights: outputs meaningless, same work (timing only); real/embedded: numerics checked above")
    if profile_calls:
        print(f"\n== per-dispatch GPU time (--device_profiling_mode=dispatch-events, {profile_calls} calls; kinds "
              f"from IREE's dispatch names)")
        for e in entries:
            if e["weights"] != "real":  # same module as its splat twin
                print(f"{e['model']:<9}{e['size']:>4} {e['variant']:<10} "
                      f"{_profile(d, e, scope, device, profile_calls, log)}")
    (d / "commands.log").write_text("\n".join(log) + "\n")
    return rc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("export", help="compile the modules here (needs the .venv)")
    ex.add_argument("dir", type=Path)
    ex.add_argument("--small", default="dense,0,0.5", help="vgg_small 32x32 variants (real weights)")
    ex.add_argument("--big-models", default="vgg16_bn,resnet18", help="224x224 models ('' for none)")
    ex.add_argument("--big", default="dense,0,0.5", help="224x224 variants")
    ex.add_argument("--real-params", default="",
                    help="MODEL:CONN (e.g. resnet18:0.5) whose real parameter archive travels (numerics)")
    ex.add_argument("--filter-block", type=int, default=64)
    rn = sub.add_parser("run", help="numerics + timing on this machine's GPU (numpy + iree-base-runtime only)")
    rn.add_argument("dir", type=Path)
    rn.add_argument("--device", default="vulkan")
    rn.add_argument("--rounds", type=int, default=3)
    rn.add_argument("--reps", type=int, default=5)
    rn.add_argument("--min-time", type=float, default=0.2)
    rn.add_argument("--numerics-runs", type=int, default=3, help="runs per numerics module (run-to-run races)")
    rn.add_argument("--profile-calls", type=int, default=10, help="calls profiled per module (0: no profile)")
    args = ap.parse_args(argv)
    if args.cmd == "export":
        big_models = [m for m in args.big_models.split(",") if m]
        real = [f"{m}:{'dense' if v is None else v}" for s in args.real_params.split(",") if s
                for m, v in [(s.split(":")[0], _variants(s.split(":")[1])[0])]]
        export(args.dir, _variants(args.small), big_models, _variants(args.big), real, args.filter_block)
        return 0
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return run(args.dir, args.device, args.rounds, args.reps, args.min_time, args.numerics_runs,
               args.profile_calls)


if __name__ == "__main__":
    sys.exit(main())
