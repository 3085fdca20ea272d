"""MobileNet-V3-small, module names as in torchvision (`features.N.block.M`, `avgpool`, `classifier.0/3`):
inverted residuals with 3x3 / 5x5 depthwise convs, ReLU or Hardswish, and squeeze-excite gated by Hardsigmoid
(squeeze = make_divisible(expanded / 4, 8), so at any width it keeps >= 8 channels). BatchNorm eps is 1e-3.

At 32x32 the stem and the first block run at stride 1 (as mobilenet_v2's CIFAR form does), so the last map is
4x4; at 224 they are stride 2, as in torchvision. `width` is torchvision's `width_mult`: channel counts are
rounded to multiples of 8."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from .blocks import Conv2dNormActivation, SqueezeExcitation, make_divisible

_Conv = partial(Conv2dNormActivation, bn_eps=0.001, bn_momentum=0.01)


@dataclass(frozen=True)
class BlockConfig:
    input_channels: int
    kernel: int
    expanded_channels: int
    out_channels: int
    use_se: bool
    use_hs: bool
    stride: int


class InvertedResidual(nn.Module):
    def __init__(self, cnf: BlockConfig):
        super().__init__()
        act = nn.Hardswish if cnf.use_hs else nn.ReLU
        self.use_res_connect = cnf.stride == 1 and cnf.input_channels == cnf.out_channels
        layers: list[nn.Module] = []
        if cnf.expanded_channels != cnf.input_channels:
            layers.append(_Conv(cnf.input_channels, cnf.expanded_channels, 1, activation=act))
        layers.append(_Conv(cnf.expanded_channels, cnf.expanded_channels, cnf.kernel, cnf.stride,
                            groups=cnf.expanded_channels, activation=act))
        if cnf.use_se:
            layers.append(SqueezeExcitation(cnf.expanded_channels, make_divisible(cnf.expanded_channels // 4, 8),
                                            scale_activation=nn.Hardsigmoid))
        layers.append(_Conv(cnf.expanded_channels, cnf.out_channels, 1, activation=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result = self.block(x)
        return result + x if self.use_res_connect else result


# torchvision's mobilenet_v3_small table: (in, kernel, expanded, out, SE, hardswish, stride)
_SMALL = [(16, 3, 16, 16, True, False, 2), (16, 3, 72, 24, False, False, 2), (24, 3, 88, 24, False, False, 1),
          (24, 5, 96, 40, True, True, 2), (40, 5, 240, 40, True, True, 1), (40, 5, 240, 40, True, True, 1),
          (40, 5, 120, 48, True, True, 1), (48, 5, 144, 48, True, True, 1), (48, 5, 288, 96, True, True, 2),
          (96, 5, 576, 96, True, True, 1), (96, 5, 576, 96, True, True, 1)]


class MobileNetV3(nn.Module):
    def __init__(self, num_classes: int = 1000, image_size: int = 224, width: float = 1.0,
                 last_channel: int = 1024):
        super().__init__()
        small = image_size < 224

        def ch(c: int) -> int:
            return make_divisible(c * width, 8)

        settings = [BlockConfig(ch(i), k, ch(e), ch(o), se, hs, 1 if (small and n == 0) else s)
                    for n, (i, k, e, o, se, hs, s) in enumerate(_SMALL)]
        first = settings[0].input_channels
        layers: list[nn.Module] = [_Conv(3, first, 3, 1 if small else 2, activation=nn.Hardswish)]
        layers += [InvertedResidual(cnf) for cnf in settings]
        last_in = settings[-1].out_channels
        layers.append(_Conv(last_in, 6 * last_in, 1, activation=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        hidden = ch(last_channel)
        self.classifier = nn.Sequential(nn.Linear(6 * last_in, hidden), nn.Hardswish(inplace=True),
                                        nn.Dropout(0.2, inplace=True), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def mobilenet_v3_small(num_classes: int = 1000, image_size: int = 224, width: float = 1.0) -> MobileNetV3:
    return MobileNetV3(num_classes=num_classes, image_size=image_size, width=width)
