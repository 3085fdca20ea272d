"""GoogLeNet (Inception v1), module names as in torchvision: `conv1..3` and `inceptionNx` of `BasicConv2d`
(`conv` + `bn`, eps 1e-3), each Inception module four branches concatenated. As in torchvision, the "5x5" branch
is a 3x3 conv. The auxiliary heads exist only with `aux_logits=True` and run only in training (torchvision's
pretrained state dict has none); in eval the model returns the logits alone.

At 32x32 the stem is a 3x3 stride-1 conv without the first max pool, so maxpools 2-4 leave a 4x4 map; at 224 it
is torchvision's 7x7 stride-2 conv and max pool. `width` scales every branch (at least 4 channels)."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import scaled


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    def __init__(self, cin: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int, pool_proj: int):
        super().__init__()
        self.branch1 = BasicConv2d(cin, ch1x1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(cin, ch3x3red, 1), BasicConv2d(ch3x3red, ch3x3, 3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(cin, ch5x5red, 1), BasicConv2d(ch5x5red, ch5x5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), BasicConv2d(cin, pool_proj, 1))
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    def __init__(self, cin: int, num_classes: int, width: float):
        super().__init__()
        self.conv = BasicConv2d(cin, scaled(128, width), 1)
        self.fc1 = nn.Linear(scaled(128, width) * 16, scaled(1024, width))
        self.fc2 = nn.Linear(scaled(1024, width), num_classes)
        self.dropout = nn.Dropout(0.7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(nn.functional.adaptive_avg_pool2d(x, (4, 4)))
        x = nn.functional.relu(self.fc1(torch.flatten(x, 1)), inplace=True)
        return self.fc2(self.dropout(x))


# (ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj) per Inception module, torchvision's table
_INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


class GoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 1000, image_size: int = 224, width: float = 1.0,
                 aux_logits: bool = False):
        super().__init__()
        self.aux_logits = aux_logits
        c1, c2, c3 = scaled(64, width), scaled(64, width), scaled(192, width)
        if image_size >= 224:
            self.conv1 = BasicConv2d(3, c1, 7, stride=2, padding=3)
            self.maxpool1: nn.Module = nn.MaxPool2d(3, 2, ceil_mode=True)
        else:
            self.conv1 = BasicConv2d(3, c1, 3, padding=1)
            self.maxpool1 = nn.Identity()
        self.conv2 = BasicConv2d(c1, c2, 1)
        self.conv3 = BasicConv2d(c2, c3, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        cin = c3
        blocks: dict[str, Inception] = {}
        for name, chans in _INCEPTION.items():
            blocks[name] = Inception(cin, *(scaled(c, width) for c in chans))
            cin = blocks[name].out_channels
        self.inception3a, self.inception3b = blocks["3a"], blocks["3b"]
        self.maxpool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception4a, self.inception4b, self.inception4c = blocks["4a"], blocks["4b"], blocks["4c"]
        self.inception4d, self.inception4e = blocks["4d"], blocks["4e"]
        self.maxpool4 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.inception5a, self.inception5b = blocks["5a"], blocks["5b"]
        if aux_logits:
            self.aux1: nn.Module | None = InceptionAux(blocks["4a"].out_channels, num_classes, width)
            self.aux2: nn.Module | None = InceptionAux(blocks["4d"].out_channels, num_classes, width)
        else:
            self.aux1 = self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        if aux1 is not None and aux2 is not None:
            return x, aux2, aux1  # torchvision's GoogLeNetOutputs order (logits, aux_logits2, aux_logits1)
        return x


def googlenet(num_classes: int = 1000, image_size: int = 224, width: float = 1.0) -> GoogLeNet:
    return GoogLeNet(num_classes=num_classes, image_size=image_size, width=width)
