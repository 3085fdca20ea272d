"""Finding the layers to prune, building LayerPlans and applying a plan's masks to a model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, PlanError
from .config import LayerRule, PruneConfig
from .library import Structure, is_prunable_conv
from ..plan import LayerPlan, PatternPlan


@dataclass
class Target:
    """A conv to prune with its rule."""

    name: str
    conv: nn.Conv2d
    rule: LayerRule


def execution_order(model: nn.Module, example_input: torch.Tensor) -> list[str]:
    """Names of the Conv2d modules in the order a forward pass calls them (the plan's layer order)."""
    order: list[str] = []
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(lambda mod, i, o, n=name: order.append(n)))
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for h in handles:
            h.remove()
    seen: set[str] = set()
    return [n for n in order if not (n in seen or seen.add(n))]  # type: ignore[func-returns-value]


def select_targets(model: nn.Module, example_input: torch.Tensor, config: PruneConfig) -> list[Target]:
    """The convs `config` prunes, in execution order; ConfigError if a rule names no module at all."""
    modules = dict(model.named_modules())
    targets = []
    for name in execution_order(model, example_input):
        conv = modules[name]
        rule = config.rule_for(name, conv.in_channels, is_prunable_conv(conv))
        if rule is not None:
            if rule.filter_block > conv.out_channels:
                rule = LayerRule(rule.connectivity, conv.out_channels, rule.library_size, rule.library)
            targets.append(Target(name, conv, rule))
    import fnmatch

    for pat in list(config.rules) + list(config.exclude):
        if not any(fnmatch.fnmatchcase(n, pat) for n in modules):
            raise ConfigError(f"the config's pattern {pat!r} matches no module of the model; module names look "
                              f"like {[n for n in list(modules)[1:6]]}")
    return targets


def layer_plan(name: str, conv: nn.Conv2d, filter_block: int, library: list[int], s: Structure) -> LayerPlan:
    lp = LayerPlan(
        name=name,
        weight_shape=tuple(conv.weight.shape),  # type: ignore[arg-type]
        stride=tuple(conv.stride),  # type: ignore[arg-type]
        padding=tuple(conv.padding),  # type: ignore[arg-type]
        filter_block=filter_block,
        library=[int(c) for c in library],
        pattern=s.pattern.numpy().astype(np.int32),
        kept=s.kept.numpy().astype(bool),
    )
    lp.validate()
    return lp


def plan_masks(model: nn.Module, plan: PatternPlan) -> dict[str, torch.Tensor]:
    """{layer name: float mask [F, C, 3, 3]} for every planned layer; PlanError if the model lacks one."""
    modules = dict(model.named_modules())
    out = {}
    for layer in plan.layers:
        conv = modules.get(layer.name)
        if not isinstance(conv, nn.Conv2d):
            raise PlanError(f"layer {layer.name!r} of the plan is not a Conv2d of this model; is this plan for "
                            "another model?")
        if tuple(conv.weight.shape) != tuple(layer.weight_shape):
            raise PlanError(f"layer {layer.name!r}: the model's weight has shape {tuple(conv.weight.shape)}, the "
                            f"plan expects {tuple(layer.weight_shape)}; is this plan for another model?")
        out[layer.name] = torch.from_numpy(layer.mask()).to(conv.weight.dtype)
    return out


def apply_plan(model: nn.Module, plan: PatternPlan) -> nn.Module:
    """Zero every weight outside the plan's masks, in place; returns the model."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, mask in plan_masks(model, plan).items():
            modules[name].weight.mul_(mask)
    return model
