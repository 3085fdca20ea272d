"""lower-to-microkernels on a hand-written `sparse_pattern.conv2d`: the IR it leaves, and the compiled module's
numerics through IREE against torch."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from spattern.patterns import CANDIDATES

ir = pytest.importorskip("torch_mlir.ir")
iree_compiler = pytest.importorskip("iree.compiler")
iree_runtime = pytest.importorskip("iree.runtime")

from spattern.dialect.sparse_pattern import load_dialect  # noqa: E402
from spattern.passes.base import PassContext  # noqa: E402
from spattern.passes.lower_to_microkernels import LowerToMicrokernels  # noqa: E402
from spattern.passes.pipeline import OPTIMIZE, make_pass  # noqa: E402
from spattern.runtime import kernels  # noqa: E402
from spattern.runtime.microkernel_dispatch import MICROKERNEL_ATTR, materialize_microkernels  # noqa: E402


def _dense(a: np.ndarray, elt: str) -> str:
    shape = "x".join(str(d) for d in a.shape)
    return f'dense<"0x{a.tobytes().hex().upper()}"> : tensor<{shape}x{elt}>'


def conv_module(rng, n=1, c=6, h=11, w=10, f=20, block=1, stride=1, library=(0, 7, 21, 55), connectivity=0.5):
    """Generic-form module with one sparse_pattern.conv2d, plus the expanded dense weight and bias."""
    lib = np.array([CANDIDATES[i] for i in library], dtype=np.int32)
    nb = -(-f // block)
    pid = rng.integers(0, len(library), (nb, c)).astype(np.int32)
    kept = (rng.random((nb, c)) >= connectivity).astype(np.int8)
    fk = kept[np.arange(f) // block].astype(bool)
    k = int(fk.sum())
    weights = rng.standard_normal((k, 4)).astype(np.float32)
    bias = rng.standard_normal(f).astype(np.float32)
    dense = np.zeros((f, c, 9), np.float32)
    ff, cc = np.nonzero(fk)
    dense[ff[:, None], cc[:, None], lib[pid[ff // block, cc]]] = weights
    ho = (h + 2 - 3) // stride + 1
    wo = (w + 2 - 3) // stride + 1
    x_t, o_t = f"tensor<{n}x{c}x{h}x{w}xf32>", f"tensor<{n}x{f}x{ho}x{wo}xf32>"
    text = f"""
func.func @main(%x: {x_t}) -> {o_t} {{
  %w = arith.constant {_dense(weights, "f32")}
  %b = arith.constant {_dense(bias, "f32")}
  %y = "sparse_pattern.conv2d"(%x, %w, %b) {{library = {_dense(lib, "i32")}, pattern_ids = {_dense(pid, "i32")},
      kept = {_dense(kept, "i8")}, filter_block = {block} : i64, strides = array<i64: {stride}, {stride}>,
      padding = array<i64: 1, 1>}} : ({x_t}, tensor<{k}x4xf32>, tensor<{f}xf32>) -> {o_t}
  return %y : {o_t}
}}
"""
    return text, dense.reshape(f, c, 3, 3), bias


def lower(text: str, optimize: bool = False) -> tuple[str, bytes]:
    """lower-to-microkernels alone, or (optimize) after the passes whose tables switch on FKR and LRE."""
    ctx = ir.Context()
    load_dialect(ctx)
    with ctx:
        module = ir.Module.parse(text)
        pctx = PassContext()
        for name in (OPTIMIZE[1:] if optimize else []):
            make_pass(name).run(module, pctx)
        LowerToMicrokernels().run(module, pctx)
        buf = io.BytesIO()
        module.operation.write_bytecode(buf)
        return module.operation.get_asm(large_elements_limit=16), buf.getvalue()


def test_pass_emits_pad_and_call():
    text, _, _ = conv_module(np.random.default_rng(0))
    asm, _ = lower(text)
    assert "sparse_pattern" not in asm
    assert "tensor.pad" in asm
    assert f"{MICROKERNEL_ATTR} = {{workgroups =" in asm
    assert "call @spattern_mk_0(" in asm


@pytest.mark.parametrize("stride,block,optimize", [(1, 1, True), (1, 1, False), (2, 8, True)])
def test_lowered_module_matches_torch(stride, block, optimize):
    try:
        kernels.kernel_object("host")
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"microkernels not built: {e}")
    rng = np.random.default_rng(stride)
    text, dense, bias = conv_module(rng, n=2, stride=stride, block=block, f=70)
    _, bytecode = lower(text, optimize)
    vmfb = iree_compiler.compile_str(materialize_microkernels(bytecode, "host"), target_backends=["llvm-cpu"],
                                     extra_args=["--iree-llvmcpu-target-cpu=host"])
    config = iree_runtime.Config("local-task")
    ctx = iree_runtime.SystemContext(config=config)
    ctx.add_vm_module(iree_runtime.VmModule.copy_buffer(ctx.instance, vmfb))
    x = rng.standard_normal((2, 6, 11, 10)).astype(np.float32)
    y = np.asarray(ctx.modules.module.main(x))
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(dense), torch.from_numpy(bias),
                                     stride=stride, padding=1).numpy()
    assert np.abs(y - ref).max() <= 1e-4 * np.abs(ref).max()
