"""The int8 pattern kernel (kernels/pattern_conv_s8.c, AVX-512 VNNI) against the fp32 pattern kernel on the same
pruned layers, one thread, and each against its instruction peak measured here by a synthetic loop.

    .venv/bin/python bench/int8_kernel.py [--rounds 7] [--out bench/results/int8-kernel.txt]

Per layer (VGG-16's 3x3 shapes at 224 and two smaller, patterns only and with half the kernels removed): the
median time of each kernel over interleaved rounds (fp32, int8, fp32, ...), their ratio, the useful work (4 MACs
per kept kernel and output position; int8 GOP/s and fp32 GFLOP/s at 2 ops per MAC) and its share of the peak:
VPDPBUSD zmm x 128 ops (16 lanes x 4 MACs x 2) and VFMADD zmm x 32 flops, each timed with 12 independent chains.
Both kernels run every workgroup in turn through ctypes on this thread (the same calls IREE would make). The int8
time includes the preparation (the interleaved tap vectors) and the requantizing write-out.
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spattern.microkernels import kernels  # noqa: E402
from spattern.microkernels.microkernel_abi import KernelLibrary, pad_input  # noqa: E402
from spattern.microkernels.pattern_s8_abi import pack_conv_s8, pad_input_s8  # noqa: E402
from spattern.passes.lower_to_microkernels import pack_pruned_conv  # noqa: E402
from spattern.patterns import CANDIDATES  # noqa: E402

LAYERS = [  # name, C, F, H (square), connectivity removed
    ("vgg16 conv1_2 224", 64, 64, 224, 0.0),
    ("vgg16 conv2_2 112", 128, 128, 112, 0.0),
    ("vgg16 conv3_2 56", 256, 256, 56, 0.0),
    ("vgg16 conv4_2 28", 512, 512, 28, 0.0),
    ("vgg16 conv5_2 14", 512, 512, 14, 0.0),
    ("vgg16 conv3_2 56 c0.5", 256, 256, 56, 0.5),
    ("vgg16 conv4_2 28 c0.5", 512, 512, 28, 0.5),
    ("resnet18 layer1 56", 64, 64, 56, 0.0),
]


class Peaks:
    """The peak loops (bench/native/dot_peak.c), timed in every round beside the kernels: on a shared machine a
    peak measured once, apart from them, is not the peak they ran against."""

    ITERS = 2_000_000

    def __init__(self, tmp: Path):
        so = tmp / "peak.so"
        subprocess.run(["clang", "-O2", "-shared", "-fPIC", "-mavx512f", "-mavx512vnni", "-mprefer-vector-width=512",
                        str(ROOT / "bench" / "native" / "dot_peak.c"), "-o", str(so)], check=True)
        self.lib = ctypes.CDLL(str(so))
        self.lib.spq_vnni_peak.argtypes, self.lib.spq_vnni_peak.restype = [ctypes.c_long, ctypes.c_int32], ctypes.c_int32
        self.lib.spq_fma_peak.argtypes, self.lib.spq_fma_peak.restype = [ctypes.c_long, ctypes.c_float], ctypes.c_float

    def vnni(self) -> float:
        """VPDPBUSD zmm instructions per second."""
        t = time.perf_counter()
        self.lib.spq_vnni_peak(self.ITERS, 3)
        return 12 * self.ITERS / (time.perf_counter() - t)

    def fma(self) -> float:
        """VFMADD zmm instructions per second."""
        t = time.perf_counter()
        self.lib.spq_fma_peak(self.ITERS, 1.0)
        return 12 * self.ITERS / (time.perf_counter() - t)


def layer(rng: np.random.Generator, c: int, f: int, h: int, removed: float):
    """fp32 and int8 operands of one pruned layer: 8 library patterns, the same kept kernels in both."""
    lib = rng.choice(len(CANDIDATES), 8, replace=False)
    pid = lib[rng.integers(0, 8, (f, c))]
    kept = rng.random((f, c)) >= removed
    masks = np.zeros((len(CANDIDATES), 9), np.float32)
    for i, taps in enumerate(CANDIDATES):
        masks[i, list(taps)] = 1
    m = masks[pid].reshape(f, c, 3, 3) * kept[:, :, None, None]
    w = rng.standard_normal((f, c, 3, 3)).astype(np.float32) * m
    x = rng.standard_normal((1, c, h, h)).astype(np.float32)
    fp = pack_pruned_conv(w, pid, kept, np.zeros(f, np.float32), x.shape, relu=True)
    w_q = (np.clip(np.round(w / np.abs(w).max() * 127), -127, 127) * m).astype(np.int8)
    x_q = rng.integers(0, 256, x.shape).astype(np.uint8)
    q = pack_conv_s8(w_q, np.zeros(f, np.int32), np.full(f, 1e-4, np.float32), x.shape, 0, 0)
    fbufs = [pad_input(x, fp), fp.weights, fp.table, fp.weights, np.empty(fp.out_buffer_shape, np.float32)]
    qbufs = [pad_input_s8(x_q, q), q.weights, q.table, np.zeros(16, np.uint8), np.empty(q.out_buffer_shape, np.uint8)]
    return (fp, fbufs), (q, qbufs)


def timed(lib: KernelLibrary, bufs: list[np.ndarray], workgroups: int) -> float:
    t = time.perf_counter()
    lib.call(bufs, workgroups)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "int8-kernel.txt")
    args = ap.parse_args()
    if not kernels.host_has_vnni():
        print("this CPU has no AVX-512 VNNI: nothing to measure")
        return 1
    tmp = tempfile.TemporaryDirectory()
    peaks = Peaks(Path(tmp.name))
    lines = [f"{'layer':24} {'fp32 ms':>8} {'int8 ms':>8} {'x':>5} {'int8 GOP/s':>10} {'%VNNI':>6} "
             f"{'fp32 GFLOP/s':>12} {'%FMA':>5} {'VNNI G/s':>8} {'FMA G/s':>8}"]
    print(lines[0], flush=True)
    fl = KernelLibrary.load("x86_64", "pattern_conv")
    ql = KernelLibrary.load("x86_64", "pattern_conv_s8")
    rng = np.random.default_rng(0)
    for name, c, f, h, removed in LAYERS:
        (fp, fb), (q, qb) = layer(rng, c, f, h, removed)
        timed(fl, fb, fp.workgroups), timed(ql, qb, q.workgroups)  # warm caches and pages
        tf, tq, pv, pf = [], [], [], []
        for _ in range(args.rounds):
            pv.append(peaks.vnni())
            tf.append(timed(fl, fb, fp.workgroups))
            pf.append(peaks.fma())
            tq.append(timed(ql, qb, q.workgroups))
        mf, mq = statistics.median(tf), statistics.median(tq)
        vnni, fma = statistics.median(pv), statistics.median(pf)
        ops = 2 * q.useful_macs()
        line = (f"{name:24} {mf * 1e3:8.2f} {mq * 1e3:8.2f} {mf / mq:5.2f} {ops / mq / 1e9:10.0f} "
                f"{100 * ops / mq / (vnni * 128):5.0f}% {ops / mf / 1e9:12.0f} {100 * ops / mf / (fma * 32):4.0f}% "
                f"{vnni / 1e9:8.2f} {fma / 1e9:8.2f}")
        print(line, flush=True)
        lines.append(line)
    lines.append("peaks: VPDPBUSD zmm x 128 int8 ops, VFMADD zmm x 32 flops, medians of the rounds beside each layer")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
