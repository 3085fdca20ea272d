"""The microkernel path's whole-model rewrites in one compile, against torch: a ResNet-style stem (7x7 conv,
BatchNorm, ReLU, 3x3 max pool) whose pool pool-to-channels-last rewrites (the stem conv is IREE's own), a pool
after a pattern conv that stays NCHW, and a chain of pattern convs (stride 1 -> 2 -> 1, then a residual block)
where a producer whose only user is the next conv writes that conv's padded input (lower-to-microkernels'
padded outputs: no pad between them), the residual block's conv with its residual add fused as well. Also
dense-3x3-to-patterns: dense 3x3 convs over RGB (stride 1 and 2) run as pattern convs, one over 8 channels does
not; conv-1x1-to-matmul: the 1x1 convs of a ResNet-50 block run as NCHW matmuls (one image), or stay (a batch),
and lower-1x1-to-microkernels runs those matmuls in the C 1x1 kernel; lower-linear-to-microkernels runs batch-1
Linear layers there too, and lower-pool-to-microkernels VGG's 2x2 max pools."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import spattern
from spattern.passes.dense_3x3_to_patterns import DECOMPOSITION, decompose
from spattern.patterns import all_masks, candidate_id
from spattern.plan import PatternPlan
from spattern.testing import random_plan_for
from conftest import assert_close_to_torch, require_microkernels


def _with_bn_statistics(model_class: type[nn.Module], bn: str) -> nn.Module:
    """A seeded `model_class()` in eval mode, its BatchNorm `bn` given non-trivial running statistics (so
    folding it matters)."""
    torch.manual_seed(0)
    model = model_class().eval()
    norm = getattr(model, bn)
    with torch.no_grad():
        norm.running_mean.uniform_(-0.5, 0.5)
        norm.running_var.uniform_(0.5, 2.0)
    return model


class StemNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 24, 3, padding=1)
        self.pool2 = nn.MaxPool2d(2)  # after a pattern conv: stays NCHW
        self.conv3 = nn.Conv2d(24, 24, 3, padding=1)
        self.conv4 = nn.Conv2d(24, 32, 3, stride=2, padding=1)
        self.conv5 = nn.Conv2d(32, 32, 3, padding=1)
        self.conv6 = nn.Conv2d(32, 32, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(torch.relu(self.bn1(self.conv1(x))))
        y = self.pool2(torch.relu(self.conv2(y)))
        y = torch.relu(self.conv3(y))
        y = torch.relu(self.conv4(y))  # a padded output: conv5's input, and its residual read in place
        y = torch.relu(self.conv5(y) + y)  # residual + ReLU fused, and a padded output for conv6
        return self.conv6(y)


def test_stem_pool_and_conv_chain_match_torch():
    require_microkernels("host")
    model = _with_bn_statistics(StemNet, "bn1")
    pruned, plan = random_plan_for(model, filter_block=1, connectivity=0.3, seed=1)
    x = torch.randn(2, 3, 88, 80)
    compiled = spattern.compile(pruned, x, target="host", plan=plan, lowering="microkernels")
    stats = compiled.info["pass_stats"]
    assert stats["pool-to-channels-last"] == {"rewritten": 1, "skipped": 0}
    lowered = stats["lower-to-microkernels"]
    assert (lowered["convs"], lowered["fused_relu"], lowered["fused_residual"], lowered["padded_outputs"]) == (
        5, 4, 1, 3)
    ref = pruned(x).detach().numpy()
    out = compiled.run(x.numpy())[0]
    assert_close_to_torch(out, ref)


class RgbNet(nn.Module):
    """VGG's start (a dense 3x3 conv over RGB, BatchNorm, ReLU, then a pattern conv), a stride-2 dense 3x3 conv over
    RGB (MobileNet's start) and a dense 3x3 conv over 8 channels, too many for dense-3x3-to-patterns."""

    def __init__(self) -> None:
        super().__init__()
        self.rgb = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.conv = nn.Conv2d(16, 16, 3, padding=1)
        self.rgb_s2 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.dense8 = nn.Conv2d(8, 16, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(torch.relu(self.bn(self.rgb(x))))
        return y, self.dense8(torch.relu(self.rgb_s2(x)))


def test_dense_rgb_convs_run_as_pattern_convs():
    require_microkernels("host")
    model = _with_bn_statistics(RgbNet, "bn")
    pruned, plan = random_plan_for(model, filter_block=1, connectivity=0.0, seed=2)
    plan = PatternPlan([layer for layer in plan.layers if layer.name != "dense8"])  # dense8 stays dense
    pruned.dense8.load_state_dict(model.dense8.state_dict())
    x = torch.randn(2, 3, 40, 36)
    compiled = spattern.compile(pruned, x, target="host", plan=plan, lowering="microkernels")
    stats = compiled.info["pass_stats"]
    assert stats["dense-3x3-to-patterns"] == {"rewritten": 2}
    lowered = stats["lower-to-microkernels"]
    assert lowered["convs"] == 3  # rgb, rgb_s2 (decomposed) and conv; dense8 is IREE's
    assert lowered["padded_outputs"] >= 1  # the RGB conv writes `conv`'s padded input
    ref = pruned(x)
    out = compiled.run(x.numpy())
    for o, r in zip(out, ref):
        assert_close_to_torch(o, r.detach().numpy())


def test_decompose_sums_to_the_dense_kernel_within_patterns():
    w = np.random.default_rng(0).standard_normal((5, 2, 3, 3)).astype(np.float32)
    parts = decompose(w).reshape(5, len(DECOMPOSITION), 2, 3, 3)
    np.testing.assert_array_equal(parts.sum(axis=1), w)  # each tap held by exactly one part: exact
    masks = all_masks()[[candidate_id(list(t)) for t in DECOMPOSITION]]
    assert not np.any(parts * ~masks[None, :, None])  # every part within its pattern


class Bottleneck(nn.Module):
    """ResNet-50's block: 1x1 reduce, pattern 3x3, 1x1 expand, plus a strided 1x1 downsample of the input, with
    BatchNorms; an input 1x1 conv that no pattern conv is near stays IREE's."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 1)
        self.reduce = nn.Conv2d(16, 8, 1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.conv = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.expand = nn.Conv2d(8, 32, 1)
        self.down = nn.Conv2d(16, 32, 1, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.max_pool2d(self.stem(x), 3)  # the pool keeps the stem away from the pattern conv
        y = torch.relu(self.conv(torch.relu(self.bn(self.reduce(x)))))
        return torch.relu(self.expand(y) + self.down(x))


@pytest.mark.parametrize("batch, size, rewritten, skipped, filter_layout",
                         [(1, (42, 38), 3, 0, 0), (1, (20, 20), 3, 0, 2), (2, (42, 38), 0, 2, 0)])
def test_1x1_convs_next_to_pattern_convs_run_as_nchw_matmuls(batch, size, rewritten, skipped, filter_layout):
    """At 20x20 the expand and downsample convs run over a 3x3 image: the 1x1 kernel's layout 1 (vectors over
    filters; layout 0 would fall back to scalars)."""
    require_microkernels("host")
    model = _with_bn_statistics(Bottleneck, "bn")
    pruned, plan = random_plan_for(model, filter_block=1, connectivity=0.0, seed=3)
    x = torch.randn(batch, 3, *size)
    compiled = spattern.compile(pruned, x, target="host", plan=plan, lowering="microkernels")
    assert compiled.info["pass_stats"]["conv-1x1-to-matmul"] == {"rewritten": rewritten, "skipped": skipped}
    # the matmuls then run in the 1x1 kernel: reduce with its BatchNorm and ReLU, writing the pattern conv's
    # padded input; expand with the downsample as residual and the ReLU; the downsample alone (its result is
    # that residual)
    expect = {"convs": 3, "skipped": 0, "fused_relu": 2, "fused_residual": 1, "padded_outputs": 1} if batch == 1 \
        else {"convs": 0, "skipped": 0, "fused_relu": 0, "fused_residual": 0, "padded_outputs": 0}
    expect["filter_layout"] = filter_layout
    assert compiled.info["pass_stats"]["lower-1x1-to-microkernels"] == expect
    assert_close_to_torch(compiled.run(x.numpy())[0], pruned(x).detach().numpy())


class Classifier(nn.Module):
    """A pattern conv, then VGG's classifier in small: Linear + ReLU (more outputs than a block of 32, and more
    inputs than a vector), a Linear without bias + ReLU, and a Linear alone."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc1 = nn.Linear(8 * 10 * 10, 70)
        self.fc2 = nn.Linear(70, 40, bias=False)
        self.fc3 = nn.Linear(40, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x)).flatten(1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(y)))))


@pytest.mark.parametrize("batch", [1, 2])
def test_linear_layers_run_in_the_1x1_kernel(batch):
    """Batch 1: every Linear runs in the 1x1 kernel as a 1x1 conv over one position, its bias and ReLU fused;
    a batch of 2 stays IREE's matmul (not counted)."""
    expect = {"linears": 3, "skipped": 0, "fused_relu": 2} if batch == 1 else {"linears": 0, "skipped": 0,
                                                                               "fused_relu": 0}
    _check_pass_on(Classifier, (batch, 3, 10, 10), "lower-linear-to-microkernels", expect)


def _check_pass_on(model_class: type[nn.Module], shape: tuple[int, ...], pass_name: str, expect: dict) -> None:
    """model_class() with random patterns, compiled on the microkernel path: `pass_name`'s statistics are `expect`
    and the module's output matches torch's."""
    require_microkernels("host")
    torch.manual_seed(0)
    pruned, plan = random_plan_for(model_class().eval(), filter_block=1, connectivity=0.0, seed=4)
    x = torch.randn(*shape)
    compiled = spattern.compile(pruned, x, target="host", plan=plan, lowering="microkernels")
    assert compiled.info["pass_stats"][pass_name] == expect
    assert_close_to_torch(compiled.run(x.numpy())[0], pruned(x).detach().numpy())


class VggPools(nn.Module):
    """VGG's 2x2 max pools after pattern convs: the first feeds the next pattern conv, the second pools an odd-sized
    map (11x9 -> 5x4)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        return nn.functional.max_pool2d(torch.relu(self.conv2(y)), 2)


@pytest.mark.parametrize("batch", [1, 2])
def test_vgg_pools_run_in_the_pool_kernel(batch):
    """Batch 1: both pools run in the max-pool kernel, the first writing conv2's padded input; a batch of 2 stays
    IREE's pool (skipped)."""
    expect = {"pools": 2, "skipped": 0, "padded_outputs": 1} if batch == 1 else {"pools": 0, "skipped": 2,
                                                                                 "padded_outputs": 0}
    _check_pass_on(VggPools, (batch, 3, 22, 18), "lower-pool-to-microkernels", expect)
