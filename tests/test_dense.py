"""The dense path: every zoo model compiled by IREE matches PyTorch."""

import numpy as np
import pytest
import torch

import spattern
from spattern.errors import InputError
from spattern import models

from conftest import assert_close_to_torch


def _check(name: str, image_size: int, width: float = 1.0, num_classes: int = 10) -> float:
    model = models.build(name, num_classes=num_classes, image_size=image_size, width=width)
    x = torch.randn(1, 3, image_size, image_size, generator=torch.Generator().manual_seed(1))
    compiled = spattern.compile(model, x, target="host")
    with torch.no_grad():
        ref = model(x).numpy()
    return assert_close_to_torch(compiled.run(x.numpy())[0], ref)


@pytest.mark.parametrize("name", ["vgg16_bn", "resnet18", "resnet50", "mobilenet_v2"])
def test_zoo_model_at_32_matches_torch(name):
    _check(name, 32)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg16_bn", "resnet18"])
def test_zoo_model_at_224_matches_torch(name):
    _check(name, 224, num_classes=1000)


def test_batchnorm_eval_statistics_are_used():
    """BN in eval mode must use the running statistics (the zoo seeds non-trivial ones): a wrong fold or a
    train-mode lowering would be caught by comparing against the same model with BN in train mode."""
    model = models.build("vgg_small", num_classes=10, image_size=32, width=0.25)
    x = torch.randn(2, 3, 32, 32)
    compiled = spattern.compile(model, x)
    got = compiled.run(x.numpy())[0]
    with torch.no_grad():
        ref_eval = model(x).numpy()
        ref_train = model.train()(x).numpy()
    model.eval()
    assert_close_to_torch(got, ref_eval)
    assert np.abs(got - ref_train).max() > 1e-3


def test_save_and_load_roundtrip(tmp_path):
    model = models.build("vgg_small", num_classes=10, image_size=32, width=0.25)
    x = torch.randn(1, 3, 32, 32)
    compiled = spattern.compile(model, x)
    path = compiled.save(tmp_path / "m.vmfb")
    loaded = spattern.load(path, target="host")
    np.testing.assert_array_equal(loaded.run(x.numpy())[0], compiled.run(x.numpy())[0])
    assert loaded.input_specs[0].shape == (1, 3, 32, 32)


def test_dump_dir_has_every_stage_and_no_hex_weights(tmp_path):
    model = models.build("vgg_small", num_classes=10, image_size=32, width=0.25)
    spattern.compile(model, torch.randn(1, 3, 32, 32), dump_dir=tmp_path / "dump")
    exported = (tmp_path / "dump" / "00-export.mlir").read_text()
    assert "linalg.conv_2d_nchw_fchw" in exported
    assert "dense_resource<features.0.weight>" in exported
    assert len(exported) < 200_000  # weights elided, never printed as hex


def test_stop_after_export_returns_no_module():
    model = models.build("vgg_small", num_classes=10, image_size=32, width=0.25)
    with pytest.raises(InputError, match="stopped after stage 'export'"):
        spattern.compile(model, torch.randn(1, 3, 32, 32), stop_after="export")


def test_strided_1x1_convs_become_slice_and_matmul_on_host():
    """ResNet downsample convs (1x1, stride 2) are rewritten by the host pre-pass strided-1x1-to-slice (IREE's
    CPU codegen takes a slow path for the strided form) and the model still matches torch."""
    model = models.build("resnet18", num_classes=10, image_size=32, width=0.25)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    compiled = spattern.compile(model, x, target="host")
    assert compiled.info["pass_stats"]["strided-1x1-to-slice"] == {"rewritten": 3, "skipped": 0}
    with torch.no_grad():
        ref = model(x).numpy()
    assert_close_to_torch(compiled.run(x.numpy())[0], ref)


@pytest.mark.parametrize("size,stride", [((7, 9), 2), ((8, 10), 3)])
def test_strided_1x1_conv_on_odd_sizes_matches_torch(size, stride):
    """strided-1x1-to-slice pads (7 rows, stride 2) or reshapes exactly; either way the numbers are torch's."""
    model = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 1, stride=stride), torch.nn.ReLU()).eval()
    x = torch.randn(1, 8, *size, generator=torch.Generator().manual_seed(2))
    compiled = spattern.compile(model, x, target="host")
    assert compiled.info["pass_stats"]["strided-1x1-to-slice"] == {"rewritten": 1, "skipped": 0}
    with torch.no_grad():
        ref = model(x).numpy()
    assert_close_to_torch(compiled.run(x.numpy())[0], ref)
