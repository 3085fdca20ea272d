"""The CLI end to end: compile a saved ExportedProgram and a zoo state dict, run it on .npy input."""

import subprocess
import sys

import numpy as np
import torch

from spattern import models

from conftest import assert_close_to_torch


def _cli(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "spattern", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r


def test_compile_exported_program_and_run(tmp_path):
    model = models.build("vgg_small", num_classes=10, image_size=32, width=0.25)
    x = torch.randn(1, 3, 32, 32)
    torch.export.save(torch.export.export(model, (x,)), tmp_path / "m.pt2")
    _cli("compile", str(tmp_path / "m.pt2"), "--input-shape", "1,3,32,32", "-o", str(tmp_path / "m.vmfb"))
    np.save(tmp_path / "x.npy", x.numpy())
    r = _cli("run", str(tmp_path / "m.vmfb"), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"))
    assert "output 0: shape (1, 10)" in r.stdout
    with torch.no_grad():
        assert_close_to_torch(np.load(tmp_path / "y.npy"), model(x).numpy())


def test_compile_state_dict_with_zoo_name(tmp_path):
    from safetensors.torch import save_file

    model = models.build("resnet18", num_classes=10, image_size=32, width=0.25, seed=3)
    save_file(model.state_dict(), tmp_path / "w.safetensors")
    r = subprocess.run([sys.executable, "-m", "spattern", "compile", str(tmp_path / "w.safetensors"), "--zoo",
                        "resnet18", "--num-classes", "10", "--input-shape", "1,3,32,32", "-o",
                        str(tmp_path / "m.vmfb")], capture_output=True, text=True)
    # width 0.25 weights do not fit the full-width zoo model: a clear error, not a traceback
    assert r.returncode == 2 and "do not fit zoo model 'resnet18'" in r.stderr
    full = models.build("resnet18", num_classes=10, image_size=32, seed=3)
    torch.save(full.state_dict(), tmp_path / "w.pt")
    _cli("compile", str(tmp_path / "w.pt"), "--zoo", "resnet18", "--num-classes", "10", "--input-shape",
         "1,3,32,32", "-o", str(tmp_path / "m.vmfb"))
    assert (tmp_path / "m.vmfb").stat().st_size > 1000


def test_targets_lists_all():
    r = _cli("targets")
    for name in ["host", "arm64-android", "arm64-linux", "vulkan", "vulkan-adreno", "vulkan-mali"]:
        assert name in r.stdout
