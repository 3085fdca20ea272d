"""The microkernel path's whole-model rewrites in one compile, against torch: a ResNet-style stem (7x7 conv,
BatchNorm, ReLU, 3x3 max pool) whose pool pool-to-channels-last rewrites (the stem conv is IREE's own), a pool
after a pattern conv that stays NCHW, and a chain of pattern convs (stride 1 -> 2 -> 1, then a residual block)
where a producer whose only user is the next conv writes that conv's padded input (lower-to-microkernels'
padded outputs: no pad between them), the residual block's conv with its residual add fused as well."""

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
        self.conv4 = nn.Conv2d(24, 32, 3, stride=2, padding=1)
        self.conv5 = nn.Conv2d(32, 32, 3, padding=1)
        self.conv6 = nn.Conv2d(32, 32, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(torch.relu(self.bn1(self.conv1(x))))
        y = self.pool2(torch.relu(self.conv2(y)))
        y = torch.relu(self.conv3(y))
        y = torch.relu(self.conv4(y))
        y = torch.relu(self.conv5(y) + y)  # residual + ReLU fused, and a padded output for conv6
        return self.conv6(y)


def test_stem_pool_and_conv_chain_match_torch():
    require_microkernels("host")
    torch.manual_seed(0)
    model = StemNet().eval()
    with torch.no_grad():
        model.bn1.running_mean.uniform_(-0.5, 0.5)
        model.bn1.running_var.uniform_(0.5, 2.0)
    pruned, plan = random_plan_for(model, filter_block=1, connectivity=0.3, seed=1)
    x = torch.randn(2, 3, 88, 80)
    compiled = spattern.compile(pruned, x, target="host", plan=plan, lowering="microkernels")
    stats = compiled.info["pass_stats"]
    assert stats["pool-to-channels-last"] == {"rewritten": 1, "skipped": 0}
    lowered = stats["lower-to-microkernels"]
    assert (lowered["convs"], lowered["fused_relu"], lowered["fused_residual"], lowered["padded_outputs"]) == (
        5, 4, 1, 2)
    ref = pruned(x).detach().numpy()
    out = compiled.run(x.numpy())[0]
    assert_close_to_torch(out, ref)
