"""Building blocks shared by the newer zoo families, named as torchvision's `ops.misc` names them
(Conv2dNormActivation's children are `0` conv, `1` norm, `2` activation; SqueezeExcitation's are `fc1`, `fc2`), so
that state dicts keep torchvision's keys."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def make_divisible(v: float, divisor: int = 8) -> int:
    """`v` rounded to a multiple of `divisor`, at least `divisor` and never more than 10% below `v` (the rule of the
    MobileNet / EfficientNet papers, which keeps width-scaled channel counts valid for every layer)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def scaled(channels: int, width: float, minimum: int = 4) -> int:
    """A plain width-scaled channel count for the families that do not round to multiples of 8."""
    return max(minimum, int(channels * width))


class Conv2dNormActivation(nn.Sequential):
    """Conv (no bias) + BatchNorm + an optional activation, torchvision's `ops.misc.Conv2dNormActivation`."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1,
                 activation: Callable[[], nn.Module] | None = nn.ReLU, bn_eps: float = 1e-5,
                 bn_momentum: float = 0.1, padding: int | None = None):
        pad = (kernel - 1) // 2 if padding is None else padding
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, pad, groups=groups, bias=False),
                                   nn.BatchNorm2d(cout, eps=bn_eps, momentum=bn_momentum)]
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)


class SqueezeExcitation(nn.Module):
    """Global pool -> 1x1 squeeze -> activation -> 1x1 excite -> gate, torchvision's `ops.misc.SqueezeExcitation`.
    `squeeze` must be >= 1: the callers derive it from the scaled channel count, never from a fixed ratio."""

    def __init__(self, channels: int, squeeze: int, activation: Callable[[], nn.Module] = nn.ReLU,
                 scale_activation: Callable[[], nn.Module] = nn.Sigmoid):
        super().__init__()
        if squeeze < 1:
            raise ValueError(f"squeeze-excite over {channels} channels needs >= 1 squeeze channel, got {squeeze}")
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x
