"""Synthetic calibration images: BatchNorm-statistics matched (DeepInversion / ZeroQ), or noise baselines.

A trained network's BatchNorm layers remember the mean and variance of their inputs over the training data. Images
optimised so that every BatchNorm layer sees exactly those statistics look like the data *to the network*, which
is all a layer-wise reconstruction needs; Gaussian noise does not (its activations collapse to a few channels).
Results are cached per (model weights, settings) under ~/.cache/spattern/synthetic (or $SPATTERN_CACHE).
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..fileio import atomic_write_bytes
from .precision import channels_last, network_precision, resolve_precision


def cache_dir(sub: str) -> Path:
    """The cache folder for `sub` (created): $SPATTERN_CACHE or ~/.cache/spattern."""
    root = Path(os.environ.get("SPATTERN_CACHE") or Path.home() / ".cache" / "spattern")
    path = root / sub
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_digest(model: nn.Module) -> str:
    """SHA-256 of the state dict (names, shapes, bytes): the cache key of anything derived from the weights."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(k.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(str(t.dtype).encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def gaussian_inputs(shape: tuple[int, int, int], n: int, seed: int = 0) -> torch.Tensor:
    """[n, *shape] standard normal images: the baseline the issue showed to fail."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((n, *shape), generator=gen)


def pink_noise(shape: tuple[int, int, int], n: int, seed: int = 0) -> torch.Tensor:
    """[n, *shape] unit-variance noise with a 1/f amplitude spectrum, as natural images have: the starting point
    for models without BatchNorm (it keeps more channels alive than white noise)."""
    c, h, w = shape
    gen = torch.Generator().manual_seed(seed)
    spec = torch.randn((n, c, h, w // 2 + 1), generator=gen, dtype=torch.complex64)
    fy = torch.fft.fftfreq(h).abs()[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    amp = 1.0 / torch.clamp(torch.sqrt(fy ** 2 + fx ** 2), min=1.0 / max(h, w))
    x = torch.fft.irfft2(spec * amp, s=(h, w))
    x = x - x.mean(dim=(2, 3), keepdim=True)
    return x / x.std(dim=(2, 3), keepdim=True).clamp_min(1e-6)


def _bn_layers(model: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None]


def _tv(x: torch.Tensor) -> torch.Tensor:
    return (x[:, :, 1:, :] - x[:, :, :-1, :]).pow(2).mean() + (x[:, :, :, 1:] - x[:, :, :, :-1]).pow(2).mean()


def _jitter(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random shift (up to 1/16 of the size) and flip: images must match the statistics robustly, not through
    one exact pixel alignment."""
    lim = max(1, x.shape[-1] // 16)
    dy, dx = (int(v) for v in torch.randint(-lim, lim + 1, (2,), generator=gen))
    x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    if bool(torch.rand((), generator=gen) < 0.5):
        x = torch.flip(x, dims=(3,))
    return x


SYNTH_BATCH = 64  # images optimised together; the progress unit is one step of one such batch


def synthesis_steps(n: int, steps: int, batch: int = SYNTH_BATCH) -> int:
    """Optimiser steps bn_matched_inputs takes for n images (its progress total, cached or not)."""
    return math.ceil(n / batch) * steps


def bn_matched_inputs(model: nn.Module, shape: tuple[int, int, int], n: int = 256, steps: int = 200, seed: int = 0,
                      lr: float = 0.1, tv_weight: float = 1e-3, l2_weight: float = 1e-4, logit_weight: float = 0.05,
                      batch: int = SYNTH_BATCH, use_cache: bool = True, precision: str = "float32",
                      on_step: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """[n, *shape] images optimised so every BatchNorm layer's batch mean and variance match its running ones.

    Loss per batch: sum over BN layers of ||mean - running_mean|| + ||var - running_var|| (relative to the
    running norms, so no layer dominates), a small total-variation and l2 image prior, and a class-balanced
    cross-entropy on the logits (targets cycle through the classes, as in DeepInversion) so the images cover the
    decision regions. Without BatchNorm a warning is issued and the fallback is pink noise optimised for the
    class-balanced logit term with the image prior only.
    precision: the network passes' precision ("float32", "bfloat16", "auto"; see precision.py); the images and
    the statistics stay float32.
    `on_step(done, total)` reports progress."""
    bns = _bn_layers(model)
    precision = resolve_precision(precision)
    key_src = f"{model_digest(model)}|{shape}|{n}|{steps}|{seed}|{lr}|{tv_weight}|{l2_weight}|{logit_weight}|{batch}|v1"
    if precision != "float32":  # float32 keeps the keys images were cached under before precision existed
        key_src += f"|{precision}"
    key = hashlib.sha256(key_src.encode()).hexdigest()[:32]
    path = cache_dir("synthetic") / f"{key}.safetensors"
    if use_cache and path.exists():
        from safetensors.torch import load_file

        try:
            images = load_file(str(path))["images"]
            if on_step is not None:  # a cache hit counts the same unit as a fresh run: all its steps are done
                on_step(synthesis_steps(n, steps, batch), synthesis_steps(n, steps, batch))
            return images
        except Exception:  # a corrupt cache entry is rebuilt, never trusted
            path.unlink(missing_ok=True)
    if not bns:
        warnings.warn(
            "the model has no BatchNorm layer, so synthetic images cannot be matched to its training statistics; "
            "falling back to 1/f noise optimised for confident, class-balanced logits. Expect a larger accuracy "
            "drop; fine-tune on your own data afterwards (spattern.finetune).", UserWarning, stacklevel=2)
    was_training = model.training
    model.eval()
    params = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    # (BatchNorm index, batch mean, batch var) per call: a model may create its BatchNorms in another order than
    # it calls them, so each call is matched to its own layer's statistics, not by position.
    stats: list[tuple[int, torch.Tensor, torch.Tensor]] = []

    def hook_for(i: int) -> Callable[..., None]:
        def hook(mod: nn.BatchNorm2d, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            x = inp[0].float()
            stats.append((i, x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)))
        return hook

    handles = [m.register_forward_hook(hook_for(i)) for i, m in enumerate(bns)]
    refs = [(m.running_mean.detach().clone(), m.running_var.detach().clone()) for m in bns]
    gen = torch.Generator().manual_seed(seed)
    out = []
    try:
        n_batches = math.ceil(n / batch)
        total = n_batches * steps
        for b in range(n_batches):
            nb = min(batch, n - b * batch)
            x = pink_noise(shape, nb, seed=seed * 7919 + b) if not bns else torch.randn((nb, *shape), generator=gen)
            x.requires_grad_(True)
            opt = torch.optim.Adam([x], lr=lr, betas=(0.5, 0.9))
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
            targets = None
            for s in range(steps):
                stats.clear()
                with network_precision(precision):
                    logits = model(channels_last(_jitter(x, gen))).float()
                if targets is None and logits.dim() == 2:
                    targets = (torch.arange(nb) + b * batch) % logits.shape[1]
                loss = tv_weight * _tv(x) * x.shape[-1] ** 2 / 1024 + l2_weight * x.pow(2).mean()
                for i, mu, var in stats:
                    rm, rv = refs[i]
                    loss = loss + torch.norm(mu - rm) / (torch.norm(rm) + 1e-3 * math.sqrt(rm.numel()) + 1e-8) \
                        + torch.norm(var - rv) / (torch.norm(rv) + 1e-8)
                if targets is not None and (logit_weight > 0 or not bns):
                    loss = loss + (logit_weight if bns else 1.0) * F.cross_entropy(logits, targets)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                if on_step is not None:
                    on_step(b * steps + s + 1, total)
            out.append(x.detach())
    finally:
        for h in handles:
            h.remove()
        for p, r in zip(model.parameters(), params):
            p.requires_grad_(r)
        model.train(was_training)
    images = torch.cat(out).contiguous()
    if use_cache:
        from safetensors.torch import save

        atomic_write_bytes(path, save({"images": images}))
    return images
