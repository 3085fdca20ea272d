"""Pattern libraries and the projection of 3x3 weights onto pattern + connectivity structure.

The projection is the one primitive every pruning stage shares: magnitude pruning is one projection of the dense
weights, ADMM projects W + U at every Z-step, and the final mask is the last projection. It works on an
*importance-weighted* energy (weight^2 times the second moment of the input tap it multiplies) so that pattern
choice and kernel removal account for how much each weight contributes to the layer's output, not only its size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from .. import patterns
from ..errors import ConfigError

N_CANDIDATES = len(patterns.CANDIDATES)


def candidate_masks(library: Sequence[int] | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """[k, 9] 0/1 masks of the library's patterns (all 56 candidates when None), taps row-major."""
    masks = torch.from_numpy(patterns.all_masks().reshape(N_CANDIDATES, 9)).to(dtype)
    return masks if library is None else masks[list(library)]


def validate_library(library: Sequence[int], where: str = "library") -> list[int]:
    """A user-given library as a list of global candidate ids; ConfigError saying what is wrong otherwise.

    Entries may be candidate ids (0..55) or tap lists such as [1, 3, 4, 5] (the center, tap 4, is required)."""
    if isinstance(library, (str, bytes)) or not isinstance(library, Sequence) or len(library) == 0:
        raise ConfigError(f"{where}: a pattern library must be a non-empty list of candidate ids (0..55) or tap lists")
    out: list[int] = []
    for entry in library:
        if isinstance(entry, (list, tuple)):
            try:
                cid = patterns.candidate_id(entry)
            except ValueError as e:
                raise ConfigError(f"{where}: {e}") from None
        elif isinstance(entry, (int, np.integer)) and not isinstance(entry, bool):
            cid = int(entry)
            if not 0 <= cid < N_CANDIDATES:
                raise ConfigError(f"{where}: pattern id {cid} is out of range; ids are 0..{N_CANDIDATES - 1}")
        else:
            raise ConfigError(f"{where}: library entry {entry!r} is neither a candidate id nor a tap list")
        if cid in out:
            raise ConfigError(f"{where}: pattern {cid} {list(patterns.CANDIDATES[cid])} is listed twice")
        out.append(cid)
    return out


def _kernel_energies(weights: Iterable[torch.Tensor], max_kernels: int, seed: int) -> torch.Tensor:
    """[N, 56] fraction of each kernel's energy each candidate keeps (kernels pooled over all weights)."""
    rows = []
    masks = candidate_masks()
    for w in weights:
        w = w.detach().to(torch.float64).reshape(-1, 9)
        e = w * w
        total = e.sum(1, keepdim=True)
        keep = total[:, 0] > 0
        rows.append((e[keep] @ masks.T) / total[keep])
    if not rows:
        raise ConfigError("select_library: no 3x3 convolution weights to choose a library from")
    energy = torch.cat(rows)
    if energy.shape[0] > max_kernels:
        gen = torch.Generator().manual_seed(seed)
        energy = energy[torch.randperm(energy.shape[0], generator=gen)[:max_kernels]]
    return energy


def prunable_weights(model: nn.Module) -> list[torch.Tensor]:
    """Weights of the convs pruned by default: 3x3, groups=1, dilation=1, more than 3 input channels."""
    return [m.weight for m in model.modules() if is_prunable_conv(m) and m.in_channels > 3]


def select_library(model_or_weights: nn.Module | torch.Tensor | Sequence[torch.Tensor], k: int = 8,
                   max_kernels: int = 200_000, seed: int = 0) -> list[int]:
    """The k candidate patterns that together keep the most (per-kernel normalised) weight energy.

    Greedy maximisation of sum over kernels of max over the library of the kept energy fraction: a submodular
    objective, so greedy is within (1 - 1/e) of the best library and in practice close to it. No data needed."""
    if not isinstance(k, int) or not 1 <= k <= N_CANDIDATES:
        raise ConfigError(f"library size k must be an integer in 1..{N_CANDIDATES}, got {k!r}")
    if isinstance(model_or_weights, nn.Module):
        weights: Sequence[torch.Tensor] = prunable_weights(model_or_weights)
    elif isinstance(model_or_weights, torch.Tensor):
        weights = [model_or_weights]
    else:
        weights = list(model_or_weights)
    if k == N_CANDIDATES:
        return list(range(N_CANDIDATES))
    energy = _kernel_energies(weights, max_kernels, seed)
    chosen: list[int] = []
    best = torch.zeros(energy.shape[0], dtype=energy.dtype)
    for _ in range(k):
        gain = torch.clamp(energy - best[:, None], min=0).sum(0)
        if chosen:
            gain[chosen] = -1.0
        c = int(torch.argmax(gain))
        chosen.append(c)
        best = torch.maximum(best, energy[:, c])
    return sorted(chosen)


def is_prunable_conv(m: nn.Module) -> bool:
    """A conv the pattern kernels can run: 3x3, groups=1, dilation=1, no padding mode tricks."""
    return (isinstance(m, nn.Conv2d) and tuple(m.kernel_size) == (3, 3) and m.groups == 1
            and tuple(m.dilation) == (1, 1) and m.padding_mode == "zeros" and not isinstance(m.padding, str))


@dataclass
class Structure:
    """The result of a projection: pattern index (into the library) and kept flag per (filter block, channel)."""

    pattern: torch.Tensor  # int64 [n_blocks, C]
    kept: torch.Tensor  # bool [n_blocks, C]
    mask: torch.Tensor  # bool [F, C, 9]


def project(weight: torch.Tensor, library: Sequence[int], filter_block: int, connectivity: float,
            importance: torch.Tensor | None = None) -> Structure:
    """Best structure for `weight` [F, C, 3, 3] (or [F, C, 9]) under the importance-weighted squared norm.

    importance: [C, 9] (or None for plain magnitude), the weight of each tap's squared error. With it, the
    projection is the exact minimiser of sum importance * (W - Z)^2 over the structured set: per (block, channel)
    the pattern keeping the most weighted energy, then the `connectivity` fraction of (block, channel) kernel
    sets with the least kept energy removed."""
    f, c = weight.shape[0], weight.shape[1]
    w = weight.detach().reshape(f, c, 9).to(torch.float64)
    e = w * w
    if importance is not None:
        e = e * importance.reshape(1, c, 9).to(torch.float64)
    nb = -(-f // filter_block)
    pad = nb * filter_block - f
    if pad:
        e = torch.cat([e, e.new_zeros(pad, c, 9)])
    eb = e.reshape(nb, filter_block, c, 9).sum(1)  # [nb, C, 9]
    masks = candidate_masks(library)  # [k, 9]
    kept_energy = eb @ masks.T  # [nb, C, k]
    best, pattern = kept_energy.max(-1)
    kept = torch.ones(nb, c, dtype=torch.bool)
    n_remove = int(round(connectivity * nb * c))
    if n_remove > 0:
        order = torch.argsort(best.reshape(-1), stable=True)
        kept.view(-1)[order[:n_remove]] = False
    mask = masks.bool()[pattern] & kept[:, :, None]  # [nb, C, 9]
    mask = mask.repeat_interleave(filter_block, dim=0)[:f]
    return Structure(pattern=pattern, kept=kept, mask=mask)
