"""A small CSP-Darknet detection backbone in the YOLOv5 style (torchvision has none; names follow YOLOv5:
`Conv` = conv-BN-SiLU with children `conv`, `bn`, `act`; `C3` with `cv1..3` and bottlenecks `m`; `SPPF`).
A stem, then four stages, each a stride-2 3x3 conv and a C3 block (a cross-stage-partial split: one half goes
through residual bottlenecks, the other is a 1x1 shortcut, the two concatenated and fused by a 1x1 conv); SPPF
(three chained 5x5 max pools, concatenated) closes the last stage.

With `num_classes > 0` the head is a global average pool and a Linear layer; with `num_classes=0` the model
returns the last three stages' maps (strides 8, 16, 32 at 224; a detector's neck input). At 32x32 the stem is a
3x3 stride-1 conv; at 224 it is YOLOv5's 6x6 stride-2 conv. `width` scales 32-64-128-256-512 (at least 8
channels, so the C3 halves keep >= 4)."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import scaled


class Conv(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, padding: int | None = None):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2 if padding is None else padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001, momentum=0.03)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, channels: int, shortcut: bool = True):
        super().__init__()
        self.cv1 = Conv(channels, channels, 1)
        self.cv2 = Conv(channels, channels, 3)
        self.add = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    def __init__(self, cin: int, cout: int, n: int = 1, shortcut: bool = True):
        super().__init__()
        hidden = cout // 2
        self.cv1 = Conv(cin, hidden, 1)
        self.cv2 = Conv(cin, hidden, 1)
        self.cv3 = Conv(2 * hidden, cout, 1)
        self.m = nn.Sequential(*(Bottleneck(hidden, shortcut) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat([self.m(self.cv1(x)), self.cv2(x)], 1))


class SPPF(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int = 5):
        super().__init__()
        hidden = cin // 2
        self.cv1 = Conv(cin, hidden, 1)
        self.cv2 = Conv(4 * hidden, cout, 1)
        self.m = nn.MaxPool2d(kernel, 1, kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat([x, y1, y2, self.m(y2)], 1))


class CSPDarknet(nn.Module):
    def __init__(self, num_classes: int = 1000, image_size: int = 224, width: float = 1.0,
                 depths: tuple[int, int, int, int] = (1, 2, 3, 1)):
        super().__init__()
        c = [scaled(v, width, minimum=8) for v in (32, 64, 128, 256, 512)]
        self.stem = Conv(3, c[0], 6, 2, 2) if image_size >= 224 else Conv(3, c[0], 3, 1)
        self.dark2 = nn.Sequential(Conv(c[0], c[1], 3, 2), C3(c[1], c[1], depths[0]))
        self.dark3 = nn.Sequential(Conv(c[1], c[2], 3, 2), C3(c[2], c[2], depths[1]))
        self.dark4 = nn.Sequential(Conv(c[2], c[3], 3, 2), C3(c[3], c[3], depths[2]))
        self.dark5 = nn.Sequential(Conv(c[3], c[4], 3, 2), C3(c[4], c[4], depths[3]), SPPF(c[4], c[4]))
        self.num_classes = num_classes
        if num_classes > 0:
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(c[4], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p3 = self.dark3(self.dark2(self.stem(x)))
        p4 = self.dark4(p3)
        p5 = self.dark5(p4)
        if self.num_classes == 0:
            return p3, p4, p5
        return self.fc(torch.flatten(self.avgpool(p5), 1))


def cspdarknet_small(num_classes: int = 1000, image_size: int = 224, width: float = 1.0) -> CSPDarknet:
    return CSPDarknet(num_classes=num_classes, image_size=image_size, width=width)
