"""Data-free recovery after the layer-wise pass: BatchNorm recalibration and distillation towards the dense model,
both on synthetic images only, masks fixed. Each step is kept only if it lowers the dense-vs-pruned divergence on
held-out synthetic images, so recovery can never make the model worse by its own (data-free) measure."""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .precision import channels_last, network_precision


def _batches(n: int, batch: int) -> list[slice]:
    return [slice(a, min(n, a + batch)) for a in range(0, n, batch)]


@torch.no_grad()
def logits_of(model: nn.Module, images: torch.Tensor, batch: int = 64) -> torch.Tensor:
    model.eval()
    return torch.cat([model(channels_last(images[s])) for s in _batches(images.shape[0], batch)])


@torch.no_grad()
def divergence(pruned: nn.Module, dense_logits: torch.Tensor, images: torch.Tensor, batch: int = 64) -> float:
    """Mean KL(dense || pruned) of the softmax outputs on `images`."""
    p = logits_of(pruned, images, batch)
    return float(F.kl_div(F.log_softmax(p, 1), F.log_softmax(dense_logits, 1), log_target=True,
                          reduction="batchmean"))


@torch.no_grad()
def recalibrate_bn(model: nn.Module, images: torch.Tensor, batch: int = 64) -> None:
    """Re-estimate every BatchNorm's running statistics from the model's own activations on `images`."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    model.train()
    for s in _batches(images.shape[0], batch):
        model(channels_last(images[s]))
    model.eval()
    for m, mom in zip(bns, saved):
        m.momentum = mom


def register_mask_hooks(masks: dict[nn.Conv2d, torch.Tensor]) -> list[torch.utils.hooks.RemovableHandle]:
    """Gradient hooks that zero the gradient of pruned weights (the optimiser then keeps them at zero)."""
    return [conv.weight.register_hook(lambda g, m=m: g * m) for conv, m in masks.items()]


@torch.no_grad()
def enforce_masks(masks: dict[nn.Conv2d, torch.Tensor]) -> None:
    for conv, m in masks.items():
        conv.weight.mul_(m)


def distill(pruned: nn.Module, dense: nn.Module, images: torch.Tensor, masks: dict[nn.Conv2d, torch.Tensor],
            steps: int = 300, lr: float = 3e-4, batch: int = 64, seed: int = 0, temperature: float = 2.0,
            precision: str = "float32", on_step: Callable[[int, int], None] | None = None) -> None:
    """Train `pruned` (in place; BatchNorm in eval mode) so its logits match `dense`'s on jittered synthetic
    images: KL at a temperature plus an MSE on the raw logits. Pruned weights stay exactly zero.
    precision: the network passes' precision (precision.py); weights, optimiser and loss stay float32."""
    if steps <= 0:
        return
    gen = torch.Generator().manual_seed(seed)
    dense.eval()
    pruned.eval()
    params = [p for p in pruned.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    hooks = register_mask_hooks(masks)
    try:
        n = images.shape[0]
        for step in range(steps):
            idx = torch.randint(0, n, (min(batch, n),), generator=gen)
            x = images[idx]
            if bool(torch.rand((), generator=gen) < 0.5):
                x = torch.flip(x, dims=(3,))
            lim = max(1, x.shape[-1] // 16)
            dy, dx = (int(v) for v in torch.randint(-lim, lim + 1, (2,), generator=gen))
            x = channels_last(torch.roll(x, shifts=(dy, dx), dims=(2, 3)))
            with network_precision(precision):
                with torch.no_grad():
                    t = dense(x).float()
                s = pruned(x).float()
            loss = F.kl_div(F.log_softmax(s / temperature, 1), F.log_softmax(t / temperature, 1), log_target=True,
                            reduction="batchmean") * temperature ** 2 + 0.1 * F.mse_loss(s, t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            enforce_masks(masks)  # Adam's weight moments can still nudge zeros; keep them exact
            if on_step is not None:
                on_step(step + 1, steps)
    finally:
        for h in hooks:
            h.remove()
        pruned.eval()


def keep_if_better(model: nn.Module, fn: Callable[[], None], score: Callable[[], float]) -> tuple[bool, float, float]:
    """Run fn (which modifies model in place); revert unless score() (lower is better) improved."""
    before = score()
    state = copy.deepcopy(model.state_dict())
    fn()
    after = score()
    if after < before:
        return True, before, after
    model.load_state_dict(state)
    return False, before, before
