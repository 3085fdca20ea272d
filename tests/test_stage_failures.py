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
