"""ResNet-18, ResNet-50 and ResNeXt-50 (32x4d), module names as in torchvision. At 32x32 the stem is a 3x3
stride-1 conv without max-pooling (the usual CIFAR variant); at 224 it is torchvision's 7x7 stride-2 conv and
max-pool.

ResNeXt's bottleneck is ResNet-50's with a grouped 3x3 conv: 32 groups of 4 channels in the first stage (8, 16, 32
in the later ones). Width scaling keeps each group's channel count and scales the number of groups, so the groups
always divide the channels (at width 0.125: 4 groups)."""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 groups: int = 1, group_width: int | None = None):
        super().__init__()
        inner = planes if group_width is None else groups * group_width
        self.conv1 = nn.Conv2d(inplanes, inner, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv3 = nn.Conv2d(inner, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: list[int], num_classes: int = 1000,
                 image_size: int = 224, width: float = 1.0, groups: int = 1, width_per_group: int = 64):
        super().__init__()
        # Grouped bottlenecks (ResNeXt): the groups scale with `width`, each group's channels do not.
        self.groups = max(1, int(groups * width)) if groups > 1 else 1
        self.width_per_group = width_per_group
        w = [max(8, int(c * width)) for c in (64, 128, 256, 512)]
        self.inplanes = w[0]
        if image_size >= 224:
            self.conv1 = nn.Conv2d(3, w[0], 7, 2, 3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(3, w[0], 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(w[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, w[0], layers[0], full_planes=64)
        self.layer2 = self._make_layer(block, w[1], layers[1], stride=2, full_planes=128)
        self.layer3 = self._make_layer(block, w[2], layers[2], stride=2, full_planes=256)
        self.layer4 = self._make_layer(block, w[3], layers[3], stride=2, full_planes=512)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(w[3] * block.expansion, num_classes)

    def _make_layer(self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int,
                    stride: int = 1, full_planes: int = 64) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        kw: dict[str, int] = {}
        if self.groups > 1:
            # torchvision's int(planes * width_per_group / 64) channels per group, from the full-width planes
            kw = dict(groups=self.groups, group_width=max(1, int(full_planes * self.width_per_group / 64)))
        layers = [block(self.inplanes, planes, stride, downsample, **kw)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, **kw) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(num_classes: int = 1000, image_size: int = 224, width: float = 1.0) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes, image_size=image_size, width=width)


def resnet50(num_classes: int = 1000, image_size: int = 224, width: float = 1.0) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, image_size=image_size, width=width)


def resnext50_32x4d(num_classes: int = 1000, image_size: int = 224, width: float = 1.0) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, image_size=image_size, width=width, groups=32,
                  width_per_group=4)
