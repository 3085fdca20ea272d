"""Per-layer benchmark of the 1x1-conv microkernel (kernels/conv1x1.c, as an IREE custom dispatch) against what
IREE compiles for the same conv on the microkernel path without it: conv-1x1-to-matmul's NCHW matmul
(linalg.matmul W[F, C] x X[C, H*W], host flags with data tiling). ResNet-50's 1x1 shapes at 224 (and ResNet-18's
downsamples), one image, measured interleaved in one process: 2 threads (local-task, wall time) and one thread
(local-sync, the calling thread's CPU time). Both modules compute the bare conv (no bias, no epilogue: in a model
the kernel also takes the BatchNorm, ReLU and residual add, IREE fuses them into its matmul dispatch).

    .venv/bin/python bench/conv1x1.py [--rounds 7] [--layers 64x256x56,1024x256x14]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

# (C, F, H): ResNet-50's 1x1 convs at 224 (the stride-2 downsamples as the stride-1 convs of their subsampled
# input that strided-1x1-to-slice makes), then ResNet-18's downsamples, then ResNet-50's last stage at a 96x96
# input (3x3 images: the kernel's layout 1, conv1x1_abi.filter_layout)
LAYERS = [(64, 64, 56), (64, 256, 56), (256, 64, 56), (128, 512, 28), (512, 128, 28), (256, 1024, 14),
          (1024, 256, 14), (512, 2048, 7), (2048, 512, 7), (1024, 2048, 7), (128, 256, 14), (256, 512, 7),
          (512, 2048, 3), (2048, 512, 3)]


def matmul_module(w: np.ndarray, h: int) -> str:
    """conv-1x1-to-matmul's form of the conv: collapse, linalg.matmul in NCHW, expand."""
    from spattern.passes.conv_1x1_to_matmul import matmul_function_text
    from torch_mlir import ir

    from spattern.microkernels.microkernel_dispatch import dense_hex

    f, c = w.shape
    x_t, w_t, o_t = (f"tensor<1x{c}x{h}x{h}xf32>", f"tensor<{f}x{c}x1x1xf32>", f"tensor<1x{f}x{h}x{h}xf32>")
    with ir.Context():
        fn = matmul_function_text("conv1x1", *(ir.RankedTensorType(ir.Type.parse(t)) for t in (x_t, w_t, o_t)))
    return fn + f"""
func.func @main(%x: {x_t}) -> {o_t} {{
  %zero = arith.constant 0.0 : f32
  %w = arith.constant {dense_hex(w.reshape(f, c, 1, 1), "f32")}
  %e = tensor.empty() : {o_t}
  %z = linalg.fill ins(%zero : f32) outs(%e : {o_t}) -> {o_t}
  %y = func.call @conv1x1(%x, %w, %z) : ({x_t}, {w_t}, {o_t}) -> {o_t}
  return %y : {o_t}
}}
"""


def kernel_module(w: np.ndarray, h: int) -> str:
    """The same conv as one call of the 1x1 kernel (what lower-1x1-to-microkernels emits)."""
    from spattern.microkernels.conv1x1_abi import KERNEL, pack_conv1x1
    from spattern.microkernels.microkernel_dispatch import MicrokernelCall, declaration_text, dense_hex

    f, c = w.shape
    packed = pack_conv1x1(w, None, h, h)
    call = MicrokernelCall("spattern_mk_0", packed.in_shape, packed.weights.size, packed.table.size,
                           packed.out_shape, packed.workgroups, kernel=KERNEL)
    x_t, o_t = f"tensor<1x{c}x{h}x{h}xf32>", f"tensor<1x{f}x{h}x{h}xf32>"
    return declaration_text(call) + f"""
func.func @main(%x: {x_t}) -> {o_t} {{
  %w = arith.constant {dense_hex(packed.weights, "f32")}
  %t = arith.constant {dense_hex(packed.table, "i32")}
  %y = func.call @spattern_mk_0(%x, %w, %t) : ({x_t}, tensor<{packed.weights.size}xf32>, \
tensor<{packed.table.size}xi32>) -> {o_t}
  return %y : {o_t}
}}
"""


def build(out_dir: Path, layers: list[tuple[int, int, int]]) -> list[dict]:
    from spattern.runtime.compiler import compile_bytecode
    from spattern.microkernels.microkernel_dispatch import materialize_microkernels, text_to_bytecode

    rng = np.random.default_rng(0)
    records = []
    for c, f, h in layers:
        w = rng.standard_normal((f, c)).astype(np.float32)
        rec = {"c": c, "f": f, "hw": h, "macs": c * f * h * h}
        for key, text in (("iree", matmul_module(w, h)), ("kernel", kernel_module(w, h))):
            path = out_dir / f"{key}_{c}_{f}_{h}.vmfb"
            path.write_bytes(compile_bytecode(materialize_microkernels(text_to_bytecode(text), "host"), "host"))
            rec[key] = str(path)
        records.append(rec)
        print(f"compiled {c}->{f} {h}x{h}", file=sys.stderr, flush=True)
    return records


def main() -> int:
    from microkernels import measure

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--layers", default="", help="CxFxH,... (default: ResNet-50's and ResNet-18's 1x1 shapes)")
    args = parser.parse_args()
    layers = [tuple(int(v) for v in s.split("x")) for s in args.layers.split(",") if s] or LAYERS
    with tempfile.TemporaryDirectory(prefix="spattern-conv1x1-") as tmp:
        records = build(Path(tmp), layers)
        # microkernels.measure times the "dense" module against each "sparse" one on an input [1, c, hw, hw]
        shaped = [{**r, "dense": r["iree"], "sparse": [{"r": 0.0, "vmfb": r["kernel"]}]} for r in records]
        sync = measure(shaped, 1, args.rounds, sync=True)
        two = measure(shaped, 2, args.rounds)
    print("| layer | IREE matmul ms, 1 thread (GFLOP/s) | kernel ms (GFLOP/s) | IREE / kernel | "
          "2 threads: IREE ms | kernel ms | IREE / kernel |")
    print("|---|---|---|---|---|---|---|")
    for a, b in zip(sync, two):
        flop = 2 * a["macs"]
        t1, k1, t2, k2 = a["t"]["dense"], a["t"]["r0.0"], b["t"]["dense"], b["t"]["r0.0"]
        print(f"| {a['c']}->{a['f']} {a['hw']}x{a['hw']} | {t1 * 1e3:.3f} ({flop / t1 / 1e9:.0f}) | "
              f"{k1 * 1e3:.3f} ({flop / k1 / 1e9:.0f}) | {t1 / k1:.2f}x | {t2 * 1e3:.3f} | {k2 * 1e3:.3f} | "
              f"{t2 / k2:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
