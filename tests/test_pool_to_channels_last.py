"""pool-to-channels-last inside a whole compile: a ResNet-style stem (7x7 conv, BatchNorm, ReLU, 3x3 max pool)
feeding pattern convs. The pool is rewritten (the stem conv is IREE's own) and the module still matches torch;
a pool after a pattern conv (a microkernel's NCHW output) is left alone."""

from __future__ import annotations

import torch
from torch import nn

import spattern
from spattern.testing import random_plan_for
from conftest import assert_close_to_torch, require_microkernels


class StemNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 24, 3, padding=1)
        self.pool2 = nn.MaxPool2d(2)  # after a pattern conv: stays NCHW
        self.conv3 = nn.Conv2d(24, 24, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(torch.relu(self.bn1(self.conv1(x))))
        y = self.pool2(torch.relu(self.conv2(y)))
        return self.conv3(y)


def test_stem_pool_rewritten_and_matches_torch():
    require_microkernels("host")
    torch.manual_seed(0)
    model = StemNet().eval()
    with torch.no_grad():
        model.bn1.running_mean.uniform_(-0.5, 0.5)
        model.bn1.running_var.uniform_(0.5, 2.0)
    pruned, plan = random_plan_for(model, filter_block=1, connectivity=0.3, seed=1)
    x = torch.randn(2, 3, 44, 40)
    compiled = spattern.compile(pruned, x, target="host", plan=plan, lowering="microkernels")
    stats = compiled.info["pass_stats"]
    assert stats["pool-to-channels-last"] == {"rewritten": 1, "skipped": 0}
    assert stats["lower-to-microkernels"]["convs"] == 2
    ref = pruned(x).detach().numpy()
    out = compiled.run(x.numpy())[0]
    assert_close_to_torch(out, ref)
