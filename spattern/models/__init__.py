"""Model zoo, written by hand (there is no torchvision CPU build here). Module names follow torchvision, so a
torchvision state dict loads into these. Every constructor takes `num_classes`, `image_size` (224 for the
ImageNet form, 32 for the CIFAR form) and `width` (a channel multiplier for quick tests)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..errors import ModelLoadError
from .cspdarknet import CSPDarknet, cspdarknet_small
from .densenet import DenseNet, densenet121
from .efficientnet import EfficientNet, efficientnet_b0
from .googlenet import GoogLeNet, googlenet
from .mobilenet import MobileNetV2, mobilenet_v2
from .mobilenet_v3 import MobileNetV3, mobilenet_v3_small
from .resnet import ResNet, resnet18, resnet50, resnext50_32x4d
from .squeezenet import SqueezeNet, squeezenet1_1
from .unet import UNet, unet_small
from .vgg import VGG, vgg16_bn, vgg_small

ZOO: dict[str, Callable[..., nn.Module]] = {
    "vgg16_bn": vgg16_bn,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
    "vgg_small": vgg_small,
    "resnext50_32x4d": resnext50_32x4d,
    "densenet121": densenet121,
    "googlenet": googlenet,
    "squeezenet1_1": squeezenet1_1,
    "mobilenet_v3_small": mobilenet_v3_small,
    "efficientnet_b0": efficientnet_b0,
    "unet_small": unet_small,
    "cspdarknet_small": cspdarknet_small,
}


def build(name: str, num_classes: int = 1000, image_size: int = 224, width: float = 1.0,
          seed: int | None = 0) -> nn.Module:
    """A zoo model in eval mode; with `seed`, deterministic random weights and non-trivial BatchNorm statistics
    (so that folding and numerics tests see realistic running means and variances, not 0 and 1)."""
    if name not in ZOO:
        raise ModelLoadError(f"unknown zoo model {name!r}; known: {', '.join(sorted(ZOO))}")
    if seed is not None:
        torch.manual_seed(seed)
    model = ZOO[name](num_classes=num_classes, image_size=image_size, width=width)
    if seed is not None:
        randomize_batchnorm(model, seed)
    return model.eval()


def randomize_batchnorm(model: nn.Module, seed: int) -> None:
    """Seeded, non-trivial running statistics and affine parameters for every BatchNorm2d (means ~0.1, variances
    0.75-1.25), so that folding and numerics tests see realistic values, not 0 and 1."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


def input_shape(image_size: int, batch: int = 1) -> tuple[int, int, int, int]:
    return (batch, 3, image_size, image_size)


__all__ = ["ZOO", "build", "randomize_batchnorm", "input_shape", "VGG", "ResNet", "MobileNetV2", "vgg16_bn",
           "vgg_small", "resnet18",
           "resnet50", "mobilenet_v2", "resnext50_32x4d", "densenet121", "googlenet", "squeezenet1_1",
           "mobilenet_v3_small", "efficientnet_b0", "unet_small", "cspdarknet_small", "DenseNet", "GoogLeNet",
           "SqueezeNet", "MobileNetV3", "EfficientNet", "UNet", "CSPDarknet"]
