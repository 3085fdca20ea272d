"""Numerics of pattern-pruned models through the whole pipeline (spattern.compile): every zoo model pruned with
random plans at every filter block and connectivity, through the portable lowering (issue 5's matrix) and the
microkernels (issue 6's), must match the pruned PyTorch model: max abs error <= 1e-4 x max |output|.

Widths are reduced so the whole matrix fits CI; the structure (residuals, strides, bottlenecks, depthwise) is the
zoo's own. Full-width runs live in the benchmarks."""

from __future__ import annotations

import pytest
import torch

import spattern
from spattern.models import build
from spattern.testing import random_plan_for

from conftest import assert_close_to_torch
from test_targets import require

MODELS = ["vgg16_bn", "resnet18", "resnet50", "mobilenet_v2"]
WIDTH = {"vgg16_bn": 0.125, "resnet18": 0.25, "resnet50": 0.125, "mobilenet_v2": 0.25}


def _check(name: str, filter_block: int, connectivity: float, lowering: str,
           batch: int = 1, target: str = "host") -> spattern.CompiledModel:
    model = build(name, num_classes=10, image_size=32, width=WIDTH[name])
    pruned, plan = random_plan_for(model, filter_block, connectivity, seed=1)
    x = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    compiled = spattern.compile(pruned, x, plan=plan, lowering=lowering, target=target)
    assert compiled.info["lowering"] == lowering
    with torch.no_grad():
        ref = pruned(x).numpy()
    assert_close_to_torch(compiled.run(x.numpy())[0], ref)
    return compiled


@pytest.mark.parametrize("connectivity", [0.0, 0.5])
@pytest.mark.parametrize("filter_block", [1, 8, 64])
@pytest.mark.parametrize("name", MODELS)
def test_portable_lowering_matches_pruned_model(name, filter_block, connectivity):
    _check(name, filter_block, connectivity, "linalg")


@pytest.mark.parametrize("connectivity", [0.0, 0.5])
@pytest.mark.parametrize("filter_block", [1, 8, 64])
@pytest.mark.parametrize("name", MODELS)
def test_portable_lowering_on_vulkan_matches_pruned_model(name, filter_block, connectivity):
    """The same matrix on Vulkan (lavapipe here; the GPU form of lower-to-linalg: linalg.batch_matmul)."""
    require("vulkan")
    _check(name, filter_block, connectivity, "linalg", target="vulkan")


@pytest.mark.parametrize("connectivity", [0.0, 0.5])
@pytest.mark.parametrize("filter_block", [1, 8])
@pytest.mark.parametrize("name", MODELS)
def test_microkernels_match_pruned_model(name, filter_block, connectivity):
    _check(name, filter_block, connectivity, "microkernels")


@pytest.mark.parametrize("lowering", ["linalg", "microkernels"])
def test_batch_of_three_matches_pruned_model(lowering):
    _check("resnet18", 8, 0.5, lowering, batch=3)


def test_microkernels_forced_avx2(monkeypatch):
    monkeypatch.setenv("SPATTERN_KERNEL_ISA", "avx2")
    _check("resnet18", 1, 0.5, "microkernels")


def test_full_width_vgg16_pattern_model_at_32():
    model = build("vgg16_bn", num_classes=10, image_size=32)
    pruned, plan = random_plan_for(model, 1, 0.5, seed=2)
    x = torch.randn(1, 3, 32, 32)
    compiled = spattern.compile(pruned, x, plan=plan)
    with torch.no_grad():
        assert_close_to_torch(compiled.run(x.numpy())[0], pruned(x).numpy())


@pytest.mark.parametrize("connectivity", [0.0, 0.5])
@pytest.mark.parametrize("filter_block", [1, 8])
@pytest.mark.parametrize("name", MODELS)
def test_microkernels_on_arm64_under_qemu(name, filter_block, connectivity):
    """The aarch64 NEON object linked into an arm64-linux module, run by the aarch64 iree-run-module (qemu)."""
    require("arm64-linux")
    model = build(name, num_classes=10, image_size=32, width=WIDTH[name])
    pruned, plan = random_plan_for(model, filter_block, connectivity, seed=1)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    compiled = spattern.compile(pruned, x, plan=plan, target="arm64-linux", lowering="microkernels")
    with torch.no_grad():
        assert_close_to_torch(compiled.run(x.numpy())[0], pruned(x).numpy())
