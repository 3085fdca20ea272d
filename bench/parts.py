"""Where the time goes outside the pattern convs: the parts of VGG-16 and ResNet that IREE compiles itself, each
compiled alone and timed in IREE (spattern's dense path), ONNX Runtime and torch; IREE flag variants on them; and
per-dispatch profiles and flag variants of the whole pattern-pruned models.

    .venv/bin/python bench/parts.py              # parts table + in-model profiles -> bench/results/parts-224.txt
    .venv/bin/python bench/parts.py --parts resnet_stem,vgg_classifier --variants current,no_dt,im2col
    .venv/bin/python bench/parts.py --whole resnet18,resnet50 --variants current,no_dt     # whole models, wall
    .venv/bin/python bench/parts.py --whole resnet50 --dense --variants current,no_dt      # dense model
    .venv/bin/python bench/parts.py --profile resnet50 --variants current,im2col           # per dispatch

Every engine (and every IREE flag variant) of one part or model is timed in the same process in alternating
rounds (spattern.timing.interleaved; the order rotates each round); a sample is the mean of `--inner` calls, a
time is the median over rounds. 2 threads everywhere, no spinning worker pools (as in bench/peers.py). Every
output is compared with torch's: max abs error / max |torch| (the table's last column; 1e-4 is the bar).
--profile uses IREE's HAL profiler (iree-benchmark-module --device_profiling_mode=host-execution) and reports per
dispatch the minimum over calls, which is far less sensitive to the other tenants of a shared machine than wall
time. Whole models get random pattern plans (spattern.testing.random_plan_for, filter block 1, no connectivity
pruning) and random BatchNorm statistics.

The parts (batch 1, 224x224 models):
- vgg_classifier: VGG-16's Linear 25088->4096->4096->1000 (+ReLU) on [1, 25088] (123M weights, memory-bound).
- resnet_stem: ResNet-18's conv 7x7/2 + BN + ReLU + maxpool 3x3/2 on [1, 3, 224, 224]; resnet_conv1 and
  resnet_maxpool: the same split in two.
- resnet_down{2,3,4}: the 1x1 stride-2 downsample conv + BN of layer2/3/4 on that stage's input.
- resnet50_1x1: a ResNet-50 1x1 stride-1 conv (128 -> 512) + BN on [1, 128, 28, 28].
- resnet_head: avgpool + flatten + fc 512->1000 on [1, 512, 7, 7].
- resnet_add_relu: a residual add + ReLU on two [1, 64, 56, 56] tensors (the largest of ResNet-18's).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (see bench/peers.py)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from spattern import models  # noqa: E402
from spattern.runtime.compiler import compile_bytecode  # noqa: E402
from spattern.runtime.module import CompiledModel  # noqa: E402
from spattern.runtime.targets import CHANNELS_LAST_PREPROCESSING, Target, get_target  # noqa: E402

# the host flags before data tiling went in (spattern/runtime/targets.py DATA_TILING_MMT4D)
_DT = ("--iree-opt-data-tiling", "--iree-llvmcpu-enable-ukernels=mmt4d")
from spattern.timing import interleaved  # noqa: E402

THREADS = 2
TOL = 1e-4

# IREE flag variants: flags added to ("!flag": taken from) the host target's current flags.
VARIANTS: dict[str, tuple[str, ...]] = {
    "current": (),
    "no_dt": tuple("!" + f for f in _DT),
    "no_cl": ("!" + CHANNELS_LAST_PREPROCESSING,),  # "!flag": remove it
    "dt": ("--iree-opt-data-tiling",),
    "dt_uk": ("--iree-opt-data-tiling", "--iree-llvmcpu-enable-ukernels=mmt4d"),
    "dt_ukall": ("--iree-opt-data-tiling", "--iree-llvmcpu-enable-ukernels=all"),
    "uk": ("--iree-llvmcpu-enable-ukernels=mmt4d",),
    "O3": ("--iree-opt-level=O3",),
    "im2col": ("--iree-global-opt-use-im2col-for-convs",),
    "aggr_fusion": ("--iree-dispatch-creation-enable-aggressive-fusion",),
    "prop_tr": ("--iree-opt-aggressively-propagate-transposes",),
    "pad_consumer": ("--iree-dispatch-creation-enable-fuse-padding-into-linalg-consumer-ops",),
    "split_red": ("--iree-dispatch-creation-enable-split-reduction",),
    "reassoc": ("--iree-llvmcpu-reassociate-fp-reductions",),
    "no_prop": ("--iree-global-opt-propagate-transposes=false",),
    "sink_pad": ("--iree-global-opt-enable-sink-transpose-through-pad",),
    "prop_conv": ("--iree-global-opt-propagate-transposes-through-conv",),
    "fast_minmax": ("--iree-llvmcpu-use-fast-min-max-ops",),
    "dt_conv": ("--iree-opt-data-tiling", "--iree-dispatch-creation-experimental-set-data-tiling-ops=matmul,convolution"),
    "dt_conv_uk": ("--iree-opt-data-tiling", "--iree-dispatch-creation-experimental-set-data-tiling-ops=matmul,convolution",
                   "--iree-llvmcpu-enable-ukernels=mmt4d"),
    **{f"cl{t}": ("!" + CHANNELS_LAST_PREPROCESSING, CHANNELS_LAST_PREPROCESSING.replace(
        "channels-last)", f"channels-last{{tiling-factor={t}}})")) for t in (8, 16, 32, 64)},
    "c1x1": ("!" + CHANNELS_LAST_PREPROCESSING, CHANNELS_LAST_PREPROCESSING.replace(
        "util.func(", "util.func(iree-preprocessing-convert-1x1-filter-conv2d-to-matmul,")),
    "cl_1x1": ("!" + CHANNELS_LAST_PREPROCESSING, CHANNELS_LAST_PREPROCESSING.replace(
        "channels-last)", "channels-last,iree-preprocessing-convert-1x1-filter-conv2d-to-matmul)")),
    "im2col_dt": ("--iree-global-opt-use-im2col-for-convs", "--iree-opt-data-tiling"),
    "im2col_dt_uk": ("--iree-global-opt-use-im2col-for-convs", "--iree-opt-data-tiling",
                     "--iree-llvmcpu-enable-ukernels=mmt4d"),
    "pproc_mask": ("--iree-llvmcpu-vector-pproc-strategy=mask",),
    "pproc_none": ("--iree-llvmcpu-vector-pproc-strategy=none",),
    "no_peel": ("--iree-llvmcpu-disable-vector-peeling",),
    "transpose_mm": ("!" + CHANNELS_LAST_PREPROCESSING, CHANNELS_LAST_PREPROCESSING.replace(
        "channels-last)", "channels-last,iree-preprocessing-transpose-matmul-pass)")),
    "block_prod": ("--iree-dispatch-creation-block-matmul-producer-fusion",),
    "no_multi_use": ("--iree-dispatch-creation-fuse-multi-use=false",),
    "vec64": ("--iree-llvmcpu-target-vector-width-in-bytes=64",),
    "vec32": ("--iree-llvmcpu-target-vector-width-in-bytes=32",),
}


def variant_target(name: str) -> Target:
    base = get_target("host")
    flags = list(base.dense_extra_flags)
    for f in VARIANTS[name]:
        if f.startswith("!"):
            if f[1:] in flags:
                flags.remove(f[1:])
        elif f not in flags:
            flags.append(f)
    return dataclasses.replace(base, dense_extra_flags=tuple(flags))


# --- parts ---------------------------------------------------------------------------------------------------------
class Stem(nn.Module):
    def __init__(self, r: nn.Module):
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = r.conv1, r.bn1, r.relu, r.maxpool

    def forward(self, x):
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))


class Head(nn.Module):
    def __init__(self, r: nn.Module):
        super().__init__()
        self.avgpool, self.fc = r.avgpool, r.fc

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(x), 1))


class AddRelu(nn.Module):
    def forward(self, a, b):
        return torch.relu(a + b)


def _randomize_bn(m: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            n = mod.num_features
            mod.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return m.eval()


def build_parts() -> dict[str, Callable[[], tuple[nn.Module, tuple[torch.Tensor, ...]]]]:
    torch.manual_seed(0)

    def resnet():
        return _randomize_bn(models.build("resnet18", num_classes=1000, image_size=224))

    def vgg_classifier():
        v = models.build("vgg16_bn", num_classes=1000, image_size=224).eval()
        return v.classifier, (torch.randn(1, 25088),)

    def down(layer: str, c: int, hw: int):
        def make():
            return getattr(resnet(), layer)[0].downsample, (torch.randn(1, c, hw, hw),)
        return make

    return {
        "vgg_classifier": vgg_classifier,
        "resnet_stem": lambda: (Stem(resnet()), (torch.randn(1, 3, 224, 224),)),
        "resnet_conv1": lambda: (nn.Sequential(*list(Stem(resnet()).children())[:3]), (torch.randn(1, 3, 224, 224),)),
        "resnet_maxpool": lambda: (nn.MaxPool2d(3, 2, 1), (torch.randn(1, 64, 112, 112),)),
        "resnet_down2": down("layer2", 64, 56),
        "resnet_down3": down("layer3", 128, 28),
        "resnet_down4": down("layer4", 256, 14),
        "resnet50_1x1": lambda: (nn.Sequential(_randomize_bn(models.build("resnet50", num_classes=1000, image_size=224))
                                               .layer2[1].conv3, nn.BatchNorm2d(512)).eval(),
                                 (torch.randn(1, 128, 28, 28),)),
        "resnet_head": lambda: (Head(resnet()), (torch.randn(1, 512, 7, 7),)),
        "resnet_add_relu": lambda: (AddRelu(), (torch.randn(1, 64, 56, 56), torch.randn(1, 64, 56, 56))),
    }


# --- engines -------------------------------------------------------------------------------------------------------
def export_bytecode(model: nn.Module, xs: tuple[torch.Tensor, ...], plan=None) -> bytes:
    from spattern.pipeline import new_state, run_pipeline

    state = new_state(model, list(xs), get_target("host"), plan=plan, passes=None, lowering="auto", dump_dir=None)
    run_pipeline(state, stop_after="finalize")
    return state.bytecode


def iree_engine(bytecode: bytes, variant: str, xs) -> Callable[[], np.ndarray]:
    vmfb = compile_bytecode(bytecode, variant_target(variant), dense_best=True)
    cm = CompiledModel(vmfb=vmfb, target=variant_target(variant), threads=THREADS)
    arrays = [x.numpy() for x in xs]
    cm.run(*arrays)
    return lambda: cm.run(*arrays)[0]


def ort_engine(model: nn.Module, xs) -> Callable[[], np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    with tempfile.TemporaryDirectory(prefix="parts-onnx-") as tmp:  # the session holds the weights
        path = Path(tmp) / "model.onnx"
        torch.onnx.export(model, tuple(xs), str(path), dynamo=True, opset_version=18, external_data=True,
                          verbose=False)
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feeds = {i.name: x.numpy() for i, x in zip(sess.get_inputs(), xs)}
    return lambda: sess.run(None, feeds)[0]


def torch_engine(model: nn.Module, xs) -> Callable[[], np.ndarray]:
    def call():
        with torch.no_grad():
            return model(*xs).numpy()
    return call


def rel_err(out: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-30))


def time_engines(engines: dict[str, Callable[[], np.ndarray]], ref: np.ndarray, rounds: int,
                 inner: int) -> dict[str, tuple[float, float, float]]:
    """name -> (median ms, spread, rel err)."""
    errs = {k: rel_err(np.asarray(fn()), ref) for k, fn in engines.items()}
    t = interleaved(engines, rounds=rounds, warmup=2, inner=inner)
    return {k: (t[k].median_ms, t[k].spread, errs[k]) for k in engines}


def _inner_for(fn: Callable[[], object]) -> int:
    t0 = time.perf_counter()
    fn()
    dt = time.perf_counter() - t0
    return max(1, min(20, int(0.02 / max(dt, 1e-6))))


def run_part(name: str, make, variants: list[str], peers: bool, rounds: int, log, inner: int = 0) -> dict:
    model, xs = make()
    model = model.eval()
    with torch.no_grad():
        ref = model(*xs).numpy().copy()
    bc = export_bytecode(model, xs)
    engines: dict[str, Callable[[], np.ndarray]] = {}
    for v in variants:
        try:
            engines[f"iree:{v}"] = iree_engine(bc, v, xs)
        except Exception as e:  # a variant that does not compile is reported, not fatal
            log(f"  {name} {v}: FAILED {str(e).splitlines()[0][:160]}")
    if peers:
        engines["ort"] = ort_engine(copy.deepcopy(model), xs)
        torch.set_num_threads(THREADS)
        engines["torch"] = torch_engine(model, xs)
    inner = inner or _inner_for(next(iter(engines.values())))
    res = time_engines(engines, ref, rounds, inner)
    log(f"{name} ({inner} calls/sample): " + ", ".join(f"{k} {m:.3f} ms ({s:.0%}) err {e:.1e}"
                                                       for k, (m, s, e) in res.items()))
    del engines
    gc.collect()
    return res


def _whole_model(name: str, dense: bool):
    """A zoo model at 224 with random BN statistics, pruned by a random per-kernel pattern plan (or dense), and
    its input."""
    from spattern.testing import random_plan_for

    torch.manual_seed(0)
    model = _randomize_bn(models.build(name, num_classes=1000, image_size=224))
    pruned, plan = random_plan_for(model, filter_block=1, connectivity=0.0, seed=0)
    if dense:
        pruned, plan = model, None
    return pruned, plan, torch.randn(1, 3, 224, 224)


def run_whole(name: str, variants: list[str], rounds: int, log, dense: bool = False) -> dict:
    pruned, plan, x = _whole_model(name, dense)
    with torch.no_grad():
        ref = pruned(x).numpy().copy()
    bc = export_bytecode(pruned, (x,), plan=plan)
    engines = {}
    for v in variants:
        try:
            engines[f"iree:{v}"] = iree_engine(bc, v, (x,))
        except Exception as e:
            log(f"  {name} {v}: FAILED {str(e).splitlines()[0][:160]}")
    res = time_engines(engines, ref, rounds, 1)
    base = res[f"iree:{variants[0]}"][0]
    log(f"{name} {'dense' if dense else 'patterns'}: " + ", ".join(
        f"{k} {m:.2f} ms ({s:.0%}, x{base / m:.2f}) err {e:.1e}" for k, (m, s, e) in res.items()))
    return res


def _tool(name: str) -> str:
    import iree._runtime_libs as libs

    return str(Path(libs.__file__).parent / name)


def profile_vmfb(vmfb: bytes, x: np.ndarray, min_time_s: float = 2.0) -> dict[str, tuple[float, float]]:
    """Per-dispatch host execution time of one call, from IREE's HAL profiler (iree-benchmark-module with
    --device_profiling_mode=host-execution): function name -> (min us, mean us) per model call (a dispatch
    called k times per model call counts k times). The min is robust to the other tenants of a shared machine."""
    import json
    import subprocess

    with tempfile.TemporaryDirectory(prefix="parts-prof-") as tmp:
        t = Path(tmp)
        (t / "m.vmfb").write_bytes(vmfb)
        np.save(t / "x.npy", x)
        subprocess.run([_tool("iree-benchmark-module"), f"--module={t / 'm.vmfb'}", "--device=local-task",
                        f"--task_topology_max_group_count={THREADS}", "--function=main", f"--input=@{t / 'x.npy'}",
                        f"--benchmark_min_time={min_time_s}", "--device_profiling_mode=host-execution",
                        f"--device_profiling_output={t / 'p.ireeprof'}"], check=True, capture_output=True)
        out = subprocess.run([_tool("iree-profile"), "statistics", "--format=jsonl", str(t / "p.ireeprof")],
                             check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    fns = [r for r in rows if r.get("row_type") == "host_execution_function"]
    calls = min(r["sample_count"] for r in fns)  # every dispatch runs at least once per model call
    return {r["function_name"]: (r["minimum_duration_ns"] * r["sample_count"] / calls / 1e3,
                                 r["total_duration_ns"] / calls / 1e3) for r in fns}


def run_profile(name: str, variants: list[str], log, top: int = 14, dense: bool = False) -> None:
    """`name`: a zoo model (pattern-pruned, with its plan) or one of the parts (dense)."""
    parts = build_parts()
    if name in parts:
        model, xs = parts[name]()
        bc, x, what = export_bytecode(model.eval(), xs), xs[0], "dense part"
    else:
        pruned, plan, x = _whole_model(name, dense)
        bc, what = export_bytecode(pruned, (x,), plan=plan), "dense" if dense else "patterns"
    for v in variants:
        try:
            vmfb = compile_bytecode(bc, variant_target(v), dense_best=True)
        except Exception as e:
            log(f"{name} {v}: FAILED {str(e).splitlines()[0][:160]}")
            continue
        prof = profile_vmfb(vmfb, x.numpy())
        mk = sum(m for k, (m, _) in prof.items() if k.startswith("spattern_mk"))
        total = sum(m for m, _ in prof.values())
        log(f"{name} {what}, {v}: sum of per-dispatch minima {total / 1e3:.3f} ms = microkernels {mk / 1e3:.3f} "
            f"+ IREE's own dispatches {(total - mk) / 1e3:.3f}")
        for k, (m, mean) in sorted(prof.items(), key=lambda kv: -kv[1][0])[:top]:
            if not k.startswith("spattern_mk"):
                log(f"    {k[:64]:64s} min {m:9.1f} us  mean {mean:9.1f} us")


def format_table(results: dict[str, dict], variants: list[str]) -> str:
    cols = [f"iree:{v}" for v in variants] + ["ort", "torch"]
    lines = ["part".ljust(16) + "".join(c.rjust(16) for c in cols) + "   iree/ort  max rel err"]
    for part, res in results.items():
        row = part.ljust(16)
        for c in cols:
            row += (f"{res[c][0]:.3f}" if c in res else "-").rjust(16)
        first = f"iree:{variants[0]}"
        ratio = res[first][0] / res["ort"][0] if first in res and "ort" in res else float("nan")
        err = max(e for _, _, e in res.values())
        lines.append(row + f"   {ratio:8.2f}  {err:.1e}")
    return "\n".join(lines)


DEFAULT_VARIANTS = "current,no_dt"
PROFILED_MODELS = "resnet18,vgg16_bn"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", default="all")
    ap.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"IREE flag variants: {', '.join(VARIANTS)}")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--inner", type=int, default=0, help="calls per sample (0: enough for ~20 ms)")
    ap.add_argument("--profile", default="", help="comma list of zoo models or parts: per-dispatch profile only")
    ap.add_argument("--whole", default="", help="comma list of zoo models to time whole (pattern plan) only")
    ap.add_argument("--dense", action="store_true", help="--whole / --profile: the dense model (no plan)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "parts-224.txt"))
    a = ap.parse_args()
    torch.set_num_threads(THREADS)
    variants = a.variants.split(",")
    lines: list[str] = []

    def log(s: str) -> None:
        print(s, flush=True)
        lines.append(s)

    if a.profile:
        for m in a.profile.split(","):
            run_profile(m, variants, log, dense=a.dense)
        return
    if a.whole:
        for m in a.whole.split(","):
            run_whole(m, variants, a.rounds, log, dense=a.dense)
        return
    default_run = a.variants == DEFAULT_VARIANTS and a.parts == "all" and not a.no_peers
    parts = build_parts()
    names = list(parts) if a.parts == "all" else a.parts.split(",")
    load0 = os.getloadavg()[0]
    results = {n: run_part(n, parts[n], variants, not a.no_peers, a.rounds, log, a.inner) for n in names}
    table = format_table(results, variants)
    print(table)
    if not (a.out and default_run):
        return
    # Where the time goes inside the whole pattern-pruned models (the parts above are compiled alone, so their
    # layouts differ: e.g. a lone 1x1 stride-2 conv on an NCHW input is far slower than inside ResNet-18).
    prof_lines: list[str] = []

    def plog(s: str) -> None:
        print(s, flush=True)
        prof_lines.append(s)

    for m in PROFILED_MODELS.split(","):
        run_profile(m, ["current"], plog, top=24)
    head = (f"bench/parts.py: the parts IREE compiles itself, each compiled alone: IREE (spattern's host target "
            f"flags: 'current'; 'no_dt' = without data tiling) vs ONNX Runtime vs torch, ms per call, {THREADS} "
            f"threads, {a.rounds} interleaved rounds (median). Load average {load0:.1f} -> "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: only ratios within a row mean anything.\n")
    prof_head = ("\nInside the whole models with random pattern plans (filter block 1, no connectivity pruning), "
                 "current flags: per-dispatch host execution time from IREE's HAL profiler (min over calls, summed "
                 "per model call; concurrent dispatches overlap, so the sum can exceed the wall time):\n")
    Path(a.out).write_text(head + table + "\n" + prof_head + "\n".join(prof_lines) + "\n\nlog:\n"
                           + "\n".join(lines) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
