"""A user's own architecture, named as `path/to/model.py:ClassName` (or `:factory_function`).

The file is imported the way the user's training script imports it (importlib from the path, with the file's
folder on sys.path while it runs, so its sibling imports work), and the class or factory is called with no
arguments. This runs the user's own code, as their training script does; no model object is ever unpickled.
A leaf module (torch and errors only), so that the face and `pruning.load_pruned` can both rebuild a model.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import ModelLoadError

_SPEC = re.compile(r"^(?P<file>.+\.py):(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")


@dataclass(frozen=True)
class ModelSource:
    """Where an architecture is defined: a Python file (absolute once resolved) and a name in it."""

    file: Path
    name: str

    def __str__(self) -> str:
        return f"{self.file}:{self.name}"


def parse_model_source(text: str | Path) -> ModelSource | None:
    """`path/model.py:Name` as a ModelSource with the path made absolute; None when `text` is not of that form
    (an existing file or folder of that exact name is never taken for one)."""
    text = str(text)
    match = _SPEC.match(text)
    if match is None or Path(text).exists():
        return None
    return ModelSource(Path(match["file"]).expanduser().resolve(), match["name"])


def _where_in(file: Path, exc: BaseException) -> str:
    """' (model.py line 12)' for the innermost frame of `exc` inside the user's file, else ''."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == file]
    return f" ({file.name} line {frames[-1].lineno})" if frames else ""


def _import_file(file: Path) -> object:
    if not file.is_file():
        raise ModelLoadError(f"no Python file at {file} (the model is named as path/to/model.py:ClassName)")
    module_name = f"spattern_user_{file.stem}_{abs(hash(str(file))):x}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"{file} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling-free torch helpers look classes up here
    folder = str(file.parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[module_name]
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise ModelLoadError(f"importing {file} raised {type(e).__name__}{_where_in(file, e)}: {first}") from None
    finally:
        if added:
            sys.path.remove(folder)
    return module


def build_model_from_source(source: ModelSource) -> torch.nn.Module:
    """Import `source.file` and call `source.name` with no arguments; the result must be an nn.Module."""
    module = _import_file(source.file)
    if not hasattr(module, source.name):
        names = sorted(n for n, v in vars(module).items() if not n.startswith("_") and _is_model_maker(v, module))
        found = f"; it defines {', '.join(names[:8])}" if names else "; it defines no nn.Module class or function"
        raise ModelLoadError(f"{source.file} has no attribute {source.name!r}{found}")
    maker = getattr(module, source.name)
    if isinstance(maker, torch.nn.Module):
        raise ModelLoadError(f"{source} is a module instance, not a class or factory; name the class "
                             f"({type(maker).__name__}) or a function that returns the model")
    if not callable(maker):
        raise ModelLoadError(f"{source} is of type {type(maker).__name__}, not an nn.Module class or a function that "
                             "returns one")
    if inspect.isclass(maker) and not issubclass(maker, torch.nn.Module):
        raise ModelLoadError(f"{source} is a class that is not an nn.Module subclass")
    required = _required_parameters(maker)
    if required:
        raise ModelLoadError(f"{source}() needs arguments ({', '.join(required)}); spattern calls it with none: "
                             "give defaults, or add a function with no parameters that returns the model "
                             f"(e.g. def make_model(): return {source.name}(...)) and name that")
    try:
        model = maker()
    except Exception as e:
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise ModelLoadError(f"{source}() raised {type(e).__name__}{_where_in(source.file, e)}: {first}") from None
    if not isinstance(model, torch.nn.Module):
        raise ModelLoadError(f"{source}() returned a {type(model).__name__}, not an nn.Module")
    return model


def _required_parameters(maker: object) -> list[str]:
    try:
        sig = inspect.signature(maker)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return []
    return [p.name for p in sig.parameters.values()
            if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD,
                                                                    p.KEYWORD_ONLY)]


def _is_model_maker(value: object, module: object) -> bool:
    """A class or function defined in the user's file that could build the model (for the 'no attribute' hint)."""
    if getattr(value, "__module__", None) != getattr(module, "__name__", None):
        return False
    return (inspect.isclass(value) and issubclass(value, torch.nn.Module)) or inspect.isfunction(value)
