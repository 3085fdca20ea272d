"""A small U-Net for segmentation (torchvision has none; names follow the common PyTorch U-Net: `inc`,
`down1..3`, `up1..3`, `outc`). Three 2x max-pool downsamplings with double 3x3 conv-BN-ReLU blocks, then three
bilinear 2x upsamplings, each concatenated with the encoder map of its size before a double conv; the output is
per-pixel class scores [N, num_classes, H, W].

The same layers serve both forms (the net is fully convolutional); `image_size` must be a multiple of 8. `width`
scales the base widths 32-64-128-256 (at least 4 channels)."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import scaled


class DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Down(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(nn.MaxPool2d(2), DoubleConv(cin, cout))


class Up(nn.Module):
    """Upsample the deeper map 2x, concatenate the skip map (skip first), double conv."""

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv = DoubleConv(cin + cskip, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.up(x)], 1))


class UNet(nn.Module):
    def __init__(self, num_classes: int = 2, image_size: int = 224, width: float = 1.0,
                 base: tuple[int, int, int, int] = (32, 64, 128, 256)):
        super().__init__()
        if image_size % 8:
            raise ValueError(f"unet_small needs an image size that is a multiple of 8, got {image_size}")
        c1, c2, c3, c4 = (scaled(c, width) for c in base)
        self.inc = DoubleConv(3, c1)
        self.down1, self.down2, self.down3 = Down(c1, c2), Down(c2, c3), Down(c3, c4)
        self.up1, self.up2, self.up3 = Up(c4, c3, c3), Up(c3, c2, c2), Up(c2, c1, c1)
        self.outc = nn.Conv2d(c1, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x = self.up1(self.down3(x3), x3)
        x = self.up2(x, x2)
        return self.outc(self.up3(x, x1))


def unet_small(num_classes: int = 2, image_size: int = 224, width: float = 1.0) -> UNet:
    return UNet(num_classes=num_classes, image_size=image_size, width=width)
