"""Compute precision and memory layout of the network passes that pruning runs (synthesis, distillation).

The synthetic-image optimisation and the distillation are forward + backward passes of the whole network, and at
224x224 they are most of the time prune() takes. Two things make them cheaper without touching the least-squares
fits (statistics and solves stay float32 / float64 whatever is chosen here):
- channels-last inputs: oneDNN's convolutions run 1.15-1.2x faster in NHWC (measured: VGG-16-BN at 112x112, the
  small VGG and ResNet at 32x32); a conv follows its input's layout, so the user's model is never converted;
- bfloat16 autocast where the CPU does bfloat16 natively (AVX512-BF16 / AMX): 2.5-3x faster forward + backward
  on this machine. Images, weights and optimiser state stay float32; statistics are reduced in float32.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

PRECISIONS = ("float32", "bfloat16", "auto")


def native_bfloat16() -> bool:
    """Whether this CPU runs bfloat16 matrix work natively (AVX512-BF16 or AMX), so autocast to it pays."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # an older torch without the probes: assume not
        return False


def resolve_precision(precision: str) -> str:
    """"auto" -> "bfloat16" where native, else "float32"; the others as given."""
    if precision == "auto":
        return "bfloat16" if native_bfloat16() else "float32"
    return precision


@contextlib.contextmanager
def network_precision(precision: str) -> Iterator[None]:
    """Autocast the network passes inside to `precision` ("float32": nothing changes)."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=resolve_precision(precision) == "bfloat16"):
        yield


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """An image batch in NHWC memory order (same values, same shape): the faster conv layout on CPUs."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
