"""Seeded training of the small accuracy-benchmark models (vgg_small, a narrow resnet18) on the data tasks,
cached under ~/.cache/spattern/models (or $SPATTERN_CACHE): minutes on a laptop CPU, once."""

from __future__ import annotations

import json
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import data
from .fileio import atomic_write_bytes, atomic_write_text
from .models import build
from .pruning.synthetic import cache_dir

# (width, epochs per task) chosen so each model trains in a few minutes on 2 CPU cores.
MODEL_WIDTH = {"vgg_small": 0.5, "resnet18": 0.25}
EPOCHS = {"digits": 30, "shapes": 12}
RESNET_EPOCHS = {"digits": 8, "shapes": 6}  # the resnet is ~3x slower per epoch here


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 256) -> float:
    """Top-1 accuracy in percent."""
    model.eval()
    correct = 0
    for a in range(0, len(x), batch):
        correct += int((model(x[a:a + batch]).argmax(1) == y[a:a + batch]).sum())
    return 100.0 * correct / max(1, len(x))


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float = 0.05, batch: int = 128,
          seed: int = 0, flip: bool = False, progress: bool = False) -> nn.Module:
    """SGD + momentum, cosine schedule, shift (and optional flip) augmentation; in place, returns eval model."""
    torch.manual_seed(seed)
    loader = data.Batches(x, y, batch=batch, seed=seed, shift=2, flip=flip)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4, nesterov=True)
    total = epochs * len(loader)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    model.train()
    for ep in range(epochs):
        tot = 0.0
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach())
        if progress:
            print(f"  epoch {ep + 1}/{epochs} loss {tot / len(loader):.4f}", flush=True)
    return model.eval()


def trained_model(name: str, task: str, seed: int = 0, width: float | None = None, epochs: int | None = None,
                  progress: bool = False) -> nn.Module:
    """A zoo model trained on a task (cached). The model carries `spattern_info` (zoo name, num_classes,
    image_size, width, task, test accuracy) so save_pruned can record how to rebuild it."""
    from safetensors.torch import load_file, save

    width = width if width is not None else MODEL_WIDTH.get(name, 0.5)
    table = RESNET_EPOCHS if name.startswith("resnet") else EPOCHS
    epochs = epochs if epochs is not None else table.get(task.split(":")[0], 15)
    tag = task.replace(":", "_").replace("/", "_")
    stem = cache_dir("models") / f"{name}-{tag}-w{width}-e{epochs}-s{seed}-v1"
    model = build(name, num_classes=10, image_size=32, width=width, seed=seed)
    info: dict[str, Any] = {"zoo": name, "num_classes": 10, "image_size": 32, "width": width, "task": task}
    # not stem.with_suffix: the name holds dots ("w0.5"), which with_suffix would cut, losing epochs and seed
    wfile, jfile = stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")
    if wfile.is_file() and jfile.is_file():
        try:
            model.load_state_dict(load_file(str(wfile)))
            info.update(json.loads(jfile.read_text()))
            model.spattern_info = info  # type: ignore[assignment]
            return model.eval()
        except Exception:
            wfile.unlink(missing_ok=True)
    (xtr, ytr), (xte, yte) = data.load_task(task, seed=0)
    train(model, xtr, ytr, epochs=epochs, seed=seed, flip=task == "shapes", progress=progress)
    info["test_accuracy"] = accuracy(model, xte, yte)
    atomic_write_bytes(wfile, save({k: v.contiguous() for k, v in model.state_dict().items()}))
    atomic_write_text(jfile, json.dumps(info))
    model.spattern_info = info  # type: ignore[assignment]
    return model
