"""Pattern-pruned models on the device targets: Vulkan (portable linalg lowering, on lavapipe) and arm64 (under
qemu), each compared with the pruned PyTorch model (max abs error <= 1e-4 x max |output|).

Plans are random (spattern.testing.random_plan_for): per-kernel patterns with half the kernels removed, and
blocks of 64 filters (the portable path's fast case). Skips only when a tool is truly missing (see
test_targets.require); under CI a missing tool fails.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import spattern
from spattern.models import build
from spattern.testing import random_plan_for

from test_targets import max_err, require

PLANS = {"per-kernel r0.5": (1, 0.5), "block64 r0": (64, 0.0)}


@pytest.fixture(scope="module")
def pruned() -> dict[str, tuple[torch.nn.Module, object, np.ndarray, np.ndarray]]:
    """plan name -> (pruned model, plan, input, pruned model's PyTorch output)."""
    model = build("vgg_small", num_classes=10, image_size=32, width=0.25, seed=3)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    out = {}
    for name, (block, r) in PLANS.items():
        pm, plan = random_plan_for(model, block, r, seed=0)
        with torch.no_grad():
            out[name] = (pm, plan, x.numpy(), pm(x).numpy())
    return out


def _check(pruned, plan_name: str, target: str, lowering: str) -> None:
    pm, plan, x, ref = pruned[plan_name]
    compiled = spattern.compile(pm, torch.from_numpy(x), target=target, plan=plan, lowering=lowering)
    (got,) = compiled.run(x)
    err, tol = max_err(got, ref)
    print(f"{target} {lowering} {plan_name}: max abs err {err:.3g} (tolerance {tol:.3g})")
    assert err <= tol


@pytest.mark.parametrize("plan_name", list(PLANS))
def test_pattern_model_on_vulkan_portable_lowering(pruned, plan_name):
    require("vulkan")
    _check(pruned, plan_name, "vulkan", "linalg")


@pytest.mark.parametrize("plan_name", list(PLANS))
def test_pattern_model_on_arm64_portable_lowering(pruned, plan_name):
    require("arm64-linux")
    _check(pruned, plan_name, "arm64-linux", "linalg")


def test_pattern_model_on_arm64_microkernels(pruned):
    """The CPU fast path on arm64: our aarch64 microkernel object linked into the module, run under qemu. (It
    used to segfault: a default-visibility entry point was called through a PLT slot that IREE's aarch64 ELF
    loader leaves unrelocated; the aarch64 object now has it hidden.)"""
    require("arm64-android")
    _check(pruned, "per-kernel r0.5", "arm64-android", "microkernels")
