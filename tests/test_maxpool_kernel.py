"""Numerics of the C 2x2 max-pool microkernel (kernels/maxpool2x2.c) through ctypes against numpy, for both x86
ISAs, plain and writing a pattern conv's padded input, and of its aarch64 object under qemu."""

from __future__ import annotations

import numpy as np
import pytest

from spattern.errors import ConfigError
from spattern.microkernels import kernels
from spattern.microkernels.maxpool_abi import H, pack_maxpool, reference, run_maxpool
from spattern.microkernels.microkernel_abi import consumer_pads
from conftest import require_microkernels
from test_microkernels import _c_array, neon_object_or_skip, run_neon_case

CASES = [  # c, h, w
    (3, 2, 2),  # one output: scalars only
    (5, 9, 7),  # odd sizes: the last row and column dropped (floor), fewer outputs than a vector
    (64, 32, 70),  # two vectors and a scalar tail per row (AVX-512), many channel groups
    (16, 56, 56),
]


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("isa", ["avx512", "avx2"])
@pytest.mark.parametrize("c, h, w", CASES)
def test_kernel_matches_numpy(monkeypatch, isa, padded, c, h, w):
    """max over each 2x2 window; padded: written as a stride-1 pattern conv's padded input (the zeros around it
    included: every element of the buffer written). The input is all negative, so a zero or an unset lane shows."""
    require_microkernels("x86_64")
    if isa == "avx512" and not kernels.host_has_avx512():
        pytest.skip("this CPU has no AVX-512")
    monkeypatch.setenv(kernels.ISA_ENV, isa)
    x = -np.abs(np.random.default_rng(c * h + w).standard_normal((1, c, h, w))).astype(np.float32) - 0.1
    pads = consumer_pads(1, c, h // 2, w // 2, 1, 1) if padded else (0, 0, 0, 0)
    packed = pack_maxpool(c, h, w, out_pad=pads, workgroups=3)
    assert packed.workgroups <= 3
    y = run_maxpool(packed, x, target="x86_64")
    ref = np.pad(reference(x), ((0, 0), (0, 0), pads[:2], pads[2:]))
    assert y.shape == ref.shape and not np.isnan(y).any()
    np.testing.assert_array_equal(y, ref)  # max is exact


def test_reference_is_torchs_pool():
    import torch

    x = torch.randn(1, 4, 9, 7)
    np.testing.assert_array_equal(reference(x.numpy()), torch.nn.functional.max_pool2d(x, 2).numpy())


def test_work_split_and_bad_input():
    big = pack_maxpool(64, 224, 224)
    assert big.workgroups == 32 and big.table[H["CPG"]] * big.workgroups >= 64
    small = pack_maxpool(512, 14, 14)  # 25k outputs: one workgroup's worth
    assert small.workgroups == 1 and small.table[H["CPG"]] == 512
    with pytest.raises(ConfigError, match="2x2"):
        pack_maxpool(8, 1, 4)
    with pytest.raises(ConfigError, match="input must be"):
        run_maxpool(big, np.zeros((1, 64, 8, 8), np.float32))


@pytest.mark.parametrize("c, h, w, padded", [(6, 10, 38, False), (5, 9, 7, True)])
def test_neon_object_matches_numpy_under_qemu(tmp_path, c, h, w, padded):
    """The aarch64 object run under qemu-aarch64 from the pattern conv's libc-free harness."""
    qemu, obj = neon_object_or_skip("maxpool2x2")
    x = np.random.default_rng(c + h).standard_normal((1, c, h, w)).astype(np.float32)
    pads = consumer_pads(1, c, h // 2, w // 2, 1, 1) if padded else (0, 0, 0, 0)
    packed = pack_maxpool(c, h, w, out_pad=pads, workgroups=2)
    ref = np.pad(reference(x), ((0, 0), (0, 0), pads[:2], pads[2:]))
    (tmp_path / "case.h").write_text(
        _c_array("IN", "float", x) + _c_array("W", "float", packed.weights)
        + _c_array("TAB", "int32_t", packed.table) + _c_array("REF", "float", ref)
        + f"#define OUT_N {ref.size}\n#define NWG {packed.workgroups}\n#define TOL 0.0f\n")
    assert run_neon_case(tmp_path, qemu, obj, "spattern_maxpool2x2") == 0
