"""Whatever a fast path does not take stays on a slower path, never a crash, and the pipeline says which layers
fell back and why (spattern.passes.fallbacks)."""

from __future__ import annotations

import torch
from torch import nn

import spattern
from spattern.testing import random_plan_for
from conftest import assert_close_to_torch, require_microkernels


class BeyondKernel(nn.Module):
    """Pattern convs the microkernel cannot run (stride 3; padding 2) between two it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(4, 8, 3, padding=1)
        self.stride3 = nn.Conv2d(8, 16, 3, stride=3, padding=1)
        self.pad2 = nn.Conv2d(16, 16, 3, padding=2)
        self.last = nn.Conv2d(16, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.stride3(torch.relu(self.stem(x))))
        return self.last(torch.relu(self.pad2(y)))


def test_pattern_convs_beyond_the_microkernel_run_on_the_portable_path():
    """They used to reach iree-compile as sparse_pattern ops (the microkernel pipeline had no lower-to-linalg),
    which crashed inside IREE."""
    require_microkernels("host")
    torch.manual_seed(0)
    pruned, plan = random_plan_for(BeyondKernel().eval(), filter_block=1, connectivity=0.3, seed=1)
    x = torch.randn(1, 4, 24, 24)
    compiled = spattern.compile(pruned, x, target="host", plan=plan, lowering="microkernels")
    stats = compiled.info["pass_stats"]
    assert (stats["lower-to-microkernels"]["convs"], stats["lower-to-microkernels"]["left_for_linalg"]) == (2, 2)
    assert stats["lower-to-linalg"]["convs"] == 2
    assert_close_to_torch(compiled.run(x.numpy())[0], pruned(x).detach().numpy())
