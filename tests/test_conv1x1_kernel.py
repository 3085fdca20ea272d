"""Numerics of the C 1x1-conv microkernel (kernels/conv1x1.c) through ctypes against numpy, for both x86 ISAs,
and of its aarch64 object under qemu; the work split covers every output."""

from __future__ import annotations

import numpy as np
import pytest

from spattern.errors import ConfigError
from spattern.microkernels import kernels
from spattern.microkernels.conv1x1_abi import (BLOCK, FBLOCK, H, VBLOCK_MAX, choose_layout, filter_layout,
                                               pack_conv1x1, reference, run_conv1x1, split_work, split_work_filters,
                                               vector_block)
from spattern.microkernels.microkernel_abi import DEFAULT_WORKGROUPS, consumer_pads
from conftest import require_microkernels
from test_microkernels import _c_array, neon_object_or_skip, run_neon_case

CASES = [  # c, f, h, w, relu, residual
    (3, 5, 2, 3, True, True),  # fewer positions than a vector: scalars (layout 0), one microtile of 6 (layout 1)
    (300, 70, 1, 1, True, False),  # one position (a Linear layer): microtiles of 1 position; channel steps
    (1030, 1000, 1, 1, True, True),  # layout 2: 4 blocks of 256 filters (the last partial), 5 steps of channels
    (16, 13, 7, 7, False, True),  # 49 positions: the last microtile overlaps (layout 0); a partial filter block
    (40, 70, 14, 14, True, True),  # layout 1: 3 blocks of 32 filters (the last partial), 28 microtiles of 7
    (64, 256, 56, 56, True, False),  # two panels
    (256, 64, 14, 14, False, False),  # few filter blocks: positions cut into panels of 64
    (1024, 40, 9, 9, True, True),  # a microtile's input larger than L1: blocks outer
    (37, 19, 5, 9, True, False),
    (8, 8, 4, 4, False, False),  # exactly one vector (AVX-512)
]


# every case in both layouts, and a single position also in layout 2
CASE_LAYOUTS = [pytest.param(case, layout, id="c{}f{}_{}x{}_relu{}_res{}".format(*case) + f"_layout{layout}")
                for case in CASES for layout in (0, 1, 2) if layout < 2 or case[2] * case[3] == 1]


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("isa", ["avx512", "avx2"])
@pytest.mark.parametrize("case, layout", CASE_LAYOUTS)
def test_kernel_matches_numpy(monkeypatch, isa, case, padded, layout):
    """relu?(W x + bias (+ residual)); padded: written as a stride-1 pattern conv's padded input (the zeros
    around it included: every element of the buffer written). Every layout (vectors over positions, over
    filters, one position) on every case it applies to; a third of the inputs are zeros (as after a ReLU)."""
    require_microkernels("x86_64")
    if isa == "avx512" and not kernels.host_has_avx512():
        pytest.skip("this CPU has no AVX-512")
    monkeypatch.setenv(kernels.ISA_ENV, isa)
    c, f, h, w, relu, residual = case
    rng = np.random.default_rng(c * 1000 + f)
    weight = rng.standard_normal((f, c, 1, 1)).astype(np.float32)
    bias = rng.standard_normal(f).astype(np.float32)
    x = rng.standard_normal((1, c, h, w)).astype(np.float32)
    x[rng.random(x.shape) < 1 / 3] = 0.0
    res = rng.standard_normal((1, f, h, w)).astype(np.float32) if residual else None
    pads = consumer_pads(1, f, h, w, 1, 1) if padded else (0, 0, 0, 0)
    packed = pack_conv1x1(weight, bias, h, w, relu=relu, residual=residual, out_pad=pads, layout=layout,
                          workgroups=5 if layout else None)  # layout 1: an odd count, a partial last group
    assert packed.table[H["LAYOUT"]] == layout
    y = run_conv1x1(packed, x, target="x86_64", residual=res)
    ref = reference(weight, bias, x) + (res if residual else 0)
    ref = np.maximum(ref, 0) if relu else ref
    ref = np.pad(ref, ((0, 0), (0, 0), pads[:2], pads[2:]))
    assert y.shape == ref.shape and not np.isnan(y).any()
    assert np.abs(y - ref).max() <= 1e-5 * max(1.0, np.abs(ref).max())
    with pytest.raises(ConfigError):
        run_conv1x1(packed, x, target="x86_64", residual=None if residual else np.zeros_like(ref))


@pytest.mark.parametrize("c, f, p", [(64, 256, 3136), (2048, 512, 49), (256, 64, 196), (3, 5, 6), (1024, 8, 5000)])
def test_work_split_covers_every_output(c, f, p):
    bpg, groups, panel, npanels = split_work(c, f, p)
    nblocks = -(-f // BLOCK)
    assert groups * bpg >= nblocks > (groups - 1) * bpg  # no empty group
    assert npanels * panel <= p or npanels == 1  # the last panel takes the rest: never empty
    assert p - (npanels - 1) * panel < 2 * panel or npanels == 1  # nor more than about twice the others
    assert panel % 32 == 0 or panel == p  # microtiles of every ISA tile a panel
    packed = pack_conv1x1(np.ones((f, c), np.float32), None, 1, p, workgroups=32, layout=0)
    assert packed.workgroups == groups * npanels and packed.table[H["PANEL"]] == panel


@pytest.mark.parametrize("f, p, workgroups", [(2048, 49, 32), (512, 49, 32), (40, 196, 32), (64, 81, 5), (32, 8, 8),
                                               (4096, 1, 16)])
def test_filter_layout_work_split_covers_every_output(f, p, workgroups):
    bpg, groups, panel, npanels = split_work_filters(f, p, workgroups)
    nblocks = -(-f // FBLOCK)
    assert groups * bpg >= nblocks > (groups - 1) * bpg
    assert (npanels == 1 and panel == p) or (panel * npanels <= p and panel % 14 == 0)
    assert groups * npanels <= 2 * workgroups


def test_layout_follows_image_size():
    """7x7 images (49 positions in 64 lanes) vectorize over filters; large ones over positions; images smaller
    than a vector (down to a Linear layer's one position) always over filters."""
    assert filter_layout(512, 49) and not filter_layout(512, 56 * 56) and filter_layout(512, 4)
    assert filter_layout(64, 9) and not filter_layout(64, 49)  # few channels: only where layout 0 is scalar
    assert filter_layout(25088, 1) and filter_layout(3, 1)
    assert pack_conv1x1(np.ones((64, 512), np.float32), None, 7, 7).table[H["LAYOUT"]] == 1
    assert pack_conv1x1(np.ones((64, 64), np.float32), None, 56, 56).table[H["LAYOUT"]] == 0
    assert choose_layout(25088, 1) == 2 and choose_layout(512, 49) == 1 and choose_layout(64, 56 * 56) == 0
    assert pack_conv1x1(np.ones((4096, 8), np.float32), None, 1, 1).table[H["LAYOUT"]] == 2
    with pytest.raises(ConfigError, match="layout"):
        pack_conv1x1(np.ones((8, 8), np.float32), None, 2, 2, layout=2)  # layout 2 is for one position
    with pytest.raises(ConfigError, match="layout"):
        pack_conv1x1(np.ones((8, 8), np.float32), None, 1, 1, layout=3)


@pytest.mark.parametrize("f, block, blocks", [(4096, 1024, 4), (25088, 1024, 25), (1000, 256, 4), (70, 32, 3),
                                              (13, 16, 1), (1, 16, 1)])
def test_one_position_layout_blocks(f, block, blocks):
    """Layout 2's filter blocks: 4 when the filters allow (work for 2-4 threads), whole vectors on every ISA,
    at most VBLOCK_MAX (the kernel's stack accumulators); one workgroup per block."""
    assert vector_block(f) == block and block % 16 == 0 and block <= VBLOCK_MAX
    packed = pack_conv1x1(np.ones((f, 3), np.float32), None, 1, 1)
    assert packed.table[H["BLOCK"]] == block and packed.table[H["NBLOCKS"]] == blocks == packed.workgroups
    assert packed.weights.size == blocks * block * 3 + f


@pytest.mark.parametrize("isa", ["avx512", "avx2"])
def test_one_position_layout_skips_zero_inputs(monkeypatch, isa):
    """Layout 2 reads no weight of a channel whose input is zero: with NaN in those weights the output is still
    finite and equals W x with them zeroed (layouts 0 and 1 read every weight: NaN)."""
    require_microkernels("x86_64")
    if isa == "avx512" and not kernels.host_has_avx512():
        pytest.skip("this CPU has no AVX-512")
    monkeypatch.setenv(kernels.ISA_ENV, isa)
    rng = np.random.default_rng(7)
    c, f = 600, 300
    x = rng.standard_normal((1, c, 1, 1)).astype(np.float32)
    zero = rng.random(c) < 0.5
    x[0, zero] = 0.0
    x[0, 5] = -0.0
    zero[5] = True
    weight = rng.standard_normal((f, c)).astype(np.float32)
    bias = rng.standard_normal(f).astype(np.float32)
    ref = reference(np.where(zero[None, :], 0.0, weight), bias, x)
    weight[:, zero] = np.nan
    y = run_conv1x1(pack_conv1x1(weight, bias, 1, 1, layout=2), x, target="x86_64")
    assert not np.isnan(y).any() and np.abs(y - ref).max() <= 1e-5 * max(1.0, np.abs(ref).max())
    assert np.isnan(run_conv1x1(pack_conv1x1(weight, bias, 1, 1, layout=1), x, target="x86_64")).any()


def test_small_convs_get_fewer_workgroups():
    small = pack_conv1x1(np.ones((512, 256), np.float32), None, 7, 7)  # ResNet-18's last downsample
    big = pack_conv1x1(np.ones((256, 64), np.float32), None, 56, 56)
    assert small.workgroups < big.workgroups <= DEFAULT_WORKGROUPS + 2
    assert small.workgroups % 2 == 0 and small.workgroups >= 2


def test_bad_weight_rejected():
    with pytest.raises(ConfigError, match="1x1"):
        pack_conv1x1(np.ones((4, 3, 3, 3), np.float32), None, 5, 5)


@pytest.mark.parametrize("c, f, h, w, layout", [(70, 21, 7, 7, 0), (9, 300, 12, 13, 0), (70, 45, 7, 7, 1), (130, 45, 1, 1, 1),
                                                (9, 300, 12, 13, 1), (530, 45, 1, 1, 2), (530, 300, 1, 1, 2)])
def test_neon_object_matches_numpy_under_qemu(tmp_path, c, f, h, w, layout):
    """The aarch64 object run under qemu-aarch64 from the pattern conv's libc-free harness (residual + ReLU; the
    f = 300 cases write a stride-2 pattern conv's padded input), in every layout (a third of the inputs zero)."""
    qemu, obj = neon_object_or_skip("conv1x1")
    rng = np.random.default_rng(c + f)
    weight = rng.standard_normal((f, c)).astype(np.float32)
    bias = rng.standard_normal(f).astype(np.float32)
    x = rng.standard_normal((1, c, h, w)).astype(np.float32)
    x[rng.random(x.shape) < 1 / 3] = 0.0
    res = rng.standard_normal((1, f, h, w)).astype(np.float32)
    pads = consumer_pads(1, f, h, w, 2, 1) if f > 256 else (0, 0, 0, 0)  # the second: a padded output
    packed = pack_conv1x1(weight, bias, h, w, relu=True, residual=True, out_pad=pads, layout=layout)
    ref = np.pad(np.maximum(reference(weight, bias, x) + res, 0), ((0, 0), (0, 0), pads[:2], pads[2:]))
    tol = 1e-5 * max(1.0, float(np.abs(ref).max()))
    (tmp_path / "case.h").write_text(
        _c_array("RES", "float", res) + _c_array("IN", "float", x) + _c_array("W", "float", packed.weights)
        + _c_array("TAB", "int32_t", packed.table) + _c_array("REF", "float", ref)
        + f"#define OUT_N {ref.size}\n#define NWG {packed.workgroups}\n#define TOL {tol!r}f\n")
    assert run_neon_case(tmp_path, qemu, obj, "spattern_conv1x1") == 0
