"""No failure inside the compiler ends in a raw traceback: whatever a pass, the export, the finalize or the
compile stage raises becomes a spattern error that says what to do (monkeypatched failures)."""

from __future__ import annotations

import subprocess

import pytest
import torch
from torch import nn

from spattern.errors import CompileError, ModelExportError, ToolUnavailableError
from spattern.passes.filter_kernel_reorder import FilterKernelReorder
from spattern.pipeline import new_state, run_pipeline
from spattern.runtime import compiler
from spattern.testing import random_plan_for


class TwoConvs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(4, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))


@pytest.fixture(scope="module")
def pruned():
    torch.manual_seed(0)
    model, plan = random_plan_for(TwoConvs().eval(), filter_block=1, connectivity=0.25)
    return model, plan, torch.randn(1, 4, 16, 16)


@pytest.mark.parametrize("error", [AttributeError("'NoneType' object has no attribute 'owner'"),
                                   AssertionError("chunk table"), RuntimeError("boom")])
def test_any_exception_in_a_pass_becomes_a_compile_error_with_a_repro(pruned, tmp_path, monkeypatch, error):
    model, plan, x = pruned

    def fail(self, module, ctx):
        raise error

    monkeypatch.setattr(FilterKernelReorder, "run", fail)
    state = new_state(model, [x], "host", plan=plan, lowering="linalg", dump_dir=tmp_path)
    with pytest.raises(CompileError) as e:
        run_pipeline(state, stop_after="passes")
    msg = str(e.value)
    failing = tmp_path / "failed-filter-kernel-reorder.mlirbc"
    assert f"pass filter-kernel-reorder failed: {type(error).__name__}: {error}" in msg
    assert failing.is_file() and str(failing) in msg
    assert "spattern.opt --pass-pipeline=filter-kernel-reorder --plan" in msg


def test_export_failure_inside_torch_mlir_is_a_model_export_error(pruned, monkeypatch):
    model, plan, x = pruned
    from torch_mlir import fx

    def fail(*args, **kwargs):
        raise RuntimeError("unsupported op: aten.frobnicate")

    monkeypatch.setattr(fx, "export_and_import", fail)
    with pytest.raises(ModelExportError, match="torch-mlir could not import the model: unsupported op"):
        run_pipeline(new_state(model, [x], "host", plan=plan), stop_after="export")


def test_a_stage_bug_is_one_compile_error_that_says_how_to_keep_the_ir(pruned, monkeypatch):
    model, plan, x = pruned

    def fail(module):
        raise KeyError("resource")

    monkeypatch.setattr("spattern.pipeline.module_to_bytecode", fail)
    with pytest.raises(CompileError) as e:
        run_pipeline(new_state(model, [x], "host", plan=plan, lowering="linalg"), stop_after="finalize")
    msg = str(e.value)
    assert msg.startswith("the finalize stage failed: KeyError: 'resource'")
    assert "--dump-dir" in msg and "spattern bug" in msg


def test_a_file_error_in_a_stage_names_the_file(pruned, monkeypatch):
    model, plan, x = pruned

    def fail(module):
        raise OSError(28, "No space left on device", "/tmp/spattern-compile-x/input.mlirbc")

    monkeypatch.setattr("spattern.pipeline.module_to_bytecode", fail)
    with pytest.raises(CompileError, match=r"cannot read or write a file \(/tmp/spattern-compile-x/input.mlirbc\): "
                                           "No space left on device"):
        run_pipeline(new_state(model, [x], "host", plan=plan, lowering="linalg"), stop_after="finalize")


def test_missing_iree_compile_binary_is_a_tool_error(monkeypatch):
    monkeypatch.setattr(compiler, "iree_compile_path", lambda: "/nonexistent/iree-compile")
    with pytest.raises(ToolUnavailableError, match="cannot run /nonexistent/iree-compile.*pip install"):
        compiler.compile_bytecode(b"", "host")


def test_no_compiler_wheel_is_a_tool_error(monkeypatch):
    import iree.compiler.tools.binaries as binaries

    def missing(name):
        raise OSError(f"could not find {name}")

    monkeypatch.setattr(binaries, "find_tool", missing)
    with pytest.raises(ToolUnavailableError, match="pip install iree-base-compiler"):
        compiler.iree_compile_path()


def test_an_iree_compile_crash_is_named_without_its_stack_frames(tmp_path, monkeypatch):
    stderr = ("Please report issues to https://github.com/iree-org/iree/issues and include the crash backtrace.\n"
              " #0 0x00007fd34675a0ab llvm::sys::PrintStackTrace(llvm::raw_ostream&, int) Signals.cpp:0:0\n"
              " #1 0x00007fd3467571fe llvm::sys::RunSignalHandlers() Signals.cpp:0:0\n"
              " #4 0x00007fd348594f70 mlir::iree_compiler::DispatchCreation::decideFusableLinalgOps(...)\n")

    def crash(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, -11, "", stderr)

    monkeypatch.setattr(compiler.subprocess, "run", crash)
    with pytest.raises(CompileError) as e:
        compiler.compile_bytecode(b"bytes", "host", failure_dir=tmp_path)
    msg = str(e.value)
    assert "iree-compile crashed, exit status -11; 3 stack frames omitted" in msg
    assert "0x00007fd3" not in msg and str(tmp_path / "failing-input.mlirbc") in msg


# Two pattern convs; the second has unequal strides, which lower-to-linalg refuses after it has lowered the first.
_HALF_LOWERABLE = """
func.func @f(%x: tensor<1x2x4x4xf32>) -> tensor<1x2x4x2xf32> {
  %w = arith.constant dense<[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [9.0, 10.0, 11.0, 12.0]]> : tensor<3x4xf32>
  %b = arith.constant dense<[0.5, -0.5]> : tensor<2xf32>
  %0 = "sparse_pattern.conv2d"(%x, %w, %b) {library = dense<[[1, 3, 4, 5], [3, 4, 5, 7]]> : tensor<2x4xi32>, pattern_ids = dense<[[0, 1], [1, 0]]> : tensor<2x2xi32>, kept = dense<[[1, 1], [1, 0]]> : tensor<2x2xi8>, filter_block = 1 : i64, strides = array<i64: 1, 1>, padding = array<i64: 1, 1>} : (tensor<1x2x4x4xf32>, tensor<3x4xf32>, tensor<2xf32>) -> tensor<1x2x4x4xf32>
  %1 = "sparse_pattern.conv2d"(%0, %w, %b) {library = dense<[[1, 3, 4, 5], [3, 4, 5, 7]]> : tensor<2x4xi32>, pattern_ids = dense<[[0, 1], [1, 0]]> : tensor<2x2xi32>, kept = dense<[[1, 1], [1, 0]]> : tensor<2x2xi8>, filter_block = 1 : i64, strides = array<i64: 1, 2>, padding = array<i64: 1, 1>} : (tensor<1x2x4x4xf32>, tensor<3x4xf32>, tensor<2xf32>) -> tensor<1x2x4x2xf32>
  return %1 : tensor<1x2x4x2xf32>
}
"""


def _repro(msg: str) -> list[str]:
    import shlex

    return shlex.split(msg.split("reproduce: ", 1)[1].splitlines()[0])


def test_a_failing_pass_keeps_the_module_before_it_and_its_command_reproduces_the_failure(tmp_path):
    from torch_mlir import ir

    from spattern.dialect.sparse_pattern import conv2d_ops, load_dialect
    from spattern.passes.registry import run_passes

    context = ir.Context()
    load_dialect(context)
    with context:
        module = ir.Module.parse(_HALF_LOWERABLE)
    with pytest.raises(CompileError) as e:
        run_passes(module, None, ["lower-to-linalg"], dump_dir=tmp_path, mmt4d_tile=16)
    msg = str(e.value)
    failing = tmp_path / "failed-lower-to-linalg.mlirbc"
    assert "strides (1, 2) differ" in msg and f"the module before lower-to-linalg (bytecode): {failing}" in msg
    assert len(conv2d_ops(module)) == 1  # the pass had lowered the first conv when it failed ...
    with context:
        kept = ir.Module.parse(failing.read_bytes())
    assert len(conv2d_ops(kept)) == 2  # ... but the file holds the module before it
    cmd = _repro(msg)
    assert cmd[cmd.index("--mmt4d-tile") + 1] == "16"
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "error: pass lower-to-linalg failed: CompileError: lower-to-linalg: strides (1, 2) differ" in proc.stderr


def test_a_pass_that_breaks_a_dialect_invariant_raises_pattern_verify_error_with_a_repro(pruned, tmp_path,
                                                                                         monkeypatch):
    from torch_mlir import ir

    from spattern.errors import PatternVerifyError

    model, plan, x = pruned
    real_run = FilterKernelReorder.run

    def scramble(self, module, ctx):
        real_run(self, module, ctx)
        from spattern.dialect.sparse_pattern import conv2d_ops, i32_elements
        import numpy as np

        with module.context:
            op = conv2d_ops(module)[0]
            order = np.array(ir.DenseIntElementsAttr(op.attributes["kernel_order"]))
            op.attributes["kernel_order"] = i32_elements(np.zeros_like(order))

    monkeypatch.setattr(FilterKernelReorder, "run", scramble)
    state = new_state(model, [x], "host", plan=plan, lowering="linalg", dump_dir=tmp_path)
    with pytest.raises(PatternVerifyError, match="kernel_order is not a permutation") as e:
        run_pipeline(state, stop_after="passes")
    assert "failed-filter-kernel-reorder.mlirbc" in str(e.value) and "reproduce: " in str(e.value)


def test_a_materialize_failure_keeps_its_input_and_its_command_reproduces_the_failure(pruned, tmp_path,
                                                                                      monkeypatch):
    from spattern.microkernels.microkernel_dispatch import text_to_bytecode

    model, plan, x = pruned
    bad = text_to_bytecode("func.func private @mk(%x: tensor<4xf32>) -> tensor<4xf32> "
                           "attributes {spattern.microkernel = {workgroups = 1 : i64}}")
    monkeypatch.setattr("spattern.pipeline.module_to_bytecode", lambda module: bad)
    state = new_state(model, [x], "host", plan=plan, lowering="microkernels", dump_dir=tmp_path)
    with pytest.raises(CompileError) as e:
        run_pipeline(state, stop_after="finalize")
    msg = str(e.value)
    failing = tmp_path / "failed-materialize-microkernels.mlirbc"
    assert "microkernel declaration @mk must take" in msg and failing.read_bytes() == bad
    proc = subprocess.run(_repro(msg), capture_output=True, text=True)
    assert proc.returncode == 1 and "error: microkernel declaration @mk must take" in proc.stderr
