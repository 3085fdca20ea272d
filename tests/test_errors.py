"""Every error a user can cause is a spattern error with a message they can act on."""

import subprocess
import sys

import numpy as np
import pytest
import torch

import spattern
from spattern import models
from spattern.errors import (CompileError, InputError, ModelExportError, ModelLoadError, OutputPathError,
                             UnknownTargetError)
from spattern.runtime.compiler import compile_bytecode


class DataDependent(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        if y.sum() > 0:  # data-dependent Python control flow: not traceable
            return y * 2
        return y


@pytest.fixture(scope="module")
def small():
    model = models.build("vgg_small", num_classes=10, image_size=32, width=0.25)
    x = torch.randn(1, 3, 32, 32)
    return model, x, spattern.compile(model, x)


def test_untraceable_model_names_the_problem():
    with pytest.raises(ModelExportError, match="torch.export could not trace DataDependent"):
        spattern.compile(DataDependent(), torch.randn(1, 3, 8, 8))


def test_unknown_target_lists_valid_ones():
    with pytest.raises(UnknownTargetError, match="valid targets: host, arm64-android"):
        spattern.compile(torch.nn.Identity(), torch.randn(1, 3), target="tpu")


def test_wrong_input_shape(small):
    _, _, compiled = small
    with pytest.raises(InputError, match=r"shape \(1, 3, 16, 16\).*expects \(1, 3, 32, 32\)"):
        compiled.run(np.zeros((1, 3, 16, 16), np.float32))


def test_wrong_input_dtype(small):
    _, _, compiled = small
    with pytest.raises(InputError, match="dtype float64.*float32"):
        compiled.run(np.zeros((1, 3, 32, 32), np.float64))


def test_wrong_input_count(small):
    _, _, compiled = small
    with pytest.raises(InputError, match="takes 1 input"):
        compiled.run(np.zeros((1, 3, 32, 32), np.float32), np.zeros(3, np.float32))


def test_unwritable_output_path(small, tmp_path):
    _, _, compiled = small
    with pytest.raises(OutputPathError, match="does not exist"):
        compiled.save(tmp_path / "missing" / "m.vmfb")
    (tmp_path / "adir.vmfb").mkdir()
    with pytest.raises(OutputPathError, match="folder of that name"):
        compiled.save(tmp_path / "adir.vmfb")


def test_failed_write_leaves_nothing(small, tmp_path, monkeypatch):
    _, _, compiled = small
    target = tmp_path / "m.vmfb"

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        compiled.save(target)
    assert list(tmp_path.iterdir()) == []


def test_load_rejects_non_module(tmp_path):
    bad = tmp_path / "x.vmfb"
    bad.write_bytes(b"not a module at all")
    with pytest.raises(ModelLoadError, match="not an IREE module"):
        spattern.load(bad)
    with pytest.raises(ModelLoadError, match="no compiled module"):
        spattern.load(tmp_path / "missing.vmfb")


def test_compiler_failure_keeps_ir_and_prints_repro_command(tmp_path):
    with pytest.raises(CompileError) as e:
        compile_bytecode(b"this is not MLIR", "host", failure_dir=tmp_path)
    msg = str(e.value)
    assert "iree-compile" in msg and str(tmp_path / "failing-input.mlirbc") in msg
    assert (tmp_path / "failing-input.mlirbc").read_bytes() == b"this is not MLIR"


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spattern", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_errors_are_one_line_not_tracebacks(tmp_path):
    r = _cli("compile", "--zoo", "resnet18", "--input-shape", "1,3,32,32", "--target", "nope", "-o",
             str(tmp_path / "o.vmfb"))
    assert r.returncode == 2
    assert "unknown target 'nope'" in r.stderr and "Traceback" not in r.stderr
    r = _cli("compile", str(tmp_path / "missing.pt2"), "-o", str(tmp_path / "o.vmfb"))
    assert r.returncode == 2 and "no model at" in r.stderr and "Traceback" not in r.stderr
    r = _cli("compile", "--zoo", "resnet18", "--input-shape", "1,3,x", "-o", str(tmp_path / "o.vmfb"))
    assert r.returncode == 2 and "--input-shape" in r.stderr


def test_cli_pickle_is_refused(tmp_path):
    import pickle

    evil = tmp_path / "w.pt"
    evil.write_bytes(pickle.dumps({"a": object()}))
    r = _cli("compile", str(evil), "--zoo", "resnet18", "-o", str(tmp_path / "o.vmfb"))
    assert r.returncode == 2 and "never unpickles" in r.stderr
