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
from spattern.microkernels import kernels  # noqa: E402
from spattern.microkernels.microkernel_dispatch import MICROKERNEL_ATTR, materialize_microkernels  # noqa: E402
from conftest import require_microkernels  # noqa: E402


def _dense(a: np.ndarray, elt: str) -> str:
    shape = "x".join(str(d) for d in a.shape)
    return f'dense<"0x{a.tobytes().hex().upper()}"> : tensor<{shape}x{elt}>'


_MAP4 = "affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>"
_PAR4 = '["parallel", "parallel", "parallel", "parallel"]'


def _relu(src: str, dst: str, t: str) -> str:
    """A ReLU as torch-mlir writes it (cmpf ugt + select against 0)."""
    return f"""
  %{dst} = linalg.generic {{indexing_maps = [{_MAP4}, {_MAP4}], iterator_types = {_PAR4}}}
      ins(%{src} : {t}) outs(%e : {t}) {{
  ^bb0(%in: f32, %out: f32):
    %c = arith.cmpf ugt, %in, %zero : f32
    %s = arith.select %c, %in, %zero : f32
    linalg.yield %s : f32
  }} -> {t}"""


def _add(a: str, b: str, dst: str, t: str) -> str:
    return f"""
  %{dst} = linalg.generic {{indexing_maps = [{_MAP4}, {_MAP4}, {_MAP4}], iterator_types = {_PAR4}}}
      ins(%{a}, %{b} : {t}, {t}) outs(%e : {t}) {{
  ^bb0(%in: f32, %in2: f32, %out: f32):
    %s = arith.addf %in, %in2 : f32
    linalg.yield %s : f32
  }} -> {t}"""


def _conv1x1(src: str, dst: str, t: str) -> str:
    """dst = a 1x1 conv of src with every weight 0.5 (as linalg, which IREE compiles itself)."""
    f = t.split("x")[1]
    return f"""
  %k = arith.constant dense<0.5> : tensor<{f}x{f}x1x1xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : {t}) -> {t}
  %{dst} = linalg.conv_2d_nchw_fchw {{dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}}
      ins(%{src}, %k : {t}, tensor<{f}x{f}x1x1xf32>) outs(%z : {t}) -> {t}"""


# What follows the conv in conv_module: (extra function argument?, MLIR text after %y, returned value).
EPILOGUES = {
    "none": (False, lambda t: "", "y"),
    "relu": (False, lambda t: _relu("y", "r", t), "r"),
    "residual": (True, lambda t: _add("y", "res", "a", t), "a"),
    "residual_relu": (True, lambda t: _add("res", "y", "a", t) + _relu("a", "r", t), "r"),
    # the conv result has a second user: nothing may be fused
    "relu_two_users": (False, lambda t: _relu("y", "r", t) + _add("r", "y", "a", t), "a"),
    # a residual IREE computes with a conv of its own (a downsample branch) stays unfused
    "residual_from_conv": (True, lambda t: _conv1x1("res", "rc", t) + _add("y", "rc", "a", t), "a"),
}


def conv_module(rng, n=1, c=6, h=11, w=10, f=20, block=1, stride=1, library=(0, 7, 21, 55), connectivity=0.5,
                epilogue="none"):
    """Generic-form module with one sparse_pattern.conv2d and an epilogue (EPILOGUES; with a residual, main
    takes it as a second argument), plus the expanded dense weight and bias."""
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
    has_res, after, ret = EPILOGUES[epilogue]
    res_arg = f", %res: {o_t}" if has_res else ""
    text = f"""
func.func @main(%x: {x_t}{res_arg}) -> {o_t} {{
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : {o_t}
  %w = arith.constant {_dense(weights, "f32")}
  %b = arith.constant {_dense(bias, "f32")}
  %y = "sparse_pattern.conv2d"(%x, %w, %b) {{library = {_dense(lib, "i32")}, pattern_ids = {_dense(pid, "i32")},
      kept = {_dense(kept, "i8")}, filter_block = {block} : i64, strides = array<i64: {stride}, {stride}>,
      padding = array<i64: 1, 1>}} : ({x_t}, tensor<{k}x4xf32>, tensor<{f}xf32>) -> {o_t}{after(o_t)}
  return %{ret} : {o_t}
}}
"""
    return text, dense.reshape(f, c, 3, 3), bias


def lower(text: str, optimize: bool = False, stats: dict | None = None) -> tuple[str, bytes]:
    """lower-to-microkernels alone, or (optimize) after the passes whose tables switch on FKR and LRE."""
    ctx = ir.Context()
    load_dialect(ctx)
    with ctx:
        module = ir.Module.parse(text)
        pctx = PassContext()
        for name in (OPTIMIZE[1:] if optimize else []):
            make_pass(name).run(module, pctx)
        LowerToMicrokernels().run(module, pctx)
        if stats is not None:
            stats.update(pctx.stats["lower-to-microkernels"])
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
    require_microkernels("host")
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


def _run_host(bytecode: bytes, *inputs: np.ndarray) -> np.ndarray:
    vmfb = iree_compiler.compile_str(materialize_microkernels(bytecode, "host"), target_backends=["llvm-cpu"],
                                     extra_args=["--iree-llvmcpu-target-cpu=host"])
    config = iree_runtime.Config("local-task")
    ctx = iree_runtime.SystemContext(config=config)
    ctx.add_vm_module(iree_runtime.VmModule.copy_buffer(ctx.instance, vmfb))
    return np.asarray(ctx.modules.module.main(*inputs))


@pytest.mark.parametrize("epilogue,fused", [("relu", (1, 0)), ("residual", (0, 1)), ("residual_relu", (1, 1)),
                                            ("relu_two_users", (0, 0)), ("residual_from_conv", (0, 0)),
                                            ("none", (0, 0))])
@pytest.mark.parametrize("stride", [1, 2])
def test_epilogue_fused_and_matches_torch(epilogue, fused, stride):
    """A ReLU / residual add / both after the conv go into the kernel's write-out (no linalg.generic left, the
    residual passed as the call's 4th operand); a conv result with two users keeps its ops. Numerics through
    IREE against torch either way."""
    require_microkernels("host")
    rng = np.random.default_rng(10 + stride)
    text, dense, bias = conv_module(rng, n=2, stride=stride, f=70, epilogue=epilogue)
    stats: dict = {}
    asm, bytecode = lower(text, True, stats)
    assert (stats["fused_relu"], stats["fused_residual"]) == fused
    main = asm[asm.index("func.func @main"):]
    assert ("linalg.generic" in main) == (fused == (0, 0) and epilogue != "none")
    assert ("linalg.conv_2d" in main) == (epilogue == "residual_from_conv")
    assert ("%arg1)" in main.split("call @spattern_mk_0(")[1].split("\n")[0]) == bool(fused[1])
    x = rng.standard_normal((2, 6, 11, 10)).astype(np.float32)
    y = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(dense), torch.from_numpy(bias),
                                   stride=stride, padding=1)
    inputs = [x]
    if EPILOGUES[epilogue][0]:
        res = rng.standard_normal(tuple(y.shape)).astype(np.float32)
        inputs.append(res)
        r = torch.from_numpy(res)
        y = y + (0.5 * r.sum(dim=1, keepdim=True) if epilogue == "residual_from_conv" else r)
    if epilogue in ("relu", "residual_relu"):
        y = y.relu()
    if epilogue == "relu_two_users":
        y = y.relu() + y
    ref = y.numpy()
    out = _run_host(bytecode, *inputs)
    assert np.abs(out - ref).max() <= 1e-4 * np.abs(ref).max()
