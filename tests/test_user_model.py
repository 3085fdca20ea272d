"""A user's own architecture as `path/to/model.py:Name` with --weights: imported from the path as their training
script would, never unpickled; each way it can go wrong is a ModelLoadError that says what to fix; a pruned
folder records the source, so `spattern compile FOLDER` rebuilds the model."""

import json
import re
import subprocess
import sys

import pytest
import torch

from spattern.errors import ModelLoadError
from spattern.modelfile import load_model

NET = '''
import torch
from torch import nn
from helper import WIDTH  # a sibling import, as the training script next to it would do


class Net(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, WIDTH, 3, padding=1), nn.BatchNorm2d(WIDTH), nn.ReLU(),
                                      nn.Conv2d(WIDTH, WIDTH, 3, padding=1), nn.BatchNorm2d(WIDTH), nn.ReLU(),
                                      nn.Conv2d(WIDTH, WIDTH, 3, padding=1), nn.BatchNorm2d(WIDTH), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(WIDTH, classes)

    def forward(self, x):
        return self.head(self.features(x))


def make_small():
    return Net(3)


def needs_classes(classes):
    return Net(classes)


class NotAModule:
    pass


def broken():
    raise ValueError("bad config")


instance = Net()
'''
RAISE_LINE = NET.splitlines().index('    raise ValueError("bad config")') + 1


@pytest.fixture()
def user_dir(tmp_path):
    (tmp_path / "net.py").write_text(NET)
    (tmp_path / "helper.py").write_text("WIDTH = 8\n")
    return tmp_path


def _weights(user_dir, classes=10, seed=0):
    from safetensors.torch import save_file

    model = load_model(f"{user_dir}/net.py:Net").model
    if classes != 10:
        model = load_model(f"{user_dir}/net.py:make_small").model
    torch.manual_seed(seed)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    save_file(model.state_dict(), user_dir / f"w{classes}.safetensors")
    torch.save(model.state_dict(), user_dir / f"w{classes}.pt")
    return model


def test_class_and_factory_with_safetensors_and_pt_weights(user_dir):
    want = _weights(user_dir)
    for name, w in (("Net", "w10.safetensors"), ("Net", "w10.pt")):
        loaded = load_model(f"{user_dir}/net.py:{name}", weights=user_dir / w)
        assert not loaded.model.training and loaded.source.file == (user_dir / "net.py").resolve()
        for k, v in want.state_dict().items():
            assert torch.equal(loaded.model.state_dict()[k], v), k
    small = _weights(user_dir, classes=3)
    got = load_model(f"{user_dir}/net.py:make_small", weights=user_dir / "w3.pt").model
    assert torch.equal(got.head.weight, small.head.weight)
    assert str(user_dir) not in sys.path  # the file's folder was on sys.path only while it was imported


@pytest.mark.parametrize("name, message", [
    ("Nope", "has no attribute 'Nope'; it defines Net, broken, make_small, needs_classes"),
    ("instance", "is a module instance, not a class or factory; name the class (Net)"),
    ("NotAModule", "is a class that is not an nn.Module subclass"),
    ("needs_classes", "needs_classes() needs arguments (classes); spattern calls it with none"),
    ("broken", f"broken() raised ValueError (net.py line {RAISE_LINE}): bad config"),
    ("WIDTH", "is of type int, not an nn.Module class"),
])
def test_what_is_named_must_build_a_module(user_dir, name, message):
    with pytest.raises(ModelLoadError, match=re.escape(message)):
        load_model(f"{user_dir}/net.py:{name}")


def test_missing_file_import_error_and_mismatched_weights(user_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="no Python file at .*gone.py"):
        load_model(f"{tmp_path}/gone.py:Net")
    (user_dir / "bad.py").write_text("import torch\n\nx = 1 / 0\n")
    with pytest.raises(ModelLoadError, match=r"importing .*bad.py raised ZeroDivisionError \(bad.py line 3\)"):
        load_model(f"{user_dir}/bad.py:Net")
    _weights(user_dir, classes=3)
    with pytest.raises(ModelLoadError, match="do not fit Net from .*net.py: only the classifier differs .*these "
                                             "weights have 3 classes; build the model with 3 classes"):
        load_model(f"{user_dir}/net.py:Net", weights=user_dir / "w3.pt")
    torch.save({"conv.weight": torch.zeros(2, 3, 3, 3)}, user_dir / "other.pt")
    with pytest.raises(ModelLoadError, match="keys are missing .*Are these the weights of another architecture\\?"):
        load_model(f"{user_dir}/net.py:Net", weights=user_dir / "other.pt")
    torch.save(torch.nn.Linear(2, 2), user_dir / "pickled.pt")  # a whole pickled module: refused, not run
    with pytest.raises(ModelLoadError, match="never unpickles"):
        load_model(f"{user_dir}/net.py:Net", weights=user_dir / "pickled.pt")
    with pytest.raises(ModelLoadError, match="either --zoo vgg_small or the architecture"):
        load_model(f"{user_dir}/net.py:Net", zoo="vgg_small")


def test_prune_cli_records_the_source_and_the_folder_rebuilds(user_dir):
    from spattern.pruning.prune import load_pruned

    _weights(user_dir)
    (user_dir / "fast.yaml").write_text("num_samples: 8\nsynth_steps: 3\npositions: 512\nadmm_iters: 4\n"
                                        "distill_steps: 0\n")
    out = user_dir / "pruned"
    r = subprocess.run([sys.executable, "-m", "spattern", "prune", f"{user_dir}/net.py:Net", "--weights",
                        str(user_dir / "w10.safetensors"), "--input-shape", "1,3,16,16", "--config",
                        str(user_dir / "fast.yaml"), "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    info = json.loads((out / "model.json").read_text())
    assert info["source"] == f"{(user_dir / 'net.py').resolve()}:Net" and info["image_size"] == 16
    loaded = load_model(out)  # what `spattern compile FOLDER` and `spattern report FOLDER` call
    assert loaded.plan is not None and loaded.source.name == "Net" and loaded.image_size == 16
    again = load_pruned(out)
    assert torch.equal(again.model.features[3].weight, loaded.model.features[3].weight)
    assert int((loaded.model.features[3].weight.reshape(-1, 9) != 0).sum(1).max()) == 4  # pruned weights loaded
    (user_dir / "net.py").unlink()
    with pytest.raises(ModelLoadError, match="was pruned from .*net.py:Net, and that file is gone"):
        load_model(out)
