"""Loading user models from disk, safely: never unpickling arbitrary code.

Accepted forms:
- an ExportedProgram saved with `torch.export.save` (`.pt2`): a zip of JSON and raw tensors;
- a zoo name plus weights: `--zoo resnet18 --weights w.safetensors` (or a state-dict `.pt` loaded with
  `torch.load(weights_only=True)`, which refuses anything but tensors and plain containers);
- a folder written by `spattern prune` (plan.json, model.safetensors, model.json naming the zoo model).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import models
from .errors import ModelLoadError


@dataclass
class LoadedModel:
    model: torch.nn.Module | torch.export.ExportedProgram
    plan: Any = None  # PatternPlan for a pruned folder
    image_size: int | None = None
    num_classes: int | None = None
    zoo_name: str | None = None


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ModelLoadError(f"no weights file at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:
            raise ModelLoadError(f"{path} is not a valid safetensors file: {e}") from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelLoadError(
            f"{path} could not be loaded as a plain state dict ({type(e).__name__}). spattern never unpickles "
            "arbitrary objects: save weights with safetensors or `torch.save(model.state_dict())`."
        ) from None
    if not isinstance(state, dict):
        raise ModelLoadError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def zoo_model_with_weights(zoo: str, weights: Path | None, num_classes: int, image_size: int) -> torch.nn.Module:
    model = models.build(zoo, num_classes=num_classes, image_size=image_size, seed=0 if weights is None else None)
    if weights is not None:
        state = load_state_dict(weights)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            first = str(e).splitlines()[0:3]
            raise ModelLoadError(f"the weights in {weights} do not fit zoo model {zoo!r} "
                                 f"(num_classes={num_classes}, image_size={image_size}): {' '.join(first)}") from None
    return model.eval()


def load_model(path: str | Path | None, zoo: str | None = None, num_classes: int = 1000,
               image_size: int | None = None) -> LoadedModel:
    if path is None:
        if zoo is None:
            raise ModelLoadError("give a model file, a pruned folder, or --zoo NAME")
        size = image_size or 224
        return LoadedModel(zoo_model_with_weights(zoo, None, num_classes, size), image_size=size,
                           num_classes=num_classes, zoo_name=zoo)
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"no model at {path}")
    if path.is_dir():
        return _load_pruned_folder(path)
    if zoo is not None:
        size = image_size or 224
        return LoadedModel(zoo_model_with_weights(zoo, path, num_classes, size), image_size=size,
                           num_classes=num_classes, zoo_name=zoo)
    if path.suffix in (".pt2", ".pt", ".ep"):
        try:
            program = torch.export.load(str(path))
        except Exception as e:
            raise ModelLoadError(
                f"{path} is not an ExportedProgram saved with torch.export.save ({type(e).__name__}). For a state "
                "dict, also give the architecture: --zoo NAME."
            ) from None
        return LoadedModel(program)
    raise ModelLoadError(f"do not know how to load {path}: use a .pt2 ExportedProgram (torch.export.save), a "
                         "state dict with --zoo NAME, or a folder written by `spattern prune`")


def _load_pruned_folder(folder: Path) -> LoadedModel:
    from .pruning import load_pruned
    from .pruning.plan import PLAN_FILE

    if not (folder / PLAN_FILE).exists():
        raise ModelLoadError(f"{folder} is not a folder written by `spattern prune` (no {PLAN_FILE})")
    result = load_pruned(folder)
    info = getattr(result.model, "spattern_info", {}) or {}
    return LoadedModel(result.model, plan=result.plan, image_size=int(info.get("image_size", 224)),
                       num_classes=int(info.get("num_classes", 1000)), zoo_name=info.get("zoo"))
