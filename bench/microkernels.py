"""Per-layer benchmark: the pattern microkernel (as an IREE custom dispatch) vs IREE's dense conv at its best
flags, on VGG-16's 3x3 layer shapes at 224x224, 1 and 2 threads, measured interleaved in the same process.

Sparse layers use per-kernel patterns (filter_block 1) from an 8-pattern library, patterns only (r=0) and with
half the kernels removed (r=0.5). Printed per layer: dense time, each sparse ratio beside its MAC limit, and
achieved GFLOP/s (dense: all 9 MACs; sparse: useful MACs only). Usage: python bench/microkernels.py [--rounds 7]

`--sync`: the same IREE modules on the local-sync device (every dispatch runs in the calling thread), timed with
that thread's CPU time: one thread, immune to being descheduled and to where IREE pins its task workers (on a
shared machine, local-task's single worker is pinned to CPU 0 and its wall time can be 1.5-2x the kernel's CPU
time). `--layers 512x14,512x7` selects layers (default: LAYERS) in every mode.

`--cpu-time`: the kernel-tuning view instead: one core, no IREE; the host object called over all workgroups by
a tiny C loop (no per-call ctypes cost), against torch's dense conv2d (channels_last, 1 thread), both timed with
the thread's CPU time (time.thread_time: immune to being descheduled on a loaded machine), interleaved rounds,
medians; every layer's output is checked against torch first. Shapes: the kernel-target list (LAYERS_CPU).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LAYERS = [(64, 224), (128, 112), (256, 56), (512, 28), (512, 14)]  # (channels in = out, image size)
LAYERS_CPU = [(64, 56), (128, 28), (256, 14), (512, 28), (512, 14), (64, 224), (64, 112)]
CONNECTIVITY = (0.0, 0.5)
DENSE_FLAGS = ["--iree-llvmcpu-target-cpu=host",
               "--iree-preprocessing-pass-pipeline=builtin.module(util.func("
               "iree-preprocessing-convert-conv-to-channels-last))"]


def dense_module(w: np.ndarray, shape: tuple[int, ...]) -> str:
    n, c, h, wd = shape
    f = w.shape[0]
    x_t, p_t, o_t = (f"tensor<{n}x{c}x{h}x{wd}xf32>", f"tensor<{n}x{c}x{h + 2}x{wd + 2}xf32>",
                     f"tensor<{n}x{f}x{h}x{wd}xf32>")
    hexw = w.astype("<f4").tobytes().hex().upper()
    return f"""
func.func @main(%x: {x_t}) -> {o_t} {{
  %zero = arith.constant 0.0 : f32
  %p = tensor.pad %x low[0, 0, 1, 1] high[0, 0, 1, 1] {{
  ^bb0(%i0: index, %i1: index, %i2: index, %i3: index):
    tensor.yield %zero : f32
  }} : {x_t} to {p_t}
  %w = arith.constant dense<"0x{hexw}"> : tensor<{f}x{c}x3x3xf32>
  %e = tensor.empty() : {o_t}
  %z = linalg.fill ins(%zero : f32) outs(%e : {o_t}) -> {o_t}
  %y = linalg.conv_2d_nchw_fchw {{dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}}
       ins(%p, %w : {p_t}, tensor<{f}x{c}x3x3xf32>) outs(%z : {o_t}) -> {o_t}
  return %y : {o_t}
}}
"""


def build(out_dir: Path, layers: list | None = None) -> list[dict]:
    """Compiles every module once; returns per-layer records naming the vmfb files."""
    import iree.compiler as ic

    from spattern.patterns import all_masks
    from spattern.passes.lower_to_microkernels import pack_pruned_conv
    from spattern.microkernels.microkernel_dispatch import (materialize_microkernels, single_conv_module,
                                                            text_to_bytecode)

    rng = np.random.default_rng(0)
    records = []
    for c, hw in layers or LAYERS:
        shape = (1, c, hw, hw)
        library = rng.choice(56, 8, replace=False)
        pid = rng.choice(library, (c, c))
        dense_w = rng.standard_normal((c, c, 3, 3)).astype(np.float32)
        rec = {"c": c, "hw": hw, "dense_macs": 9 * c * c * hw * hw, "sparse": []}
        path = out_dir / f"dense_{c}_{hw}.vmfb"
        path.write_bytes(ic.compile_str(dense_module(dense_w, shape), target_backends=["llvm-cpu"],
                                        extra_args=DENSE_FLAGS))
        rec["dense"] = str(path)
        for r in CONNECTIVITY:
            kept = rng.random((c, c)) >= r
            w = dense_w * all_masks()[pid] * kept[:, :, None, None]
            packed = pack_pruned_conv(w, pid, kept, None, shape)
            bc = materialize_microkernels(text_to_bytecode(single_conv_module(packed)), "host")
            path = out_dir / f"sparse_{c}_{hw}_{r}.vmfb"
            path.write_bytes(ic.compile_str(bc, target_backends=["llvm-cpu"],
                                            extra_args=["--iree-llvmcpu-target-cpu=host"]))
            rec["sparse"].append({"r": r, "vmfb": str(path), "useful_macs": packed.useful_macs()})
        records.append(rec)
        print(f"compiled {c}ch {hw}x{hw}", file=sys.stderr, flush=True)
    return records


def measure(records: list[dict], threads: int, rounds: int, sync: bool = False) -> list[dict]:
    """Loads every module on a local-task device with `threads` workers and times them in alternating rounds
    (wall time); sync: on local-sync instead, timed with the calling thread's CPU time (threads reported as 1)."""
    import iree.runtime as rt

    if sync:
        config, clock, threads = rt.Config("local-sync"), time.thread_time, 1
    else:
        rt.flags.parse_flags(f"--task_topology_max_group_count={threads}")
        config, clock = rt.Config("local-task"), time.perf_counter
    results = []
    for rec in records:
        x = np.random.default_rng(1).standard_normal((1, rec["c"], rec["hw"], rec["hw"])).astype(np.float32)
        fns = {}
        for key, vmfb in [("dense", rec["dense"])] + [(f"r{s['r']}", s["vmfb"]) for s in rec["sparse"]]:
            ctx = rt.SystemContext(config=config)
            ctx.add_vm_module(rt.VmModule.copy_buffer(ctx.instance, Path(vmfb).read_bytes()))
            fns[key] = ctx.modules.module.main
        xd = rt.asdevicearray(config.device, x)
        times = {k: [] for k in fns}
        for fn in fns.values():
            fn(xd)
        reps = max(1, int(0.03 / max(1e-4, _once(fns["dense"], xd, clock))))
        for _ in range(rounds):
            for k, fn in fns.items():
                t = clock()
                for _ in range(reps):
                    out = fn(xd)
                out.to_host()
                times[k].append((clock() - t) / reps)
        results.append({**rec, "threads": threads, "t": {k: float(np.median(v)) for k, v in times.items()}})
    return results


def _once(fn, x, clock=time.perf_counter) -> float:
    t = clock()
    fn(x).to_host()
    return clock() - t


def report(results: list[dict]) -> None:
    print("| layer | threads | dense ms (GFLOP/s) | r=0 ratio (limit) | r=0 useful GFLOP/s | r=0.5 ratio (limit) "
          "| r=0.5 useful GFLOP/s |")
    print("|---|---|---|---|---|---|---|")
    for res in results:
        td = res["t"]["dense"]
        row = [f"{res['c']}ch {res['hw']}x{res['hw']}", str(res["threads"]),
               f"{td * 1e3:.2f} ({2 * res['dense_macs'] / td / 1e9:.0f})"]
        for s in res["sparse"]:
            ts = res["t"][f"r{s['r']}"]
            limit = res["dense_macs"] / s["useful_macs"]
            row += [f"{td / ts:.2f}x ({limit:.2f}x)", f"{2 * s['useful_macs'] / ts / 1e9:.0f}"]
        print("| " + " | ".join(row) + " |", flush=True)


_HARNESS = r"""
#include <stddef.h>
void spattern_pattern_conv(const float *, const float *, size_t, size_t, size_t, const float *, const float *,
                           size_t, size_t, size_t, const int *, const int *, size_t, size_t, size_t, const float *,
                           const float *, size_t, size_t, size_t, float *, float *, size_t, size_t, size_t, size_t);
__attribute__((visibility("default"))) void spk_bench_all(const float *in, size_t inn, const float *w, size_t wn,
                                                          const int *t, size_t tn, float *o, size_t on, size_t nwg) {
  for (size_t g = 0; g < nwg; ++g)
    spattern_pattern_conv(in, in, 0, inn, 1, w, w, 0, wn, 1, t, t, 0, tn, 1, w, w, 0, wn, 1, o, o, 0, on, 1, g);
}
"""


def cpu_time(rounds: int, npat: int, layers: list | None = None) -> None:
    """One core, thread CPU time: the host object vs torch's dense conv (see the module docstring)."""
    import ctypes

    import torch

    from spattern.patterns import all_masks
    from spattern.microkernels.kernels import kernel_object
    from spattern.passes.lower_to_microkernels import pack_pruned_conv
    from spattern.microkernels.microkernel_abi import pad_input

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="spattern-mkbench-"))
    (tmp / "h.c").write_text(_HARNESS)
    subprocess.run(["clang", "-O2", "-fPIC", "-c", str(tmp / "h.c"), "-o", str(tmp / "h.o")], check=True)
    ko = kernel_object("host")
    subprocess.run(["clang", "-shared", "-nostdlib", "-fuse-ld=lld", str(ko.path), str(tmp / "h.o"), "-o",
                    str(tmp / "k.so")], check=True)
    fn = ctypes.CDLL(str(tmp / "k.so")).spk_bench_all
    v, n = ctypes.c_void_p, ctypes.c_size_t
    fn.argtypes = [v, n, v, n, v, n, v, n, n]
    rng = np.random.default_rng(0)
    print(f"one core, thread CPU time, {npat} patterns per layer (per-kernel), kernel object {ko.isa}; dense = "
          "torch conv2d channels_last, 1 thread")
    print("| layer | dense GFLOP/s | r=0 useful GFLOP/s | r=0 ratio (limit) | r=0.5 useful GFLOP/s "
          "| r=0.5 ratio (limit) |")
    print("|---|---|---|---|---|---|")
    for c, hw in layers or LAYERS_CPU:
        x = rng.standard_normal((1, c, hw, hw)).astype(np.float32)
        dense_w = rng.standard_normal((c, c, 3, 3)).astype(np.float32)
        pid = rng.choice(rng.choice(56, npat, replace=False), (c, c))
        xt = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
        wt = torch.from_numpy(dense_w).contiguous(memory_format=torch.channels_last)
        calls = {"dense": lambda: torch.nn.functional.conv2d(xt, wt, padding=1)}
        macs, keep = {}, []
        for r in CONNECTIVITY:
            kept = rng.random((c, c)) >= r
            w = dense_w * all_masks()[pid] * kept[:, :, None, None]
            p = pack_pruned_conv(w, pid, kept, None, x.shape)
            xp, out = pad_input(x, p), np.empty(p.out_shape, np.float32)
            keep.append((p, xp, out))  # the C loop gets raw pointers: keep the arrays alive
            args = (xp.ctypes.data, xp.size, p.weights.ctypes.data, p.weights.size, p.table.ctypes.data,
                    p.table.size, out.ctypes.data, out.size, p.workgroups)
            fn(*args)
            ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).numpy()
            if np.abs(out - ref).max() > 1e-4 * np.abs(ref).max():
                raise SystemExit(f"{c}ch {hw}x{hw} r={r}: kernel output differs from torch")
            calls[r] = (lambda f, a: lambda: f(*a))(fn, args)
            macs[r] = p.useful_macs()

        def cpu(f, reps):
            t = time.thread_time()
            for _ in range(reps):
                f()
            return (time.thread_time() - t) / reps

        calls["dense"]()
        reps = max(1, int(0.05 / max(1e-5, cpu(calls["dense"], 1))))
        times = {k: [] for k in calls}
        for _ in range(rounds):
            for k, f in calls.items():
                times[k].append(cpu(f, reps))
        td = float(np.median(times["dense"]))
        dense_macs = 9 * c * c * hw * hw
        row = [f"{c}ch {hw}x{hw}", f"{2 * dense_macs / td / 1e9:.0f}"]
        for r in CONNECTIVITY:
            ts = float(np.median(times[r]))
            row += [f"{2 * macs[r] / ts / 1e9:.0f}", f"{td / ts:.2f}x ({dense_macs / macs[r]:.2f}x)"]
        print("| " + " | ".join(row) + " |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--cpu-time", action="store_true",
                        help="one core, thread CPU time, host object vs torch dense (kernel tuning; no IREE)")
    parser.add_argument("--layers", default="", help="layers, e.g. 64x56,512x14 (default: LAYERS, or LAYERS_CPU "
                        "with --cpu-time)")
    parser.add_argument("--sync", action="store_true",
                        help="IREE local-sync device, thread CPU time, one thread (see the module docstring)")
    parser.add_argument("--patterns", type=int, default=12, help="distinct patterns per layer (--cpu-time)")
    parser.add_argument("--_measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    layers = [tuple(map(int, t.split('x'))) for t in args.layers.split(',') if t] or None
    if args.cpu_time:
        cpu_time(args.rounds, args.patterns, layers)
        return 0
    if args._measure:  # child: one thread count per process (the task topology is fixed per process)
        records = json.loads(Path(args._measure).read_text())
        print(json.dumps(measure(records, args.threads[0], args.rounds, args.sync)))
        return 0
    with tempfile.TemporaryDirectory(prefix="spattern-bench-") as tmp:
        records = build(Path(tmp), layers)
        spec = Path(tmp) / "records.json"
        spec.write_text(json.dumps(records))
        results = []
        for threads in [1] if args.sync else args.threads:
            out = subprocess.run([sys.executable, __file__, "--_measure", str(spec), "--threads", str(threads),
                                  "--rounds", str(args.rounds)] + ["--sync"] * args.sync,
                                 capture_output=True, text=True, check=True)
            results += json.loads(out.stdout)
        report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
