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

from spattern.dialect.constants import constant_array  # noqa: E402
from spattern.dialect.sparse_pattern import CONV2D, i32_elements, load_dialect, ops_named  # noqa: E402
from spattern.errors import PlanError  # noqa: E402
from spattern.passes.base import PassContext  # noqa: E402
from spattern.passes.filter_kernel_reorder import FilterKernelReorder  # noqa: E402
from spattern.passes.lower_to_microkernels import LowerToMicrokernels  # noqa: E402
from spattern.passes.registry import OPTIMIZE, make_pass  # noqa: E402
from spattern.microkernels.microkernel_abi import H  # noqa: E402
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


def _optimized(text: str, chunk_size: int = 0) -> tuple[ir.Context, ir.Module, ir.Operation]:
    """The module after the optimisation passes (FKR with that chunk_size option, group-patterns,
    compact-weights, reuse-loads), and its conv."""
    ctx = ir.Context()
    load_dialect(ctx)
    with ctx:
        module = ir.Module.parse(text)
        pctx = PassContext()
        FilterKernelReorder(chunk_size=chunk_size).run(module, pctx)
        for name in OPTIMIZE[2:]:
            make_pass(name).run(module, pctx)
    return ctx, module, ops_named(module, CONV2D)[0]


def _table(op: ir.Operation, name: str) -> np.ndarray:
    return np.array(ir.DenseElementsAttr(op.attributes[name])).astype(np.int64)


def _lower_edited(ctx: ir.Context, module: ir.Module) -> tuple[bytes, np.ndarray]:
    """lower-to-microkernels on the (edited) module: its bytecode and the i32 table it packed."""
    with ctx:
        LowerToMicrokernels().run(module, PassContext())
        call = next(op for op in ops_named(module, "func.call")
                    if ir.FlatSymbolRefAttr(op.attributes["callee"]).value == "spattern_mk_0")
        table = constant_array(call.operands[2]).astype(np.int64)
        buf = io.BytesIO()
        module.operation.write_bytecode(buf)
    return buf.getvalue(), table


def _section(table: np.ndarray, slot: str, n: int) -> np.ndarray:
    at = int(table[H[slot]])
    return table[at:at + n]


def test_kernel_follows_hand_edited_tables():
    """The passes' tables are what the kernel runs: a run of group-patterns split in two (a cut the passes never
    make: same chunk, channel and pattern) and a run whose reuse-loads mark is cleared (each of its kernels loads
    its own taps) appear in the packed table exactly so, the chunks and filter indices are FKR's and
    compact-weights' as they are, and the module still matches torch."""
    require_microkernels("host")
    rng = np.random.default_rng(7)
    text, dense, bias = conv_module(rng, n=1, f=70, connectivity=0.3)
    ctx, module, op = _optimized(text)
    with ctx:
        runs, marks = _table(op, "runs"), _table(op, "run_taps")
        long_runs = np.nonzero(runs[:, 2] >= 3)[0]
        split, cleared = int(long_runs[0]), int(long_runs[1])
        first, pattern, count = runs[split]
        runs = np.concatenate([runs[:split], [[first, pattern, 1], [first + 1, pattern, count - 1]],
                               runs[split + 1:]])
        marks = np.concatenate([marks[:split], [marks[split]], marks[split:]])
        marks[cleared + 1] = 0  # the cleared run moved one row down
        op.attributes["runs"] = i32_elements(runs)
        op.attributes["run_taps"] = i32_elements(marks)
        chunks = _table(op, "chunk_filters")
        sizes = _table(op, "chunk_sizes")
        kernel_filter = _table(op, "kernel_filter")
    k = int(kernel_filter.size)
    starts = set(runs[:, 0].tolist())
    f0, _, c0 = runs[cleared + 1]
    starts |= set(range(f0, f0 + c0))  # the unmarked run: one kernel run per kernel
    expect_run_k = sorted(starts) + [k]
    bytecode, table = _lower_edited(ctx, module)
    assert table[H["K"]] == k and table[H["NCHUNKS"]] == len(sizes) == 2
    assert _section(table, "OFF_RUN_K", len(expect_run_k)).tolist() == expect_run_k
    fil = _section(table, "OFF_CHUNK_FIL", 128 * len(sizes)).reshape(len(sizes), 128)
    assert np.concatenate([fil[i, :s] for i, s in enumerate(sizes)]).tolist() == chunks.tolist()
    fidx = _section(table, "OFF_FIDX", -(-k // 4)).astype(np.int32).view(np.uint8)[:k]
    assert fidx.tolist() == kernel_filter.tolist()
    x = rng.standard_normal((1, 6, 11, 10)).astype(np.float32)
    y = _run_host(bytecode, x)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(dense), torch.from_numpy(bias),
                                     padding=1).numpy()
    assert np.abs(y - ref).max() <= 1e-4 * np.abs(ref).max()


def test_kernel_runs_the_chunks_fkr_chose():
    """FKR told to deal 70 filters into 16-filter chunks (its rule would say 64): the kernel runs 5 chunks, those
    of the attribute, and still matches torch."""
    require_microkernels("host")
    rng = np.random.default_rng(9)
    text, dense, bias = conv_module(rng, n=1, f=70, connectivity=0.3)
    ctx, module, op = _optimized(text, chunk_size=16)
    with ctx:
        chunks, sizes = _table(op, "chunk_filters"), _table(op, "chunk_sizes")
    assert sizes.tolist() == [14] * 5
    bytecode, table = _lower_edited(ctx, module)
    assert table[H["NCHUNKS"]] == 5
    fil = _section(table, "OFF_CHUNK_FIL", 128 * 5).reshape(5, 128)
    assert np.concatenate([fil[i, :s] for i, s in enumerate(sizes)]).tolist() == chunks.tolist()
    x = rng.standard_normal((1, 6, 11, 10)).astype(np.float32)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(dense), torch.from_numpy(bias),
                                     padding=1).numpy()
    assert np.abs(_run_host(bytecode, x) - ref).max() <= 1e-4 * np.abs(ref).max()


@pytest.mark.parametrize("table,message", [("chunk_filters", "chunk_filters"), ("runs", "runs"),
                                           ("run_taps", "run_taps")])
def test_inconsistent_edited_table_is_a_plan_error(table, message):
    """A hand-edited table the kernel cannot follow is a PlanError naming the table, before anything runs: two
    filters swapped between chunks (their kernels still sit in the old chunks), a run stretched over the next
    run's kernels (another pattern or channel), a reuse mark of taps that are not the run's pattern's."""
    ctx, module, op = _optimized(conv_module(np.random.default_rng(8), f=70, connectivity=0.3)[0])
    with ctx:
        values = _table(op, table)
        if table == "chunk_filters":
            sizes = _table(op, "chunk_sizes")
            a, b = 0, int(sizes[0])  # the first filters of chunks 0 and 1
            values[a], values[b] = values[b], values[a]
            values[:sizes[0]].sort()
            values[sizes[0]:].sort()
        elif table == "runs":
            values[0, 2] += values[1, 2]
            values = np.delete(values, 1, axis=0)
            op.attributes["run_taps"] = i32_elements(np.delete(_table(op, "run_taps"), 1))
        else:
            values[0] = 1 << 8
        op.attributes[table] = i32_elements(values)
        with pytest.raises(PlanError, match=message):
            LowerToMicrokernels().run(module, PassContext())
