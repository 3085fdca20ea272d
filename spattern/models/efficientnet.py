"""EfficientNet-B0, module names as in torchvision (`features.N.M.block.K`, `features.N.M.stochastic_depth`,
`classifier.1`): MBConv blocks (1x1 expand, 3x3 / 5x5 depthwise, squeeze-excite with SiLU and a sigmoid gate, 1x1
project), SiLU everywhere, and stochastic depth on the residual branch that is the identity in eval.

At 32x32 the stem and the second stage run at stride 1, so the last map is 4x4; at 224 they are stride 2, as in
torchvision. `width` is torchvision's `width_mult` (channels rounded to multiples of 8); the SE squeeze is a
quarter of the block's input channels, at least 1."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .blocks import Conv2dNormActivation, SqueezeExcitation, make_divisible


class StochasticDepth(nn.Module):
    """Drops the whole residual branch of a sample with probability `p` in training ("row" mode), rescaling the
    kept ones; the identity in eval."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        noise = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device)
        return x * noise.bernoulli_(keep).div_(keep)


@dataclass(frozen=True)
class MBConvConfig:
    expand_ratio: int
    kernel: int
    stride: int
    input_channels: int
    out_channels: int
    num_layers: int


class MBConv(nn.Module):
    def __init__(self, cnf: MBConvConfig, stochastic_depth_prob: float):
        super().__init__()
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        expanded = make_divisible(cnf.input_channels * cnf.expand_ratio, 8)
        layers: list[nn.Module] = []
        if expanded != cnf.input_channels:
            layers.append(Conv2dNormActivation(cnf.input_channels, expanded, 1, activation=nn.SiLU))
        layers.append(Conv2dNormActivation(expanded, expanded, cnf.kernel, cnf.stride, groups=expanded,
                                           activation=nn.SiLU))
        layers.append(SqueezeExcitation(expanded, max(1, cnf.input_channels // 4), activation=nn.SiLU))
        layers.append(Conv2dNormActivation(expanded, cnf.out_channels, 1, activation=None))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.block(x)
        if self.use_res_connect:
            result = self.stochastic_depth(result) + x
        return result


# torchvision's B0 table: (expand, kernel, stride, in, out, layers)
_B0 = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
       (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]


class EfficientNet(nn.Module):
    def __init__(self, num_classes: int = 1000, image_size: int = 224, width: float = 1.0, depth: float = 1.0,
                 dropout: float = 0.2, stochastic_depth_prob: float = 0.2):
        super().__init__()
        small = image_size < 224
        stages = [MBConvConfig(e, k, 1 if (small and n == 1) else s, make_divisible(i * width, 8),
                               make_divisible(o * width, 8), int(math.ceil(layers * depth)))
                  for n, (e, k, s, i, o, layers) in enumerate(_B0)]
        first = stages[0].input_channels
        features: list[nn.Module] = [Conv2dNormActivation(3, first, 3, 1 if small else 2, activation=nn.SiLU)]
        total = sum(cnf.num_layers for cnf in stages)
        block_id = 0
        for cnf in stages:
            stage: list[nn.Module] = []
            for j in range(cnf.num_layers):
                block_cnf = cnf if j == 0 else MBConvConfig(cnf.expand_ratio, cnf.kernel, 1, cnf.out_channels,
                                                            cnf.out_channels, cnf.num_layers)
                stage.append(MBConv(block_cnf, stochastic_depth_prob * block_id / total))
                block_id += 1
            features.append(nn.Sequential(*stage))
        last_in = stages[-1].out_channels
        features.append(Conv2dNormActivation(last_in, 4 * last_in, 1, activation=nn.SiLU))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout, inplace=True), nn.Linear(4 * last_in, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def efficientnet_b0(num_classes: int = 1000, image_size: int = 224, width: float = 1.0) -> EfficientNet:
    return EfficientNet(num_classes=num_classes, image_size=image_size, width=width)
