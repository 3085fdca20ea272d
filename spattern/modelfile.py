"""Loading user models from disk, safely: never unpickling arbitrary code.

Accepted forms:
- an ExportedProgram saved with `torch.export.save` (`.pt2`): a zip of JSON and raw tensors;
- a zoo name plus weights: `--zoo resnet18 --weights w.safetensors` (or a state-dict `.pt` loaded with
  `torch.load(weights_only=True)`, which refuses anything but tensors and plain containers);
- the user's own architecture, `path/to/model.py:ClassName` (or `:factory_function`), optionally with
  `--weights` (same weight formats): their file is imported as their training script would import it;
- a folder written by `spattern prune` (plan.json, model.safetensors, model.json naming the zoo model or the
  `path.py:Name` it was built from).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import models
from .errors import ModelLoadError
from .usermodel import ModelSource, build_model_from_source, parse_model_source


@dataclass
class LoadedModel:
    model: torch.nn.Module | torch.export.ExportedProgram
    plan: Any = None  # PatternPlan for a pruned folder
    image_size: int | None = None
    num_classes: int | None = None
    zoo_name: str | None = None
    source: ModelSource | None = None  # the user's `model.py:Name`, when it was built from one


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
        _load_weights(model, weights, num_classes,
                      f"zoo model {zoo!r} (num_classes={num_classes}, image_size={image_size})")
    return model.eval()


def _load_weights(model: torch.nn.Module, weights: Path, num_classes: int | None, what: str) -> None:
    """Load a state dict into `model`, or say in one line why it does not fit (`what` names the architecture)."""
    state = load_state_dict(weights)
    problem = describe_state_dict_mismatch(model.state_dict(), state, num_classes)
    if problem is None:
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            problem = str(e).strip().splitlines()[0]
    if problem is not None:
        raise ModelLoadError(f"the weights in {weights} do not fit {what}: {problem}")


def user_model_with_weights(source: ModelSource, weights: Path | None) -> torch.nn.Module:
    """The user's architecture from their own file, with the weights loaded (or as their code built it)."""
    model = build_model_from_source(source)
    if weights is not None:
        _load_weights(model, weights, None, f"{source.name} from {source.file}")
    return model.eval()


def _first(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def _head_classes(expected: dict[str, Any], state: dict[str, Any], mismatched: list[str], num_classes: int | None
                  ) -> int | None:
    """The weights' class count when every mismatched tensor is a head's (num_classes rows in the model, the
    same other dims in both), else None."""
    counts = set()
    for k in mismatched:
        want, got = tuple(expected[k].shape), tuple(state[k].shape)
        if not want or len(got) != len(want) or (num_classes is not None and want[0] != num_classes) \
                or got[1:] != want[1:]:
            return None
        counts.add(got[0])
    if num_classes is None:  # no class count to compare with: the head is the model's last weighted module
        last = [k.rsplit(".", 1)[0] for k in expected if k.endswith(".weight")][-1:]
        if {k.rsplit(".", 1)[0] for k in mismatched} != set(last):
            return None
    return counts.pop() if len(counts) == 1 else None


def describe_state_dict_mismatch(expected: dict[str, Any], state: dict[str, Any], num_classes: int | None
                                 ) -> str | None:
    """One line on how a state dict differs from a model's: counts of missing, unexpected and mismatched keys
    with the first few of each (torch's own message lists every key: thousands of characters). When only the
    classifier differs, the fix is --num-classes with the class count read off the weights' head. num_classes
    None: the user's own architecture (no --zoo, no --num-classes to suggest). None: it fits."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [k for k in expected if k in state and hasattr(state[k], "shape")
                  and tuple(state[k].shape) != tuple(expected[k].shape)]
    if not (missing or unexpected or mismatched):
        return None
    if not missing and not unexpected:
        n = _head_classes(expected, state, mismatched, num_classes)
        if n is not None and num_classes is not None:
            return (f"only the classifier differs ({_first(mismatched)}): these weights have {n} classes; "
                    f"add --num-classes {n}")
        if n is not None:
            return (f"only the classifier differs ({_first(mismatched)}): these weights have {n} classes; "
                    f"build the model with {n} classes")
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the model's {len(expected)} keys are missing ({_first(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} keys are not in the model ({_first(unexpected)})")
    if mismatched:
        first = mismatched[0]
        parts.append(f"{len(mismatched)} have another shape (e.g. {first}: {tuple(state[first].shape)} in the file, "
                     f"{tuple(expected[first].shape)} in the model)")
    other = " (--zoo)" if num_classes is not None else ""
    hint = (f" Are these the weights of another architecture{other}?" if missing or unexpected
            else " Were these weights trained at another width or class count?")
    return "; ".join(parts) + "." + hint


def load_model(path: str | Path | None, zoo: str | None = None, num_classes: int = 1000,
               image_size: int | None = None, weights: str | Path | None = None) -> LoadedModel:
    """`path`: a .pt2, a pruned folder, zoo weights (with `zoo`), or `model.py:Name` (with optional `weights`);
    `weights` with `zoo` and no path is the same as zoo weights given as `path`."""
    weights = Path(weights) if weights is not None else None
    source = parse_model_source(path) if path is not None else None
    if source is not None:
        if zoo is not None:
            raise ModelLoadError(f"give either --zoo {zoo} or the architecture {path}, not both")
        return LoadedModel(user_model_with_weights(source, weights), image_size=image_size, source=source)
    if weights is not None:
        if path is not None or zoo is None:
            raise ModelLoadError("--weights goes with the architecture: path/to/model.py:ClassName --weights FILE, "
                                 "or --zoo NAME --weights FILE")
        path = weights
    if path is None:
        if zoo is None:
            raise ModelLoadError("give a model file, a pruned folder, --zoo NAME, or path/to/model.py:ClassName")
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
        return LoadedModel(_load_exported_program(path))
    raise ModelLoadError(f"do not know how to load {path}: use a .pt2 ExportedProgram (torch.export.save), a "
                         "state dict with --zoo NAME, your architecture as path/to/model.py:ClassName with "
                         "--weights FILE, or a folder written by `spattern prune`")


def _load_exported_program(path: Path) -> torch.export.ExportedProgram:
    """torch.export.load, quietly: on a bad file torch logs a traceback as a warning before raising, which would
    bury our one-line error."""
    import logging
    import warnings
    import zipfile

    hint = ("For a state dict, also give the architecture: --zoo NAME, or path/to/model.py:ClassName "
            "--weights FILE.")
    if not zipfile.is_zipfile(path):
        raise ModelLoadError(f"{path} is not an ExportedProgram saved with torch.export.save (not a zip "
                             f"archive, as torch.export.save writes). {hint}")
    logger = logging.getLogger("torch.export")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.load(str(path))
    except Exception as e:
        text = str(e).strip().splitlines()
        raise ModelLoadError(f"{path} is not an ExportedProgram saved with torch.export.save ({type(e).__name__}"
                             f"{': ' + text[0][:200] if text else ''}). {hint}") from None
    finally:
        logger.setLevel(level)
    if not isinstance(program, torch.export.ExportedProgram):
        raise ModelLoadError(f"{path} holds a {type(program).__name__}, not an ExportedProgram. {hint}")
    return program


def _load_pruned_folder(folder: Path) -> LoadedModel:
    from .pruning import load_pruned
    from .plan import PLAN_FILE

    if not (folder / PLAN_FILE).exists():
        raise ModelLoadError(f"{folder} is not a folder written by `spattern prune` (no {PLAN_FILE})")
    result = load_pruned(folder)
    info = getattr(result.model, "spattern_info", {}) or {}
    source = parse_model_source(info["source"]) if "source" in info else None
    return LoadedModel(result.model, plan=result.plan, image_size=int(info.get("image_size", 224)),
                       num_classes=int(info.get("num_classes", 1000)), zoo_name=info.get("zoo"), source=source)
