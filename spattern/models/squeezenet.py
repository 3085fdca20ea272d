"""SqueezeNet 1.1, module names as in torchvision (`features.N` with `Fire` modules: `squeeze`, `expand1x1`,
`expand3x3`; `classifier.1` the final 1x1 conv). A Fire module concatenates a 1x1 and a 3x3 expand of one
squeeze; the head is a 1x1 conv to the classes, ReLU and a global average pool.

At 32x32 the first conv is 3x3 stride 1 with padding 1 (the three max pools leave a 4x4 map); at 224 it is
torchvision's unpadded 3x3 stride-2 conv. `width` scales squeeze and expand channels (at least 4)."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import scaled


class Fire(nn.Module):
    def __init__(self, inplanes: int, squeeze_planes: int, expand1x1_planes: int, expand3x3_planes: int):
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze_planes, 1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze_planes, expand1x1_planes, 1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze_planes, expand3x3_planes, 3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], 1)


class SqueezeNet(nn.Module):
    def __init__(self, num_classes: int = 1000, image_size: int = 224, width: float = 1.0):
        super().__init__()

        def fire(cin: int, s: int, e: int) -> Fire:
            return Fire(cin, scaled(s, width), scaled(e, width), scaled(e, width))

        c0 = scaled(64, width)
        first = (nn.Conv2d(3, c0, 3, stride=2) if image_size >= 224 else nn.Conv2d(3, c0, 3, stride=1, padding=1))
        fires = [fire(c0, 16, 64)]
        for s, e in [(16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256)]:
            prev = fires[-1]
            fires.append(fire(prev.expand1x1.out_channels + prev.expand3x3.out_channels, s, e))
        self.features = nn.Sequential(
            first, nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True),
            fires[0], fires[1], nn.MaxPool2d(3, 2, ceil_mode=True),
            fires[2], fires[3], nn.MaxPool2d(3, 2, ceil_mode=True),
            fires[4], fires[5], fires[6], fires[7],
        )
        last = fires[-1].expand1x1.out_channels + fires[-1].expand3x3.out_channels
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(last, num_classes, 1), nn.ReLU(inplace=True),
                                        nn.AdaptiveAvgPool2d((1, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.classifier(self.features(x)), 1)


def squeezenet1_1(num_classes: int = 1000, image_size: int = 224, width: float = 1.0) -> SqueezeNet:
    return SqueezeNet(num_classes=num_classes, image_size=image_size, width=width)
