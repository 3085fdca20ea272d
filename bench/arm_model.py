"""Modelled ARM64 speed of the shipped NEON microkernels, with llvm-mca (a model, not a measurement).

There is no ARM machine here, so the hot loops of the aarch64 objects the package ships
(spattern/_kernels/*_aarch64_neon.o) go through LLVM's machine-code analyzer for an A76-class big core
(`-mcpu=neoverse-n1`, a Cortex-A76 derivative) and a little core (`-mcpu=cortex-a55`), beside a dense reference:
an 8x12 register-blocked fp32 GEMM inner loop (bench/arm/gemm_ref_8x12.c, the shape fast ARM libraries use),
compiled with the shipped objects' flags.

How loops are found: the shipped object is disassembled (llvm-objdump) and every innermost loop is taken, a
backward branch whose body [target, branch] holds no other backward branch. This reads the code that ships,
whatever clang made of it (no markers in the kernels, nothing recompiled), and needs no knowledge of the C
source; a loop is then named by its function and by what it does (FMAs, loads, stores per iteration). Identical
loop bodies (the pattern conv has one per pattern, vector count and stride) are grouped.

LLVM version: the newest llvm-mca found (/usr/lib/llvm-N/bin, then PATH). LLVM 14 (Debian 12's default `llvm`)
has no Neoverse-N1 model: its `neoverse-n1` and `cortex-a76` both use the Cortex-A57 model. Debian 12's `llvm-19`
package has a Neoverse-N1 model of its own (N1UnitV0/V1 ...), so scripts/setup.sh installs it. Figures from an
A57 fallback are marked as such.

llvm-mca models a loop body's steady state with every load hitting L1 and every branch predicted. The layer
model (spattern/arm_estimate.py, which `spattern report --target arm64-android` uses) adds what it cannot see (each run's loop exit as one mispredicted branch) and leaves out what it
does not model (cache misses, the write-out). It ranks variants and names the bottleneck; it is not a time.

Usage: python bench/arm_model.py [--out bench/results/arm-model.txt] [--table spattern/arm_model_table.json]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spattern.arm_estimate import layer_cycles  # noqa: E402  (the report's layer model: one source)
KERNELS = ROOT / "spattern" / "_kernels"
GEMM_REF = ROOT / "bench" / "arm" / "gemm_ref_8x12.c"
# The shipped aarch64 objects' flags (CMakeLists.txt: SPK_TRIPLE/SPK_ISA_aarch64_neon + SPK_COMMON_FLAGS).
CLANG_FLAGS = ["--target=aarch64-none-elf", "-march=armv8-a", "-std=c11", "-O3", "-ffreestanding", "-fno-builtin",
               "-nostdlib", "-fvisibility=hidden", "-fno-plt", "-fPIC", "-ffunction-sections", "-fdata-sections",
               "-fno-stack-protector", "-fno-math-errno", "-ffp-contract=fast"]


@dataclass(frozen=True)
class Core:
    """A modelled core: llvm-mca's -mcpu, a stated clock and its fp32 FMA peak (FLOP per cycle)."""
    name: str
    mcpu: str
    ghz: float
    peak_flop_per_cycle: float
    note: str


CORES = (
    Core("A76-class", "neoverse-n1", 2.4, 16.0, "2 x 128-bit FMA pipes (V0, V1): 8 FMA lanes x 2 FLOP"),
    Core("A55", "cortex-a55", 1.8, 8.0, "one 128-bit FMA per cycle (two 64-bit FP/NEON pipes)"),
)

# A mispredicted branch, cycles (Cortex-A76 / Neoverse-N1 software optimization guides: 11; A55: 8). Charged once
# per pattern run: its kernel loop's exit (run lengths vary, so the predictor misses it).
MISPREDICT_CYCLES = {"neoverse-n1": 11.0, "cortex-a55": 8.0}


# ---------------------------------------------------------------------------------------------------------------
# tools


@dataclass(frozen=True)
class Llvm:
    mca: str
    objdump: str
    version: int


def find_llvm() -> Llvm | None:
    """The newest llvm-mca with its llvm-objdump: /usr/lib/llvm-N/bin (N descending), then PATH; None if absent."""
    for d in sorted(Path("/usr/lib").glob("llvm-*/bin"), key=lambda p: -_int_or(p.parent.name[5:], -1)):
        if (d / "llvm-mca").exists() and (d / "llvm-objdump").exists():
            return Llvm(str(d / "llvm-mca"), str(d / "llvm-objdump"), _int_or(d.parent.name[5:], 0))
    mca, od = shutil.which("llvm-mca"), shutil.which("llvm-objdump")
    if not mca or not od:
        return None
    out = subprocess.run([mca, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"LLVM version (\d+)", out)
    return Llvm(mca, od, int(m.group(1)) if m else 0)


def _int_or(s: str, default: int) -> int:
    return int(s) if s.isdigit() else default


# ---------------------------------------------------------------------------------------------------------------
# disassembly -> innermost loops


@dataclass(frozen=True)
class Insn:
    addr: int
    mnemonic: str
    operands: str
    target: int | None  # a direct branch's target address (same section), else None

    @property
    def is_branch(self) -> bool:
        m = self.mnemonic
        return m in ("b", "br", "ret", "cbz", "cbnz", "tbz", "tbnz", "bl", "blr") or m.startswith("b.")


_LINE = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*?)\s*$")
_FUNC = re.compile(r"^[0-9a-f]+ <([^>]+)>:$")
_TARGET = re.compile(r"0x([0-9a-f]+) <[^>]*>")


def disassemble(llvm: Llvm, obj: Path) -> dict[str, list[Insn]]:
    """Function name -> its instructions (one text section per function: -ffunction-sections)."""
    text = subprocess.run([llvm.objdump, "-d", "--no-show-raw-insn", str(obj)], capture_output=True, text=True,
                          check=True).stdout
    funcs: dict[str, list[Insn]] = {}
    cur: list[Insn] | None = None
    for line in text.splitlines():
        if m := _FUNC.match(line):
            cur = funcs.setdefault(m.group(1), [])
        elif cur is not None and (m := _LINE.match(line)):
            operands = m.group(3).split("//")[0].strip()
            t = _TARGET.search(operands)
            cur.append(Insn(int(m.group(1), 16), m.group(2), operands, int(t.group(1), 16) if t else None))
    return funcs


@dataclass
class Loop:
    func: str
    start: int
    end: int  # address of the backward branch
    body: list[Insn]
    preheader: list[Insn]  # the straight-line code that falls into the loop (a run's setup, for instance)

    @property
    def signature(self) -> str:
        return " ".join(i.mnemonic for i in self.body)

    def count(self, pred) -> int:
        return sum(1 for i in self.body if pred(i))


def innermost_loops(func: str, insns: list[Insn]) -> list[Loop]:
    """Every backward branch whose body [target, branch] holds no other backward branch."""
    back = [(i.target, i.addr) for i in insns if i.is_branch and i.target is not None and i.target <= i.addr]
    loops = []
    index = {i.addr: n for n, i in enumerate(insns)}
    for t, a in back:
        if any((t2, a2) != (t, a) and t <= t2 and a2 <= a for t2, a2 in back):
            continue
        if t not in index:
            continue
        lo, hi = index[t], index[a]
        pre_lo = lo
        while pre_lo > 0 and not insns[pre_lo - 1].is_branch:
            pre_lo -= 1
        loops.append(Loop(func, t, a, insns[lo:hi + 1], insns[pre_lo:lo]))
    return loops


def is_vector(i: Insn) -> bool:
    return bool(re.search(r"\bv\d+\.(4s|2s|2d|16b|8b|8h|4h)|\bq\d+\b", i.operands))


def is_fma(i: Insn) -> bool:
    return i.mnemonic in ("fmla", "fmls") and ".4s" in i.operands


def flops(i: Insn) -> int:
    """Useful fp32 FLOP of one vector instruction (an FMA is 2 per lane), 0 for anything else."""
    lanes = 4 if ".4s" in i.operands else 2 if ".2s" in i.operands else 0
    if i.mnemonic in ("fmla", "fmls"):
        return 2 * lanes
    if i.mnemonic in ("fmul", "fadd", "fsub", "fmax", "fmaxnm"):
        return lanes
    return 0


def is_load(i: Insn) -> bool:
    return i.mnemonic.startswith(("ldr", "ldp", "ld1", "ldur"))


def is_store(i: Insn) -> bool:
    return i.mnemonic.startswith(("str", "stp", "st1", "stur"))


def mca_source(insns: list[Insn], label_at: int | None) -> str:
    """Assembly llvm-mca parses: direct branch targets become one local label (llvm-mca ignores where they go)."""
    lines = [".Lmca_top:"]
    for i in insns:
        ops = _TARGET.sub(".Lmca_top", i.operands) if i.target is not None else i.operands
        lines.append(f"  {i.mnemonic} {ops}".rstrip())
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# llvm-mca


@dataclass
class McaResult:
    cycles_per_iter: float
    block_rthroughput: float
    bottleneck: str  # the busiest resource per unit (or the dependency chain when it, not a resource, bounds)
    pressure: dict[str, float] = field(default_factory=dict)  # resource -> cycles per iteration
    model: str = ""  # the scheduling model's resource prefix (N1, CortexA55, A57: an A57 fallback)


IN_ORDER = ("cortex-a55", "cortex-a53", "cortex-a510")


def run_mca(llvm: Llvm, source: str, mcpu: str, iterations: int = 400) -> McaResult:
    with tempfile.NamedTemporaryFile("w", suffix=".s", delete=False) as f:
        f.write(source)
        path = f.name
    try:
        out = subprocess.run([llvm.mca, "-mtriple=aarch64", f"-mcpu={mcpu}", f"-iterations={iterations}",
                              "-bottleneck-analysis", "-resource-pressure", "-instruction-info=0", path],
                             capture_output=True, text=True)
    finally:
        Path(path).unlink()
    if out.returncode != 0:
        raise RuntimeError(f"llvm-mca failed on {mcpu}: {out.stderr.strip()[:2000]}")
    return parse_mca(out.stdout, in_order=mcpu in IN_ORDER)


def parse_mca(text: str, in_order: bool = False) -> McaResult:
    """The summary (iterations, total cycles, block reciprocal throughput), the resource names and the
    per-iteration resource pressure table of llvm-mca's text output."""
    iters = int(_grab(text, r"^Iterations:\s+(\d+)"))
    cycles = int(_grab(text, r"^Total Cycles:\s+(\d+)"))
    rthr = float(_grab(text, r"^Block RThroughput:\s+([\d.]+)"))
    names: dict[str, str] = {}
    sec = text.split("Resources:", 1)[1] if "Resources:" in text else ""
    for m in re.finditer(r"^\[([\d.]+)\]\s+-\s+(\S+)", sec, re.M):
        names[m.group(1)] = m.group(2)
    pressure: dict[str, float] = {}
    m = re.search(r"Resource pressure per iteration:\n(.*?)\n(.*?)\n", text)
    if m:
        cols = re.findall(r"\[([\d.]+)\]", m.group(1))
        vals = m.group(2).split()
        for c, v in zip(cols, vals):
            pressure[f"{names.get(c, c)}[{c}]" if c.count(".") else names.get(c, c)] = 0.0 if v == "-" else float(v)
    busiest = max(pressure.items(), key=lambda kv: kv[1]) if pressure else ("?", 0.0)
    bottleneck = busiest[0]
    if cycles / iters > 1.15 * max(busiest[1], rthr):
        # cycles the resources do not explain: latency (the out-of-order window cannot cover a chain) or, on an
        # in-order core, instructions waiting on their operands
        kind = "in-order stalls" if in_order else "latency/window"
        bottleneck = f"{kind} (busiest {busiest[0]} {busiest[1]:.1f})"
    model = next(iter(names.values()), "")
    model = re.sub(r"Unit.*$", "", model)
    return McaResult(cycles / iters, rthr, bottleneck, pressure, model)


def _grab(text: str, pattern: str) -> str:
    m = re.search(pattern, text, re.M)
    if not m:
        raise ValueError(f"llvm-mca output has no line matching {pattern!r}")
    return m.group(1)


# ---------------------------------------------------------------------------------------------------------------
# the loops of each shipped object, and the dense reference


@dataclass
class LoopModel:
    kernel: str
    func: str
    obj: str  # the object it was read from
    instances: int  # identical loop bodies in the object
    insns: int
    fmas: int
    loads: int
    stores: int
    out_vectors: int  # distinct vector destinations of the FMAs (or of the stores, in a loop with no FMA)
    flop: int  # useful FLOP per iteration
    per_core: dict[str, dict] = field(default_factory=dict)


def model_loop(llvm: Llvm, kernel: str, group: list[Loop], obj: Path) -> LoopModel:
    lp = group[0]
    dests = {i.operands.split(",")[0] for i in lp.body if is_fma(i)}
    if not dests:
        dests = {i.operands for i in lp.body if is_store(i) and is_vector(i)}
        # an stp of two q registers writes two output vectors
        nvec = sum(2 if i.mnemonic == "stp" else 1 for i in lp.body if is_store(i) and is_vector(i))
    else:
        nvec = len(dests)
    lm = LoopModel(kernel, lp.func, str(obj), len(group), len(lp.body), lp.count(is_fma), lp.count(is_load),
                   lp.count(is_store), nvec, sum(flops(i) for i in lp.body))
    src = mca_source(lp.body, lp.start)
    for core in CORES:
        r = run_mca(llvm, src, core.mcpu)
        fpc = lm.flop / r.cycles_per_iter if r.cycles_per_iter else 0.0
        lm.per_core[core.mcpu] = {
            "cycles_per_iter": round(r.cycles_per_iter, 3),
            "cycles_per_out_vector": round(r.cycles_per_iter / max(nvec, 1), 3),
            "block_rthroughput": r.block_rthroughput,
            "bottleneck": r.bottleneck,
            "model": r.model,
            "gflops": round(fpc * core.ghz, 2),
            "fraction_of_peak": round(fpc / core.peak_flop_per_cycle, 3),
        }
    return lm


def grouped_vector_loops(llvm: Llvm, obj: Path) -> list[list[Loop]]:
    """The object's innermost loops that do vector work, identical bodies grouped, most FLOP first."""
    groups: dict[tuple[str, str], list[Loop]] = {}
    for func, insns in disassemble(llvm, obj).items():
        for lp in innermost_loops(func, insns):
            if any(is_vector(i) for i in lp.body):
                groups.setdefault((func, lp.signature), []).append(lp)
    return sorted(groups.values(), key=lambda g: (-sum(flops(i) for i in g[0].body), g[0].func, g[0].start))


def build_gemm_ref(out_dir: Path) -> Path:
    clang = shutil.which("clang")
    if not clang:
        raise RuntimeError("clang is needed to compile the dense reference (Debian package: clang)")
    obj = out_dir / "gemm_ref_8x12_aarch64.o"
    subprocess.run([clang, *CLANG_FLAGS, "-c", str(GEMM_REF), "-o", str(obj)], check=True)
    return obj


def peak_source(n_fma: int = 24) -> str:
    """n FMAs by element on 24 accumulators: the model's own FMA throughput (what 'peak' means inside the model)."""
    return ".Lmca_top:\n" + "".join(f"  fmla v{8 + j % 24}.4s, v0.4s, v1.s[{j % 4}]\n" for j in range(n_fma))


# ---------------------------------------------------------------------------------------------------------------
# the layer model (spattern/arm_estimate.py's layer_cycles, on the VGG-16 and ResNet-18 3x3 shapes)

# (name, C, F, H (= W) of the output, stride) of the 3x3 convs; VGG-16's first conv (3 channels) is left out:
# it runs as three pattern convs of one channel each, not a layer of this shape.
VGG16 = [("conv1_2", 64, 64, 224, 1), ("conv2_1", 64, 128, 112, 1), ("conv2_2", 128, 128, 112, 1),
         ("conv3_1", 128, 256, 56, 1), ("conv3_2", 256, 256, 56, 1), ("conv3_3", 256, 256, 56, 1),
         ("conv4_1", 256, 512, 28, 1), ("conv4_2", 512, 512, 28, 1), ("conv4_3", 512, 512, 28, 1),
         ("conv5_1", 512, 512, 14, 1), ("conv5_2", 512, 512, 14, 1), ("conv5_3", 512, 512, 14, 1)]
RESNET18 = [("layer1.x.conv", 64, 64, 56, 1), ("layer2.0.conv1", 64, 128, 28, 2), ("layer2.x.conv", 128, 128, 28, 1),
            ("layer3.0.conv1", 128, 256, 14, 2), ("layer3.x.conv", 256, 256, 14, 1),
            ("layer4.0.conv1", 256, 512, 7, 2), ("layer4.x.conv", 512, 512, 7, 1)]
def layer_table(t: dict, layers, keep: float) -> list[dict]:
    rows = []
    for name, C, F, H, s in layers:
        c = layer_cycles(C, F, H, H, s, keep, t)
        limit = 9.0 / (4.0 * keep)
        speed = c["dense"] / c["pattern"]
        rows.append({"layer": name, "C": C, "F": F, "H": H, "stride": s, "speedup": speed, "mac_limit": limit,
                     "of_limit": speed / limit, "pattern_ms": c["pattern"] / (t["ghz"] * 1e6),
                     "dense_ms": c["dense"] / (t["ghz"] * 1e6)})
    return rows


# ---------------------------------------------------------------------------------------------------------------
# driver


def pattern_loops(models: list[LoopModel]) -> tuple[LoopModel, LoopModel | None]:
    """The pattern conv's full-width kernel loop (most FMAs, stride-1 function) and the stride-2 tap copy loop."""
    pc = [m for m in models if m.kernel == "pattern_conv"]
    main = max((m for m in pc if m.func == "spk_tile_s1"), key=lambda m: (m.fmas, m.instances))
    taps = [m for m in pc if m.func == "spk_tile_s2" and m.fmas == 0 and m.stores >= 3]
    return main, (max(taps, key=lambda m: m.insns) if taps else None)


def run_setup_cycles(llvm: Llvm, obj: Path, main: LoopModel, mcpu: str) -> float:
    """A run's setup (the straight-line code that falls into the kernel loop: tap loads, trip count), modelled
    as a block on its own: its reciprocal throughput in cycles."""
    for lp in innermost_loops(main.func, disassemble(llvm, obj)[main.func]):
        if lp.count(is_fma) == main.fmas and lp.preheader:
            return run_mca(llvm, mca_source(lp.preheader, None), mcpu, iterations=100).cycles_per_iter
    return 0.0


def by_nv(models: list[LoopModel], main: LoopModel, mcpu: str) -> dict[str, float]:
    """The pattern conv's kernel loop per vector count (4 FMAs per vector: one loop per pattern and count)."""
    out: dict[str, float] = {}
    for m in models:
        if m.kernel == "pattern_conv" and m.func == main.func and m.fmas and m.fmas % 4 == 0 and m.stores:
            nv = str(m.fmas // 4)
            c = m.per_core[mcpu]["cycles_per_iter"]
            out[nv] = min(out.get(nv, c), c)
    return dict(sorted(out.items(), key=lambda kv: int(kv[0])))


def tail_pass() -> bool:
    """Whether the NEON object's short tiles end with a pass of just the vectors left (kernels/pattern_conv.c
    SPK_TAIL_PASS, on by default for aarch64 in the source this checkout builds the objects from)."""
    return "#define SPK_TAIL_PASS 1" in (ROOT / "kernels" / "pattern_conv.c").read_text()


def build_table(llvm: Llvm, models: list[LoopModel], ref: LoopModel, peaks: dict[str, float]) -> dict:
    main, taps = pattern_loops(models)
    obj = Path(main.obj)
    cores = {}
    for core in CORES:
        pc, rc = main.per_core[core.mcpu], ref.per_core[core.mcpu]
        cores[core.mcpu] = {
            "name": core.name, "ghz": core.ghz, "peak_flop_per_cycle": core.peak_flop_per_cycle,
            "model_peak_flop_per_cycle": peaks[core.mcpu], "model": pc["model"],
            "pattern_vectors_per_pass": main.out_vectors,
            "pattern_cycles_per_out_vector": pc["cycles_per_out_vector"],
            "pattern_cycles_per_kernel_by_nv": by_nv(models, main, core.mcpu),
            "pattern_tail_pass": tail_pass(),
            "pattern_run_setup_cycles": round(run_setup_cycles(llvm, obj, main, core.mcpu), 2),
            "mispredict_cycles": MISPREDICT_CYCLES[core.mcpu],
            "s2_tap_cycles_per_vector": round(taps.per_core[core.mcpu]["cycles_per_iter"] / max(taps.out_vectors, 1), 3
                                         ) if taps else 0.0,
            "dense_flop_per_cycle": round(ref.flop / rc["cycles_per_iter"], 3),
        }
    return {"generated_by": "bench/arm_model.py", "llvm_mca_version": llvm.version,
            "what": "llvm-mca steady-state model of the shipped aarch64 pattern-conv inner loop and of an 8x12 "
                    "fp32 GEMM loop (dense reference); a model, not a measurement",
            "cores": cores}


def fmt_models(models: list[LoopModel]) -> list[str]:
    lines = []
    hdr = (f"{'kernel':<13} {'function':<18} {'n':>3} {'ins':>4} {'fma':>4} {'ld':>3} {'st':>3} {'vec':>3}  "
           + "  ".join(f"{c.mcpu + ': cyc/it cyc/vec GF/s %peak bottleneck':<64}" for c in CORES))
    lines.append(hdr)
    for m in models:
        cells = []
        for c in CORES:
            p = m.per_core[c.mcpu]
            cells.append(f"{p['cycles_per_iter']:>6.2f} {p['cycles_per_out_vector']:>6.2f} {p['gflops']:>6.1f} "
                         f"{100 * p['fraction_of_peak']:>4.0f}% {p['bottleneck'][:40]:<40}")
        lines.append(f"{m.kernel:<13} {m.func:<18} {m.instances:>3} {m.insns:>4} {m.fmas:>4} {m.loads:>3} "
                     f"{m.stores:>3} {m.out_vectors:>3}  " + "  ".join(cells))
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--objects", nargs="*", type=Path,
                    default=sorted(KERNELS.glob("*_aarch64_neon.o")), help="aarch64 objects to model")
    ap.add_argument("--out", type=Path, help="also write the report here")
    ap.add_argument("--table", type=Path, help="write the per-core table the report uses (arm_model_table.json)")
    ap.add_argument("--json", type=Path, help="write every loop's figures as JSON")
    ap.add_argument("--max-loops", type=int, default=12, help="loops listed per object (most FLOP first)")
    args = ap.parse_args(argv)
    llvm = find_llvm()
    if llvm is None:
        print("llvm-mca / llvm-objdump not found (Debian package llvm-19, or llvm)", file=sys.stderr)
        return 2
    lines = [f"llvm-mca: {llvm.mca} (LLVM {llvm.version})  -- a model (steady state, L1 hits, branches "
             f"predicted), not a measurement",
             *(f"core {c.name}: -mcpu={c.mcpu} at {c.ghz} GHz, peak {c.peak_flop_per_cycle:g} FLOP/cycle fp32 "
               f"({c.note})" for c in CORES)]
    peaks = {c.mcpu: round(48 * 8 / run_mca(llvm, peak_source(48), c.mcpu).cycles_per_iter, 2) for c in CORES}
    lines.append("model's own FMA peak (48 independent fmla by element): "
                 + ", ".join(f"{k} {v:g} FLOP/cycle" for k, v in peaks.items()))
    models: list[LoopModel] = []  # every vector loop (the layer model needs the stride-2 tap copy too)
    shown: list[LoopModel] = []  # the first --max-loops of each object, most FLOP first
    for obj in args.objects:
        kernel = obj.name.split("_aarch64")[0]
        for n, g in enumerate(grouped_vector_loops(llvm, obj)):
            models.append(model_loop(llvm, kernel, g, obj))
            if n < args.max_loops:
                shown.append(models[-1])
    with tempfile.TemporaryDirectory() as d:
        ref_obj = build_gemm_ref(Path(d))
        ref = model_loop(llvm, "dense-ref", grouped_vector_loops(llvm, ref_obj)[0], GEMM_REF)
    lines += ["", "Innermost vector loops (n: identical bodies; per iteration: ins, fma, ld, st; vec: output "
                  "vectors it updates)", *fmt_models(shown + [ref])]
    if any(m.kernel == "pattern_conv" for m in models):
        table = build_table(llvm, models, ref, peaks)
        for mcpu, t in table["cores"].items():
            lines += ["", f"Layer model, {t['name']} ({mcpu}, {t['ghz']} GHz, one core; model {t['model']}): "
                          f"pattern loop {t['pattern_cycles_per_out_vector']} cyc per kernel-vector, run setup "
                          f"{t['pattern_run_setup_cycles']} + mispredict {t['mispredict_cycles']} cyc per run and "
                          f"pass, dense ref {t['dense_flop_per_cycle']} FLOP/cycle"]
            for net, layers in (("VGG-16", VGG16), ("ResNet-18", RESNET18)):
                for keep, label in ((1.0, "patterns"), (0.5, "c0.5")):
                    rows = layer_table(t, layers, keep)
                    lines.append(f"  {net} {label}: layer speedup over dense ref (MAC limit {rows[0]['mac_limit']:.2f}x)"
                                 f": " + ", ".join(f"{r['layer']} {r['speedup']:.2f}x ({100 * r['of_limit']:.0f}%)"
                                                   for r in rows))
        if args.table:
            args.table.write_text(json.dumps(table, indent=1) + "\n")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.json:
        args.json.write_text(json.dumps([asdict(m) for m in models + [ref]], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
