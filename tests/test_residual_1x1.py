"""A residual add that joins a pattern conv and a 1x1 conv (a ResNet block with a projection skip), pruned, on the
host with the microkernels and with lowering="linalg", against torch.

The regression (issue 19): when the block's input came from a pattern conv, lower-1x1-to-microkernels fused the
add into the 1x1 kernel (the pattern conv's result as its residual), and lower-to-microkernels, asking whether the
input's other user was an add it fuses, compared the pattern conv's missing residual (None) with an ir.Value:
a TypeError inside the pass. The variants: the add's order swapped, no ReLU after it, a stride-2 block (the 1x1
reads a subsampling slice) and the block on the function's input (no producing pattern conv)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import spattern
from spattern.testing import random_plan_for
from conftest import assert_close_to_torch, require_microkernels


class ProjectionBlock(nn.Module):
    """[stem: conv3x3-BN-ReLU] -> x; a = conv3x3-BN-ReLU-conv3x3-BN(x); b = conv1x1(stride)-BN(x); then
    a + b or b + a, with or without a ReLU."""

    def __init__(self, stem: bool, stride: int, swapped: bool, relu: bool) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()) if stem else None
        self.conv1 = nn.Conv2d(8, 16, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.skip = nn.Conv2d(8, 16, 1, stride=stride, bias=False)
        self.bn_skip = nn.BatchNorm2d(16)
        self.swapped, self.relu = swapped, relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stem is not None:
            x = self.stem(x)
        a = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        b = self.bn_skip(self.skip(x))
        y = b + a if self.swapped else a + b
        return torch.relu(y) if self.relu else y


def _seeded(model: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics, so folding them matters."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model.eval()


VARIANTS = {  # name: (stem, stride, swapped, relu)
    "relu(a+b)": (True, 1, False, True),
    "relu(b+a)": (True, 1, True, True),
    "a+b": (True, 1, False, False),
    "relu(a+b) stride 2": (True, 2, False, True),
    "relu(a+b) on the input": (False, 1, False, True),
}


@pytest.mark.parametrize("lowering", ["microkernels", "linalg"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_projection_residual_block_matches_torch(variant: str, lowering: str):
    if lowering == "microkernels":
        require_microkernels("host")
    torch.manual_seed(0)
    model = _seeded(ProjectionBlock(*VARIANTS[variant]))
    pruned, plan = random_plan_for(model, filter_block=1, connectivity=0.3, seed=3)
    x = torch.randn(1, 8, 16, 16)
    compiled = spattern.compile(pruned, x, target="host", plan=plan, lowering=lowering)
    stats = compiled.info["pass_stats"]
    if lowering == "microkernels":
        # The 1x1 conv runs in its kernel with the add (and ReLU) fused, the pattern conv's result its residual.
        one_by_one = stats["lower-1x1-to-microkernels"]
        assert (one_by_one["convs"], one_by_one["fused_residual"]) == (1, 1)
        assert stats["lower-to-microkernels"]["convs"] == len(plan.layers)
    out = compiled.run(x.numpy())[0]
    assert_close_to_torch(out, pruned(x).detach().numpy())
