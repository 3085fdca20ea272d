"""The CLI end to end: compile a saved ExportedProgram and a zoo state dict, run it on .npy input; prune a zoo
state dict into a folder that load_pruned reads back."""

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


def test_prune_state_dict_into_folder(tmp_path):
    from safetensors.torch import save_file

    from spattern.pruning import load_pruned

    model = models.build("vgg_small", num_classes=10, image_size=32, seed=1)
    save_file(model.state_dict(), tmp_path / "w.safetensors")
    (tmp_path / "fast.yaml").write_text("num_samples: 16\nsynth_steps: 4\npositions: 1024\nadmm_iters: 6\n"
                                        "distill_steps: 4\n")
    base = [sys.executable, "-m", "spattern", "prune", str(tmp_path / "w.safetensors"), "--zoo", "vgg_small",
            "--num-classes", "10", "--input-shape", "1,3,32,32", "--config", str(tmp_path / "fast.yaml")]
    bad = subprocess.run([*base, "--precision", "half", "-o", str(tmp_path / "bad")], capture_output=True, text=True)
    assert bad.returncode == 2 and "precision must be one of float32, bfloat16, auto" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "bad").exists()
    r = subprocess.run([*base, "--precision", "auto", "--connectivity", "0.5", "-o", str(tmp_path / "pruned")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    loaded = load_pruned(tmp_path / "pruned")
    assert loaded.plan.layers and all(0.4 <= lp.kept_fraction() <= 0.6 for lp in loaded.plan.layers)


def test_targets_lists_all():
    r = _cli("targets")
    for name in ["host", "arm64-android", "arm64-linux", "vulkan", "vulkan-adreno", "vulkan-mali"]:
        assert name in r.stdout


def test_targets_reads_at_80_columns_in_a_pipe():
    import os

    from spattern.runtime.targets import TARGETS

    r = subprocess.run([sys.executable, "-m", "spattern", "targets"], capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and len(lines) <= 35, r.stdout
    starts = {line.split()[0] for line in lines if line and not line.startswith(" ")}
    assert set(TARGETS) <= starts and "…" not in r.stdout
