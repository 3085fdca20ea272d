"""Helpers for tests and benchmarks (importable by every room's tests): random pattern plans for zoo models, and
(in `spattern.testing.archgen`) a seeded generator of random CNN architectures."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from .. import patterns
from ..pruning.apply import execution_order
from ..plan import LayerPlan, PatternPlan


def prunable_convs(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """3x3, groups=1, dilation-1 convs in module order, without the first (3-input) conv."""
    convs = [(name, m) for name, m in model.named_modules()
             if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and m.groups == 1 and m.dilation == (1, 1)]
    return [(name, m) for name, m in convs if m.in_channels != 3]


def random_plan_for(model: nn.Module, filter_block: int, connectivity: float, seed: int = 0,
                    library_size: int = 8, example_input: torch.Tensor | None = None) -> tuple[nn.Module, PatternPlan]:
    """(a pruned copy of `model`, its plan): per layer a random library of `library_size` candidates, per
    (block, channel) the library pattern that keeps the most weight magnitude, and a `connectivity` fraction of
    (block, channel) kernel sets removed (the smallest by kept magnitude). The plan lists layers in execution
    order (import-patterns matches them in that order): with `example_input`, one forward pass finds that order;
    without it, module order is taken, which is right for the zoo (its modules are created in forward order) but
    not for a model that creates a module before another it calls later."""
    rng = np.random.default_rng(seed)
    pruned = copy.deepcopy(model).eval()
    layers: list[LayerPlan] = []
    masks = patterns.all_masks().reshape(56, 9)
    convs = prunable_convs(pruned)
    if example_input is not None:
        rank = {name: i for i, name in enumerate(execution_order(pruned, example_input))}
        convs = sorted((nc for nc in convs if nc[0] in rank), key=lambda nc: rank[nc[0]])
    for name, conv in convs:
        w = conv.weight.detach().numpy()
        f, c = w.shape[:2]
        n_blocks = -(-f // filter_block)
        library = sorted(rng.choice(56, size=library_size, replace=False).tolist())
        mag = np.abs(w).reshape(f, c, 9)
        block_mag = np.stack([mag[b * filter_block:(b + 1) * filter_block].sum(axis=0) for b in range(n_blocks)])
        score = block_mag @ masks[library].T  # [B, C, L]
        pattern = score.argmax(axis=2).astype(np.int32)
        best = score.max(axis=2)
        kept = np.ones((n_blocks, c), dtype=bool)
        n_drop = int(round(connectivity * kept.size))
        if n_drop:
            kept.ravel()[np.argsort(best.ravel(), kind="stable")[:n_drop]] = False
        layer = LayerPlan(name=name, weight_shape=tuple(w.shape), stride=tuple(conv.stride),
                          padding=tuple(conv.padding), filter_block=filter_block, library=library,
                          pattern=pattern, kept=kept)
        layer.validate()
        with torch.no_grad():
            conv.weight.mul_(torch.from_numpy(layer.mask().astype(np.float32)))
        layers.append(layer)
    return pruned, PatternPlan(layers=layers)
