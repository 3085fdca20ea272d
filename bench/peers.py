"""spattern against what users pick instead: torch, dense IREE, ONNX Runtime, TVM, LiteRT.

    .venv/bin/python bench/peers.py --models resnet18,vgg16_bn --out peers.json
    .venv/bin/python bench/peers.py --quick --models resnet18 --engines torch,onnxruntime,iree

Every model at 224x224, batch 1, 2 threads for every engine. All engines of one model are timed in the same run,
in alternating rounds (the engine order rotates each round, with a pause between engines so that spinning worker
threads of the previous engine go idle): the machine is shared and noisy, so only ratios measured side by side
mean anything. Each round gives one sample per engine (the median of `--reps` calls); an engine's time is the
median over rounds, its spread the min..max over rounds, and a ratio is the median (min..max) of the per-round
ratios. Every engine's output is compared with PyTorch's on the same input (the pruned torch model for the
spattern engines): max abs error / max |reference|.

Peers and how each is run (nothing is tuned for us and nothing is detuned for them):
- torch: eager fp32, NCHW, and channels_last (`torch_cl`), torch.set_num_threads(2), OMP_WAIT_POLICY=PASSIVE.
- iree: `spattern.compile(model, x, target="host", threads=2)`, i.e. `--iree-llvmcpu-target-cpu=host` plus the
  channels-last preprocessing pipeline (the best dense flags found, see DESIGN.md "Measured so far").
- onnxruntime: torch.onnx.export(dynamo=True, opset 18), CPU execution provider, intra_op_num_threads=2,
  all graph optimisations, intra-op spinning off.
Busy-waiting worker pools are turned off (torch, ONNX Runtime) because on a machine with more runnable threads than
cores they collapse (torch ResNet-18: 2 s instead of 0.1 s); SPATTERN_BENCH_SPIN=1 keeps each engine's default,
for a quiet machine. IREE's task workers and LiteRT's pool keep their defaults either way.
- tvm: Relax from the torch ExportedProgram, `tvm.compile` for llvm with this CPU's -mcpu, TVM_NUM_THREADS=2,
  UNTUNED (MetaSchedule tuning takes ~30 CPU-minutes per model, which a shared machine cannot give). Untuned
  TVM needs about 1 s per GMAC here, so models over --tvm-max-gmac are skipped with that reason.
- litert: litert-torch (the PyPI successor of ai-edge-torch) converts to .tflite, ai-edge-litert runs it with
  its default XNNPACK delegate, num_threads=2. It is loaded from a side folder (bench/setup_litert.sh) because
  litert-torch pulls xdsl 0.28, which pins typing-extensions<4.13 and would downgrade the main environment.
- spattern_p / spattern_c0.5: the model pruned to per-kernel patterns (filter block 1), without and with 50%
  connectivity pruning, compiled with its plan. Speed does not depend on the weights' values, so the bench
  prunes by magnitude projection (no synthetic data, seconds instead of minutes); accuracy is bench/accuracy.py's
  job. If the sparse compile path is missing (ImportError / NotImplementedError) these columns say so.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("TVM_NUM_THREADS", "2")  # read when TVM's thread pool starts: before any tvm import
# Worker threads that busy-wait (torch's OpenMP pool, ONNX Runtime's intra-op pool) collapse when there are more
# runnable threads than cores (a shared machine): ResNet-18 in torch took 2 s instead of 0.1 s here. So by default
# no engine spins; SPATTERN_BENCH_SPIN=1 lets them (each engine's own default) on a quiet machine. OpenMP reads
# its policy when torch loads, so this is decided here, before the import.
SPIN = os.environ.get("SPATTERN_BENCH_SPIN", "0") == "1"
if not SPIN:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from spattern import models  # noqa: E402
from spattern.report import layer_table, totals  # noqa: E402

MODELS = ["vgg16_bn", "resnet18", "resnet50", "mobilenet_v2"]
DENSE_ENGINES = ["torch", "torch_cl", "iree", "onnxruntime", "tvm", "litert"]
SPATTERN_ENGINES = ["spattern_p", "spattern_c0.5"]
ENGINES = DENSE_ENGINES + SPATTERN_ENGINES
OURS = ["iree", *SPATTERN_ENGINES]  # rows of the ratio table: what we ship, dense and pruned
LITERT_DIR = Path(os.environ.get("SPATTERN_LITERT_DIR", REPO / ".cache" / "bench-litert"))
NUMERICS_TOL = 1e-3  # max abs error / max |reference|
SLOW_CALL_S = 0.5  # an engine slower than this per call is called once per round (the round count is the same)


class Skip(Exception):
    """An engine that cannot run this model here; the message is the reason printed in the table."""


@dataclass
class Runner:
    call: Callable[[], np.ndarray]
    reference: np.ndarray  # torch's output for the model this engine runs
    note: str = ""
    mac_limit: float | None = None
    reps: int = 0  # calls per round; set from the warm call time (slow engines: 1)


@dataclass
class EngineResult:
    status: str  # "ok", "skipped", "failed"
    reason: str = ""
    note: str = ""
    setup_s: float = 0.0
    rounds_ms: list[float] = field(default_factory=list)
    median_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    max_abs_err: float | None = None
    rel_err: float | None = None
    numerics_ok: bool | None = None
    mac_limit: float | None = None
    calls_per_round: int | None = None


@dataclass
class Settings:
    threads: int = 2
    rounds: int = 9
    reps: int = 3
    warmup: int = 2
    pause_s: float = 0.05
    image_size: int = 224
    tvm_max_gmac: float = 3.0
    max_call_s: float = 3.0
    lowering: str = "auto"  # spattern engines: "auto" (microkernels on CPU when built), "microkernels", "linalg"
    filter_block: int = 1  # spattern engines: 1 = per-kernel patterns (microkernels); >= 64 suits "linalg"


# --- engines ---------------------------------------------------------------------------------------------------
def _torch_out(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(x).detach().numpy().copy()


def engine_torch(model, x, ref, s: Settings) -> Runner:
    def call():
        with torch.no_grad():
            return model(x).numpy()
    return Runner(call, ref, "eager fp32 NCHW")


def engine_torch_cl(model, x, ref, s: Settings) -> Runner:
    m = copy.deepcopy(model).to(memory_format=torch.channels_last)
    xc = x.contiguous(memory_format=torch.channels_last)

    def call():
        with torch.no_grad():
            return m(xc).numpy()
    return Runner(call, ref, "eager fp32 channels_last")


def engine_iree(model, x, ref, s: Settings) -> Runner:
    import spattern

    compiled = spattern.compile(model, x, target="host", threads=s.threads)
    xn = x.numpy()
    return Runner(lambda: compiled.run(xn)[0], ref, "host cpu + channels-last preprocessing")


def engine_onnxruntime(model, x, ref, s: Settings) -> Runner:
    try:
        import onnxruntime as ort
    except ImportError:
        raise Skip("onnxruntime not installed (pip install -e .[bench])") from None
    path = Path(tempfile.mkdtemp(prefix="peers-onnx-")) / "model.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=True, opset_version=18, external_data=True)
    so = ort.SessionOptions()
    so.intra_op_num_threads = s.threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not SPIN:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    xn = x.numpy()
    spin = "" if SPIN else ", no spinning"
    return Runner(lambda: sess.run(None, {name: xn})[0], ref,
                  f"{ort.__version__}, CPU EP, dynamo export opset 18{spin}")


def engine_tvm(model, x, ref, s: Settings) -> Runner:
    gmac = _gmacs(model, x)
    if gmac > s.tvm_max_gmac:
        raise Skip(f"untuned TVM takes ~1 s per GMAC here (ResNet-18, 1.8 GMAC: 1.6 s); this model has {gmac:.1f} "
                   f"GMAC (> --tvm-max-gmac {s.tvm_max_gmac})")
    try:
        import tvm
        from tvm import relax
        from tvm.relax.frontend.torch import from_exported_program
    except ImportError:
        raise Skip("apache-tvm not installed (pip install -e .[bench])") from None
    mod = from_exported_program(torch.export.export(model, (x,)), keep_params_as_input=False)
    cpu = tvm.target.codegen.llvm_get_system_cpu()
    target = tvm.target.Target({"kind": "llvm", "mcpu": cpu, "num-cores": s.threads})
    ex = tvm.compile(mod, target=target)
    dev = tvm.cpu()
    vm = relax.VirtualMachine(ex, dev)
    inp = tvm.runtime.tensor(x.numpy(), dev)

    def call():
        out = vm["main"](inp)
        return (out[0] if not hasattr(out, "numpy") else out).numpy()
    return Runner(call, ref, f"{tvm.__version__} Relax, llvm -mcpu={cpu}, UNTUNED")


def engine_litert(model, x, ref, s: Settings) -> Runner:
    if str(LITERT_DIR) not in sys.path:
        sys.path.append(str(LITERT_DIR))  # appended: the main environment's packages win
    try:
        import litert_torch
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as e:
        raise Skip(f"litert-torch not found ({e}); run bench/setup_litert.sh (installs into {LITERT_DIR})") from None
    path = Path(tempfile.mkdtemp(prefix="peers-litert-")) / "model.tflite"
    litert_torch.convert(model, (x,)).export(str(path))
    it = Interpreter(model_path=str(path), num_threads=s.threads)
    it.allocate_tensors()
    i_idx = it.get_input_details()[0]["index"]
    o_idx = it.get_output_details()[0]["index"]
    xn = x.numpy()

    def call():
        it.set_tensor(i_idx, xn)
        it.invoke()
        return it.get_tensor(o_idx)
    return Runner(call, ref, "litert-torch -> .tflite fp32, XNNPACK delegate")


def _pruned(model: torch.nn.Module, x: torch.Tensor, connectivity: float, filter_block: int):
    """(pruned model, plan): spattern.prune's default layers (3x3 convs but the stem), per-kernel patterns, by
    magnitude projection (speed does not depend on the values); spattern.testing's random plan as a fallback."""
    try:
        import spattern
        from spattern.pruning import LayerRule, PruneConfig
    except ImportError:
        from spattern.testing import random_plan_for

        return random_plan_for(model, filter_block=filter_block, connectivity=connectivity, seed=0)
    cfg = PruneConfig(default=LayerRule(connectivity=connectivity, filter_block=filter_block), method="magnitude",
                      distill_steps=0, recalibrate_bn=False)
    res = spattern.prune(model, x, cfg, progress=False)
    return res.model, res.plan


def _engine_spattern(connectivity: float) -> Callable[..., Runner]:
    def build(model, x, ref, s: Settings) -> Runner:
        import spattern

        try:
            pruned, plan = _pruned(model, x, connectivity, s.filter_block)
            compiled = spattern.compile(pruned, x, target="host", plan=plan, threads=s.threads, lowering=s.lowering)
        except (ImportError, NotImplementedError) as e:
            raise Skip(f"sparse compile path not available yet ({type(e).__name__}: {e})") from None
        limit = totals(layer_table(pruned, x, plan)).mac_limit
        xn = x.numpy()
        lowering = compiled.info.get("lowering", "?")
        return Runner(lambda: compiled.run(xn)[0], _torch_out(pruned, x),
                      f"patterns, block {s.filter_block}, connectivity {connectivity}, {lowering}; magnitude-pruned",
                      limit)
    return build


BUILDERS: dict[str, Callable[..., Runner]] = {
    "torch": engine_torch, "torch_cl": engine_torch_cl, "iree": engine_iree, "onnxruntime": engine_onnxruntime,
    "tvm": engine_tvm, "litert": engine_litert, "spattern_p": _engine_spattern(0.0),
    "spattern_c0.5": _engine_spattern(0.5),
}


def _gmacs(model: torch.nn.Module, x: torch.Tensor) -> float:
    return totals(layer_table(model, x)).macs / 1e9


# --- measuring -------------------------------------------------------------------------------------------------
def prepare(names: list[str], model, x, s: Settings, log: Callable[[str], None]
            ) -> tuple[dict[str, Runner], dict[str, EngineResult]]:
    """Build every engine, check its numerics, warm it up; engines that fail or skip get a result now."""
    ref = _torch_out(model, x)
    runners: dict[str, Runner] = {}
    results: dict[str, EngineResult] = {}
    for name in names:
        t0 = time.perf_counter()
        try:
            r = BUILDERS[name](model, x, ref, s)
            out = np.asarray(r.call(), dtype=np.float32).reshape(r.reference.shape)
            err = float(np.abs(out - r.reference).max())
            rel = err / max(float(np.abs(r.reference).max()), 1e-30)
            t1 = time.perf_counter()
            for _ in range(s.warmup - 1):
                r.call()
            call_s = (time.perf_counter() - t1) / max(s.warmup - 1, 1)
        except Skip as e:
            results[name] = EngineResult("skipped", reason=str(e))
            log(f"  {name}: skipped ({e})")
            continue
        except Exception as e:  # an engine that breaks is reported, not hidden
            results[name] = EngineResult("failed", reason=f"{type(e).__name__}: {str(e).splitlines()[0][:300]}")
            log(f"  {name}: FAILED\n{traceback.format_exc(limit=3)}")
            continue
        res = EngineResult("ok", note=r.note, setup_s=time.perf_counter() - t0, max_abs_err=err, rel_err=rel,
                           numerics_ok=rel < NUMERICS_TOL, mac_limit=r.mac_limit)
        if s.warmup > 1 and call_s > s.max_call_s:
            res.status, res.reason = "skipped", f"{call_s:.1f} s per call (> --max-call-s {s.max_call_s})"
            log(f"  {name}: skipped ({res.reason})")
        else:
            r.reps = res.calls_per_round = 1 if call_s > SLOW_CALL_S else s.reps
            runners[name] = r
            log(f"  {name}: ready in {res.setup_s:.1f}s, rel err {rel:.1e}")
        results[name] = res
    return runners, results


def measure(runners: dict[str, Runner], results: dict[str, EngineResult], s: Settings) -> None:
    """Alternating rounds: the engine order rotates each round; one sample = median of `reps` calls (1 call for
    engines slower than SLOW_CALL_S, so that untuned TVM does not hog a shared machine)."""
    names = list(runners)
    for rnd in range(s.rounds):
        k = rnd % max(len(names), 1)
        for name in names[k:] + names[:k]:
            time.sleep(s.pause_s)
            call = runners[name].call
            ts = []
            for _ in range(runners[name].reps or s.reps):
                t0 = time.perf_counter()
                call()
                ts.append(time.perf_counter() - t0)
            results[name].rounds_ms.append(1e3 * statistics.median(ts))
    for name in names:
        ms = results[name].rounds_ms
        results[name].median_ms = statistics.median(ms)
        results[name].min_ms, results[name].max_ms = min(ms), max(ms)


def ratios(results: dict[str, EngineResult]) -> dict[str, dict[str, dict[str, float]]]:
    """{ours: {peer: {median, min, max}}}: peer time / our time, per round (> 1: ours is faster)."""
    ok = {n: r for n, r in results.items() if r.status == "ok" and r.rounds_ms}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for ours in OURS:
        if ours not in ok:
            continue
        out[ours] = {}
        for peer, pr in ok.items():
            if peer == ours:
                continue
            per_round = [p / o for p, o in zip(pr.rounds_ms, ok[ours].rounds_ms)]
            out[ours][peer] = {"median": statistics.median(per_round), "min": min(per_round),
                               "max": max(per_round)}
    return out


def run_model(name: str, engines: list[str], s: Settings, log: Callable[[str], None]) -> dict[str, Any]:
    torch.set_num_threads(s.threads)
    model = models.build(name, num_classes=1000, image_size=s.image_size, seed=0)
    x = torch.randn(1, 3, s.image_size, s.image_size, generator=torch.Generator().manual_seed(0))
    gmac = _gmacs(model, x)
    load_before = os.getloadavg()[0]
    log(f"{name}: {gmac:.2f} GMAC, preparing {', '.join(engines)} (load average {load_before:.1f})")
    runners, results = prepare(engines, model, x, s, log)
    log(f"{name}: {s.rounds} alternating rounds x {s.reps} calls over {', '.join(runners)}")
    measure(runners, results, s)
    load = (load_before, os.getloadavg()[0])
    log(f"{name}: load average {load[0]:.1f} before, {load[1]:.1f} after ({os.cpu_count()} cores)")
    entry = {"model": name, "gmacs": gmac, "load_average": load,
             "engines": {n: asdict(r) for n, r in results.items()},
             "ratios": ratios(results)}
    del runners
    gc.collect()
    return entry


# --- output ----------------------------------------------------------------------------------------------------
def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1e3:.2f} s" if v >= 1e3 else f"{v:.1f} ms" if v >= 10 else f"{v:.2f} ms"


def print_tables(entries: list[dict[str, Any]], s: Settings, console) -> None:
    from rich.table import Table

    for e in entries:
        load = e.get("load_average") or (0.0, 0.0)
        t = Table(title=f"{e['model']} 224x224, batch 1, {s.threads} threads, {s.rounds} rounds x {s.reps} calls "
                        f"({e['gmacs']:.2f} GMAC; load average {load[0]:.1f}..{load[1]:.1f} on {os.cpu_count()} cores)")
        for col in ("engine", "median", "spread (min..max of rounds)", "rel err vs torch", "note / reason"):
            t.add_column(col)
        for name, r in e["engines"].items():
            if r["status"] != "ok":
                t.add_row(name, r["status"], "", "", r["reason"])
                continue
            num = f"{r['rel_err']:.1e} {'ok' if r['numerics_ok'] else 'MISMATCH'}"
            t.add_row(name, _ms(r["median_ms"]), f"{_ms(r['min_ms'])}..{_ms(r['max_ms'])}", num, r["note"])
        console.print(t)
        if not e["ratios"]:
            continue
        peers = [n for n, r in e["engines"].items() if r["status"] == "ok"]
        rt = Table(title=f"{e['model']}: peer time / our time (median of per-round ratios, min..max); >1 = ours faster")
        rt.add_column("ours")
        rt.add_column("MAC limit")
        for p in peers:
            rt.add_column(p)
        for ours, row in e["ratios"].items():
            limit = e["engines"][ours].get("mac_limit")
            cells = [f"{row[p]['median']:.2f}x ({row[p]['min']:.2f}..{row[p]['max']:.2f})" if p in row else "-"
                     for p in peers]
            rt.add_row(ours, f"{limit:.2f}x" if limit else "-", *cells)
        console.print(rt)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                            "python": platform.python_version(), "torch": torch.__version__,
                            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"), "spinning_allowed": SPIN}
    try:
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                           if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    for mod in ("onnxruntime", "tvm", "iree.runtime"):
        try:
            m = __import__(mod, fromlist=["_"])
            info[mod] = getattr(m, "__version__", None) or getattr(m, "version", None).VERSION  # type: ignore
        except Exception:
            info[mod] = None
    return info


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {MODELS}")
    p.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated, from {ENGINES}")
    p.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 9, --quick 3)")
    p.add_argument("--reps", type=int, default=None, help="calls per engine per round (default 3, --quick 1)")
    p.add_argument("--quick", action="store_true", help="3 rounds of 1 call: a smoke run, ratios are rough")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tvm-max-gmac", type=float, default=3.0, help="skip untuned TVM above this many GMAC")
    p.add_argument("--max-call-s", type=float, default=3.0, help="drop an engine whose warm call takes longer")
    p.add_argument("--lowering", default="auto", choices=["auto", "microkernels", "linalg"],
                   help="lowering of the spattern engines")
    p.add_argument("--filter-block", type=int, default=1, help="filter block of the spattern engines (1: per-kernel "
                   "patterns, the microkernels' setting; 64 suits --lowering linalg)")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON (spattern report --peers)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    a = parse_args(argv)
    names = [m for m in a.models.split(",") if m]
    engines = [e for e in a.engines.split(",") if e]
    for bad in [m for m in names if m not in MODELS] + [e for e in engines if e not in ENGINES]:
        print(f"unknown model or engine {bad!r}; models: {MODELS}; engines: {ENGINES}", file=sys.stderr)
        return 2
    s = Settings(threads=a.threads, rounds=a.rounds or (3 if a.quick else 9), reps=a.reps or (1 if a.quick else 3),
                 tvm_max_gmac=a.tvm_max_gmac, max_call_s=a.max_call_s, lowering=a.lowering,
                 filter_block=a.filter_block)
    if os.environ.get("TVM_NUM_THREADS") != str(s.threads):
        os.environ["TVM_NUM_THREADS"] = str(s.threads)
    console = Console(width=200)
    err = Console(stderr=True)
    entries = [run_model(m, engines, s, lambda msg: err.print(msg, highlight=False)) for m in names]
    print_tables(entries, s, console)
    if a.out is not None:
        doc = {"format": "spattern.peers", "version": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
               "machine": machine(), "settings": asdict(s), "command": " ".join(sys.argv), "models": entries}
        a.out.write_text(json.dumps(doc, indent=1))
        err.print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
