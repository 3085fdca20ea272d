"""The int8 pattern-conv microkernel (kernels/pattern_conv_s8.c) against the integer arithmetic of qarith, bit for
bit: the AVX-512 VNNI object (where the CPU has VNNI), the portable AVX2 object, and the aarch64 dotprod object
under qemu-aarch64 (-cpu max) through a libc-free caller (tests/native/aarch64_call.c). Cases cover stride 1 and
2, padding 0 and 1, several filter chunks and channel blocks, batch 2, the fused residual add and a padded output
(the next conv's padded input, its border holding the zero point); corrupt tables trap."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spattern import qarith
from spattern.errors import PlanError
from spattern.microkernels import kernels
from spattern.microkernels.microkernel_abi import padded_shape
from spattern.microkernels.pattern_s8_abi import (H, PackedConvS8, ResidualAdd, pack_conv_s8, pad_input_s8,
                                                  run_conv_s8)
from spattern.patterns import CANDIDATES
from conftest import require_microkernels
from test_kernel_traps import TRAP, call_in_child

ROOT = Path(__file__).resolve().parent
CALLER = ROOT / "native" / "aarch64_call.c"


def pattern_weight(rng: np.random.Generator, f: int, c: int, keep: float = 0.6) -> np.ndarray:
    """int8 [F, C, 3, 3]: each kept kernel 4 taps of one of 8 library patterns, weights in [-127, 127]."""
    lib = rng.choice(len(CANDIDATES), 8, replace=False)
    w = np.zeros((f, c, 9), np.int8)
    kept = rng.random((f, c)) < keep
    for i, j in zip(*np.nonzero(kept)):
        w[i, j, list(CANDIDATES[lib[rng.integers(8)]])] = rng.integers(-127, 128, 4)
    return w.reshape(f, c, 3, 3)


def reference(x: np.ndarray, case: dict, res: np.ndarray | None) -> np.ndarray:
    """qarith's arithmetic: exact int32 accumulation (float64 convolution of integers), requantize, residual add."""
    pad = case["padding"]
    xp = F.pad(torch.tensor(x, dtype=torch.float64), (pad,) * 4, value=float(case["zp_in"]))
    acc = F.conv2d(xp, torch.tensor(case["w"], dtype=torch.float64), torch.tensor(case["b"], dtype=torch.float64),
                   case["stride"])
    c = qarith.requantize(acc.to(torch.int64).to(torch.int32), torch.tensor(case["m"]), case["zp_c"], case["lo_c"],
                          case["hi_c"])
    if res is None:
        return c.numpy()
    ra: ResidualAdd = case["residual"]
    y = qarith.add_requantize(c, qarith.ActQuant(1.0, case["zp_c"]), torch.tensor(res),
                              qarith.ActQuant(1.0, ra.zp_r), qarith.AddQuant(ra.ma, ra.mb, ra.shift),
                              qarith.ActQuant(1.0, ra.zp_y), ra.lo, ra.hi)
    return y.numpy()


CASES = {
    "s1": dict(n=1, c=16, h=14, w=14, f=32, stride=1, padding=1),
    "s1-chunks": dict(n=2, c=8, h=9, w=11, f=150, stride=1, padding=1),
    "s2": dict(n=1, c=24, h=15, w=13, f=20, stride=2, padding=1),
    "pad0": dict(n=1, c=5, h=8, w=8, f=3, stride=1, padding=0),
    "blocks": dict(n=1, c=200, h=10, w=12, f=64, stride=1, padding=1),
    "residual-padded": dict(n=1, c=12, h=13, w=11, f=40, stride=1, padding=1, residual=True, out_pad=(1, 3, 1, 1)),
    "s2-residual": dict(n=2, c=9, h=17, w=20, f=17, stride=2, padding=1, residual=True, relu=True),
}


def make_case(name: str) -> tuple[dict, PackedConvS8, np.ndarray, np.ndarray | None]:
    spec = CASES[name]
    rng = np.random.default_rng(sorted(CASES).index(name))
    f, c = spec["f"], spec["c"]
    case = dict(spec, w=pattern_weight(rng, f, c), zp_in=int(rng.integers(0, 40)),
                b=rng.integers(-20000, 20000, f).astype(np.int32),
                m=(rng.random(f) * 2e-3 + 1e-4).astype(np.float32), zp_c=int(rng.integers(60, 140)),
                lo_c=int(rng.integers(0, 10)), hi_c=int(rng.integers(240, 256)))
    if spec.get("relu"):
        case["zp_c"] = case["lo_c"] = 0
    x = rng.integers(0, 256, (spec["n"], c, spec["h"], spec["w"])).astype(np.uint8)
    residual = res = None
    if spec.get("residual"):
        sa, sb = 0.02 + rng.random() * 0.05, 0.02 + rng.random() * 0.05
        aq = qarith.add_quant(sa, sb, 0.06)
        residual = ResidualAdd(int(rng.integers(0, 100)), aq.multiplier_a, aq.multiplier_b, aq.shift,
                               int(rng.integers(0, 50)), 2, 253)
        case["residual"] = residual
    packed = pack_conv_s8(case["w"], case["b"], case["m"], x.shape, case["zp_in"], case["zp_c"], case["lo_c"],
                          case["hi_c"], spec["stride"], spec["padding"], residual=residual,
                          out_pad=spec.get("out_pad", (0, 0, 0, 0)))
    if residual is not None:
        res = rng.integers(0, 256, packed.out_shape).astype(np.uint8)
    return case, packed, x, res


def check(case: dict, packed: PackedConvS8, out: np.ndarray, x: np.ndarray, res: np.ndarray | None) -> None:
    ref = reference(x, case, res)
    top, _, left, _ = packed.out_pad
    ho, wo = packed.out_shape[2:]
    inner = out[:, :, top:top + ho, left:left + wo]
    assert np.array_equal(inner, ref), f"{int((inner != ref).sum())} of {ref.size} outputs differ"
    if any(packed.out_pad):
        border = np.ones(out.shape, bool)
        border[:, :, top:top + ho, left:left + wo] = False
        pad_value = case["residual"].zp_y if case.get("residual") else case["zp_c"]
        assert np.all(out[border] == pad_value)


@pytest.mark.parametrize("isa", ["avx512vnni", "avx2"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_host_objects_match_the_integer_arithmetic(monkeypatch, isa, name):
    require_microkernels("x86_64")
    if isa == "avx512vnni" and not kernels.host_has_vnni():
        pytest.skip("this CPU has no AVX-512 VNNI")
    monkeypatch.setenv(kernels.ISA_ENV, "avx512" if isa == "avx512vnni" else "avx2")
    assert kernels.kernel_object("x86_64", "pattern_conv_s8").isa == f"x86_64_{isa}"
    case, packed, x, res = make_case(name)
    check(case, packed, run_conv_s8(packed, x, "x86_64", res), x, res)


def _aarch64_caller(tmp_path: Path) -> tuple[str, Path]:
    qemu = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
    if qemu is None or shutil.which("clang") is None:
        pytest.skip("needs qemu-aarch64 and clang")
    try:
        obj = kernels.kernel_object("aarch64-unknown-linux-gnu", "pattern_conv_s8").path
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"microkernels not built: {e}")
    exe = tmp_path / "call"
    subprocess.run(["clang", "--target=aarch64-linux-gnu", "-O1", "-ffreestanding", "-fno-builtin", "-nostdlib",
                    "-static", "-fuse-ld=lld", "-fno-stack-protector", str(CALLER), str(obj), "-o", str(exe)],
                   check=True, capture_output=True)
    return qemu, exe


def run_aarch64(qemu: str, exe: Path, packed: PackedConvS8, x: np.ndarray, res: np.ndarray | None,
                table: np.ndarray | None = None) -> subprocess.CompletedProcess:
    bufs = [pad_input_s8(x, packed), packed.weights, packed.table if table is None else table,
            np.zeros(16, np.uint8) if res is None else np.ascontiguousarray(res, np.uint8),
            np.zeros(padded_shape(packed.out_shape, packed.out_pad), np.uint8)]
    head = [packed.workgroups] + [v for b in bufs for v in (b.nbytes, b.itemsize)]
    stdin = struct.pack("<11Q", *head) + b"".join(np.ascontiguousarray(b).tobytes() for b in bufs)
    return subprocess.run([qemu, "-cpu", "max", str(exe)], input=stdin, capture_output=True, timeout=120)


@pytest.mark.parametrize("name", ["s1-chunks", "s2-residual", "blocks", "residual-padded"])
def test_aarch64_dotprod_object_matches_under_qemu(tmp_path, name):
    qemu, exe = _aarch64_caller(tmp_path)
    case, packed, x, res = make_case(name)
    proc = run_aarch64(qemu, exe, packed, x, res)
    assert proc.returncode == 0, proc.stderr
    out = np.frombuffer(proc.stdout, np.uint8).reshape(padded_shape(packed.out_shape, packed.out_pad))
    check(case, packed, out, x, res)


def _corrupt(table: np.ndarray, what: str) -> np.ndarray:
    t = table.copy()
    if what == "magic":
        t[H["MAGIC"]] ^= 1
    elif what == "slot-channel":
        t[t[H["OFF_SLOT_CH"]]] = t[H["C"]]
    elif what == "pattern":
        t[t[H["OFF_SLOT_PID"]]] = len(CANDIDATES)
    elif what == "fk-order":
        t[t[H["OFF_FK_START"]] + 1] = t[H["K"]] + 1
    elif what == "kslot":
        t[t[H["OFF_KSLOT"]]] = -1  # slot 255 in the first kernel's byte
    elif what == "zero-point":
        t[H["ZP_C"]] = 256
    return t


WHATS = ["magic", "slot-channel", "pattern", "fk-order", "kslot", "zero-point"]


@pytest.mark.parametrize("what", WHATS)
def test_a_corrupt_table_traps(what):
    require_microkernels("x86_64")
    _, packed, x, _ = make_case("s1")
    bufs = [pad_input_s8(x, packed), packed.weights, _corrupt(packed.table, "none"), np.zeros(16, np.uint8),
            np.zeros(packed.out_buffer_shape, np.uint8)]
    assert call_in_child("pattern_conv_s8", bufs, packed.workgroups) == 0
    bufs[2] = _corrupt(packed.table, what)
    assert call_in_child("pattern_conv_s8", bufs, packed.workgroups) == TRAP
    bufs[2] = packed.table
    bufs[0] = bufs[0][:, :, :-1]  # a short input buffer
    assert call_in_child("pattern_conv_s8", [np.ascontiguousarray(b) for b in bufs], packed.workgroups) == TRAP


def test_the_aarch64_object_traps_on_a_corrupt_table(tmp_path):
    qemu, exe = _aarch64_caller(tmp_path)
    _, packed, x, res = make_case("s1")
    assert run_aarch64(qemu, exe, packed, x, res, _corrupt(packed.table, "pattern")).returncode != 0


def test_the_packer_refuses_weights_it_cannot_pack():
    rng = np.random.default_rng(0)
    w = pattern_weight(rng, 4, 3)
    w[w != 0] = np.where(w[w != 0] > 0, -128, w[w != 0])
    with pytest.raises(PlanError, match="-127, 127"):
        pack_conv_s8(w, np.zeros(4, np.int32), np.ones(4, np.float32), (1, 3, 8, 8), 0, 0)
    w = np.zeros((2, 3, 3, 3), np.int8)
    w[0, 0, ::2, ::2] = 1  # the 4 corners: every pattern keeps the centre
    with pytest.raises(PlanError, match="no 4-tap pattern"):
        pack_conv_s8(w, np.zeros(2, np.int32), np.ones(2, np.float32), (1, 3, 8, 8), 0, 0)
