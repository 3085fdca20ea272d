"""VGG-16 with BatchNorm, module names as in torchvision so its state dicts load."""

from __future__ import annotations

import torch
from torch import nn

VGG16_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def _features(cfg: list[int | str], in_channels: int = 3) -> nn.Sequential:
    layers: list[nn.Module] = []
    c = in_channels
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c, int(v), kernel_size=3, padding=1), nn.BatchNorm2d(int(v)), nn.ReLU(inplace=True)]
            c = int(v)
    return nn.Sequential(*layers)


class VGG(nn.Module):
    def __init__(self, cfg: list[int | str], num_classes: int = 1000, image_size: int = 224, width: float = 1.0):
        super().__init__()
        cfg = [v if v == "M" else max(8, int(int(v) * width)) for v in cfg]
        self.features = _features(cfg)
        last = int([v for v in cfg if v != "M"][-1])
        if image_size >= 224:
            # torchvision's head; at 224 the feature map is already 7x7, so the adaptive pool is a no-op.
            self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
            self.classifier = nn.Sequential(
                nn.Linear(last * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
                nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
                nn.Linear(4096, num_classes),
            )
        else:
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.classifier = nn.Sequential(nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def vgg16_bn(num_classes: int = 1000, image_size: int = 224, width: float = 1.0) -> VGG:
    return VGG(VGG16_CFG, num_classes=num_classes, image_size=image_size, width=width)


def vgg_small(num_classes: int = 10, image_size: int = 32, width: float = 1.0) -> VGG:
    """An 8-conv VGG for 32x32 tasks: small enough to train on this CPU in minutes."""
    cfg: list[int | str] = [32, 32, "M", 64, 64, "M", 128, 128, "M", 256, 256, "M"]
    return VGG(cfg, num_classes=num_classes, image_size=image_size, width=width)
