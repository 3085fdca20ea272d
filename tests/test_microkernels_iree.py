"""The microkernel as an IREE custom dispatch: one layer through iree-compile + iree.runtime matches torch; the
aarch64 object links into an arm64 module."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spattern.microkernels import kernels
from spattern.passes.lower_to_microkernels import pack_pruned_conv
from spattern.microkernels.microkernel_dispatch import (materialize_microkernels, single_conv_module,
                                                        text_to_bytecode)
from tests.test_microkernels import random_layer
from conftest import require_microkernels  # noqa: E402

iree_compiler = pytest.importorskip("iree.compiler")
iree_runtime = pytest.importorskip("iree.runtime")


@pytest.fixture(autouse=True)
def _built():
    require_microkernels("x86_64")


def _run_vmfb(vmfb: bytes, x: np.ndarray) -> np.ndarray:
    config = iree_runtime.Config("local-task")
    ctx = iree_runtime.SystemContext(config=config)
    ctx.add_vm_module(iree_runtime.VmModule.copy_buffer(ctx.instance, vmfb))
    return np.asarray(ctx.modules.module.main(x))


@pytest.mark.parametrize("isa,stride", [("avx512", 1), ("avx2", 1), ("avx512", 2)])
def test_single_layer_in_iree_matches_torch(monkeypatch, isa, stride):
    if isa == "avx512" and not kernels.host_has_avx512():
        pytest.skip("this CPU has no AVX-512")
    monkeypatch.setenv(kernels.ISA_ENV, isa)
    rng = np.random.default_rng(7 + stride)
    f, c = 70, 13
    w, pid, kept = random_layer(rng, f, c, 0.5)
    b = rng.standard_normal(f).astype(np.float32)
    x = rng.standard_normal((2, c, 19, 17)).astype(np.float32)
    packed = pack_pruned_conv(w, pid, kept, b, x.shape, stride=stride, relu=True)
    bytecode = materialize_microkernels(text_to_bytecode(single_conv_module(packed)), "host")
    vmfb = iree_compiler.compile_str(bytecode, target_backends=["llvm-cpu"],
                                     extra_args=["--iree-llvmcpu-target-cpu=host"])
    y = _run_vmfb(vmfb, x)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                                     stride=stride, padding=1).relu().numpy()
    assert y.shape == ref.shape
    assert np.abs(y - ref).max() <= 1e-4 * np.abs(ref).max()


def test_aarch64_object_links_into_arm64_module():
    rng = np.random.default_rng(3)
    w, pid, kept = random_layer(rng, 8, 4, 0.0)
    packed = pack_pruned_conv(w, pid, kept, None, (1, 4, 9, 9))
    bytecode = materialize_microkernels(text_to_bytecode(single_conv_module(packed)), "aarch64-unknown-linux-gnu")
    vmfb = iree_compiler.compile_str(bytecode, target_backends=["llvm-cpu"],
                                     extra_args=["--iree-llvmcpu-target-triple=aarch64-unknown-linux-gnu"])
    assert len(vmfb) > 1000


def test_module_without_microkernels_is_unchanged():
    bc = text_to_bytecode("func.func @f(%a: tensor<2xf32>) -> tensor<2xf32> { return %a : tensor<2xf32> }")
    assert materialize_microkernels(bc, "host") == bc
