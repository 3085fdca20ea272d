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


# The plateau stop: a batch whose BatchNorm-statistics loss has not improved by PLATEAU_GAIN (relative to the best
# so far) for PLATEAU_PATIENCE steps gets PLATEAU_TAIL more steps with the learning rate decaying to zero, then
# stops; `steps` is only a cap. Measured on the trained small VGG (32x32, 256 images): 399 / 358 of 800 steps ran
# on digits / the harder task, data-free top-1 within 0.25 points of every step (bench/results/accuracy-defaults.txt).
PLATEAU_PATIENCE = 10
PLATEAU_GAIN = 0.02
PLATEAU_TAIL = 20
SYNTH_KEY_VERSION = "v2-plateau-10-0.02-20"  # part of the cache key: images made under another rule are not reused


def synthesis_steps(n: int, steps: int, batch: int = SYNTH_BATCH) -> int:
    """The most optimiser steps bn_matched_inputs takes for n images (its progress total before it starts; the
    plateau stop can end each batch earlier, and then the total shrinks to what ran)."""
    return math.ceil(n / batch) * steps


class PlateauStop:
    """Decides when a batch's optimisation stops: feed it the BatchNorm-statistics loss after every step.
    `lr_scale()` is the factor on the scheduled learning rate (1 until the tail, then decaying linearly)."""

    def __init__(self, cap: int, patience: int = PLATEAU_PATIENCE, gain: float = PLATEAU_GAIN,
                 tail: int = PLATEAU_TAIL):
        self.cap, self.patience, self.gain, self.tail = cap, patience, gain, tail
        self.best = math.inf
        self.stale = 0
        self.tail_left: int | None = None  # None: not in the tail yet
        self.steps = 0

    def update(self, loss: float) -> None:
        self.steps += 1
        if self.tail_left is not None:
            self.tail_left -= 1
            return
        if loss < self.best * (1.0 - self.gain):
            self.best, self.stale = loss, 0
        else:
            self.best = min(self.best, loss)
            self.stale += 1
            if self.stale >= self.patience:
                self.tail_left = self.tail

    def lr_scale(self) -> float:
        return 1.0 if self.tail_left is None else max(self.tail_left, 0) / (self.tail + 1)

    def done(self) -> bool:
        return self.steps >= self.cap or (self.tail_left is not None and self.tail_left <= 0)


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
    steps: the cap per batch; each batch stops earlier once its BatchNorm-statistics loss plateaus (PlateauStop).
    `on_step(done, total)` reports progress; when a batch stops early the total shrinks by the steps it skipped,
    so the last call always has done == total."""
    bns = _bn_layers(model)
    precision = resolve_precision(precision)
    key_src = (f"{model_digest(model)}|{shape}|{n}|{steps}|{seed}|{lr}|{tv_weight}|{l2_weight}|{logit_weight}|"
               f"{batch}|{SYNTH_KEY_VERSION}")
    if precision != "float32":  # float32 keeps the keys images were cached under before precision existed
        key_src += f"|{precision}"
    key = hashlib.sha256(key_src.encode()).hexdigest()[:32]
    path = cache_dir("synthetic") / f"{key}.safetensors"
    if use_cache and path.exists():
        from safetensors.torch import load_file

        try:
            saved = load_file(str(path))
            images = saved["images"]
            ran = int(saved["steps"]) if "steps" in saved else synthesis_steps(n, steps, batch)
            if on_step is not None:  # a cache hit counts the same unit as a fresh run: all its steps are done
                on_step(ran, ran)
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
            # one fused pass for both moments (half the reads of mean() then var() over the activations)
            var, mean = torch.var_mean(inp[0].float(), dim=(0, 2, 3), unbiased=False)
            stats.append((i, mean, var))
        return hook

    handles = [m.register_forward_hook(hook_for(i)) for i, m in enumerate(bns)]
    refs = [(m.running_mean.detach().clone(), m.running_var.detach().clone()) for m in bns]
    gen = torch.Generator().manual_seed(seed)
    out = []
    done = 0
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
            stop = PlateauStop(steps)
            tail_lrs: list[float] | None = None
            while steps > 0 and not stop.done():
                stats.clear()
                with network_precision(precision):
                    logits = model(channels_last(_jitter(x, gen))).float()
                if targets is None and logits.dim() == 2:
                    targets = (torch.arange(nb) + b * batch) % logits.shape[1]
                bn_loss = x.new_zeros(())
                for i, mu, var in stats:
                    rm, rv = refs[i]
                    bn_loss = bn_loss + torch.norm(mu - rm) / (torch.norm(rm) + 1e-3 * math.sqrt(rm.numel()) + 1e-8) \
                        + torch.norm(var - rv) / (torch.norm(rv) + 1e-8)
                loss = tv_weight * _tv(x) * x.shape[-1] ** 2 / 1024 + l2_weight * x.pow(2).mean() + bn_loss
                if targets is not None and (logit_weight > 0 or not bns):
                    loss = loss + (logit_weight if bns else 1.0) * F.cross_entropy(logits, targets)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                # without BatchNorm there is no statistics loss to plateau: the logit loss stands in
                stop.update(float(bn_loss.detach()) if bns else float(loss.detach()))
                if stop.tail_left is None:
                    sched.step()
                else:  # the tail: the rate the cosine schedule had reached, decaying linearly to zero
                    if tail_lrs is None:
                        tail_lrs = [g["lr"] for g in opt.param_groups]
                    for g, lr0 in zip(opt.param_groups, tail_lrs):
                        g["lr"] = lr0 * stop.lr_scale()
                done += 1
                if stop.done():
                    total -= steps - stop.steps  # the skipped steps leave the total: progress ends at done == total
                if on_step is not None:
                    on_step(done, total)
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

        atomic_write_bytes(path, save({"images": images, "steps": torch.tensor(done)}))
    return images
