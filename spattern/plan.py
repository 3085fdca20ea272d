"""PatternPlan: which pattern each 3x3 kernel keeps and which kernels are removed, per layer.

The plan is the contract between pruning (which writes it) and the compiler (which reads it). It holds structure
only; the pruned weights travel beside it (model.safetensors). Saved as JSON, never pickled; loading validates
every field, so a plan for another model or a corrupt file is a PlanError that names the layer.

Structure of one layer: filters are split into blocks of `filter_block` consecutive filters (the last block may be
shorter). For each (block, input channel) the plan stores a pattern (an index into the layer's `library`, whose
entries are global candidate ids from `spattern.patterns`) and whether the kernels are kept at all
(connectivity pruning removes whole (block, channel) kernel sets).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import patterns
from .errors import PlanError
from .fileio import atomic_write_text

PLAN_FILE = "plan.json"
FORMAT_VERSION = 1


@dataclass
class LayerPlan:
    name: str
    weight_shape: tuple[int, int, int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    filter_block: int
    library: list[int]
    pattern: np.ndarray  # int32 [n_blocks, C]: index into `library`
    kept: np.ndarray  # bool [n_blocks, C]

    @property
    def out_channels(self) -> int:
        return self.weight_shape[0]

    @property
    def in_channels(self) -> int:
        return self.weight_shape[1]

    @property
    def n_blocks(self) -> int:
        return -(-self.out_channels // self.filter_block)

    def block_of_filter(self) -> np.ndarray:
        """[F] block index of each filter."""
        return np.arange(self.out_channels) // self.filter_block

    def filter_patterns(self) -> np.ndarray:
        """[F, C] global candidate id of each kernel (meaningful where kept)."""
        lib = np.asarray(self.library, dtype=np.int32)
        return lib[self.pattern[self.block_of_filter()]]

    def filter_kept(self) -> np.ndarray:
        """[F, C] bool: kernel kept."""
        return self.kept[self.block_of_filter()]

    def mask(self) -> np.ndarray:
        """[F, C, 3, 3] bool: the weights this layer may hold non-zero."""
        masks = patterns.all_masks()[self.filter_patterns()]
        return masks & self.filter_kept()[:, :, None, None]

    def kept_fraction(self) -> float:
        return float(self.kept.mean()) if self.kept.size else 0.0

    def macs_kept_fraction(self) -> float:
        """Fraction of the dense layer's MACs this layer still does (4 of 9 per kept kernel)."""
        return self.kept_fraction() * patterns.TAPS_PER_PATTERN / 9.0

    def validate(self) -> None:
        where = f"layer {self.name!r}"
        if len(self.weight_shape) != 4 or tuple(self.weight_shape[2:]) != (3, 3):
            raise PlanError(f"{where}: weight shape {self.weight_shape} is not [F, C, 3, 3]")
        if self.filter_block < 1:
            raise PlanError(f"{where}: filter_block must be >= 1, got {self.filter_block}")
        if not self.library:
            raise PlanError(f"{where}: the pattern library is empty")
        for cid in self.library:
            if not 0 <= int(cid) < len(patterns.CANDIDATES):
                raise PlanError(f"{where}: library entry {cid} is not a candidate id in [0, 56)")
        if len(set(self.library)) != len(self.library):
            raise PlanError(f"{where}: the library lists a pattern twice: {self.library}")
        expected = (self.n_blocks, self.in_channels)
        if tuple(self.pattern.shape) != expected:
            raise PlanError(f"{where}: pattern ids have shape {tuple(self.pattern.shape)}, expected {expected}")
        if tuple(self.kept.shape) != expected:
            raise PlanError(f"{where}: kept has shape {tuple(self.kept.shape)}, expected {expected}")
        if self.pattern.size and (self.pattern.min() < 0 or self.pattern.max() >= len(self.library)):
            raise PlanError(
                f"{where}: pattern id out of range: ids must be in [0, {len(self.library)}) "
                f"(the library has {len(self.library)} patterns), found {int(self.pattern.min())}.."
                f"{int(self.pattern.max())}"
            )

    def check_weight(self, weight: np.ndarray, atol: float = 0.0) -> None:
        """PlanError if the weight has another shape or a non-zero outside this layer's mask."""
        weight = np.asarray(weight)
        if tuple(weight.shape) != tuple(self.weight_shape):
            raise PlanError(
                f"layer {self.name!r}: the model's weight has shape {tuple(weight.shape)}, the plan expects "
                f"{tuple(self.weight_shape)}; is this plan for another model?"
            )
        outside = (np.abs(weight) > atol) & ~self.mask()
        if outside.any():
            f, c, dy, dx = (int(v) for v in np.argwhere(outside)[0])
            raise PlanError(
                f"layer {self.name!r}: {int(outside.sum())} non-zero weights lie outside their pattern, e.g. "
                f"filter {f}, channel {c}, tap ({dy}, {dx}); prune the model with this plan first "
                "(spattern.pruning.apply_plan)"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "weight_shape": list(self.weight_shape),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "filter_block": self.filter_block,
            "library": [int(c) for c in self.library],
            "pattern": self.pattern.astype(int).tolist(),
            "kept": self.kept.astype(int).tolist(),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "LayerPlan":
        name = d.get("name", "?")
        try:
            layer = cls(
                name=str(d["name"]),
                weight_shape=tuple(int(v) for v in d["weight_shape"]),  # type: ignore[arg-type]
                stride=tuple(int(v) for v in d["stride"]),  # type: ignore[arg-type]
                padding=tuple(int(v) for v in d["padding"]),  # type: ignore[arg-type]
                filter_block=int(d["filter_block"]),
                library=[int(c) for c in d["library"]],
                pattern=np.asarray(d["pattern"], dtype=np.int32),
                kept=np.asarray(d["kept"], dtype=np.int64).astype(bool),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise PlanError(f"layer {name!r}: malformed plan entry ({type(e).__name__}: {e})") from None
        layer.validate()
        return layer


@dataclass
class PatternPlan:
    """Per-layer pattern structure of a pruned model; layers in forward execution order."""

    layers: list[LayerPlan] = field(default_factory=list)
    model_name: str | None = None
    quant: Any = None  # a spattern.qplan.QuantPlan when the model is quantized (quantize: int8), else None

    def __post_init__(self) -> None:
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise PlanError(f"the plan names a layer twice: {names}")

    def __contains__(self, name: str) -> bool:
        return any(layer.name == name for layer in self.layers)

    def layer(self, name: str) -> LayerPlan:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise PlanError(f"the plan has no layer {name!r}; it has {[l.name for l in self.layers]}")

    def validate(self) -> None:
        for layer in self.layers:
            layer.validate()

    def check_state_dict(self, state: Mapping[str, Any], atol: float = 0.0) -> None:
        """PlanError unless every planned layer exists in `state` with the right shape and zeros."""
        for layer in self.layers:
            key = f"{layer.name}.weight"
            if key not in state:
                raise PlanError(
                    f"layer {layer.name!r} of the plan is not in the model (no {key!r}); is this plan for "
                    "another model?"
                )
            value = state[key]
            value = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
            layer.check_weight(value, atol=atol)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "spattern.PatternPlan",
            "version": FORMAT_VERSION,
            "model_name": self.model_name,
            "layers": [layer.to_json() for layer in self.layers],
            **({"quant": self.quant.to_json()} if self.quant is not None else {}),
        }

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.quant is not None:  # int8 weights and scales beside the JSON (quant.safetensors)
            self.quant.save_arrays(folder)
        return atomic_write_text(folder / PLAN_FILE, json.dumps(self.to_json()))

    @classmethod
    def from_json(cls, d: Mapping[str, Any], quant_arrays: Mapping[str, Any] | None = None) -> "PatternPlan":
        if d.get("format") != "spattern.PatternPlan":
            raise PlanError("not a spattern plan: the JSON has no 'format': 'spattern.PatternPlan'")
        if d.get("version") != FORMAT_VERSION:
            raise PlanError(f"plan format version {d.get('version')} is not supported (expected {FORMAT_VERSION})")
        layers = d.get("layers")
        if not isinstance(layers, list):
            raise PlanError("malformed plan: 'layers' must be a list")
        quant = None
        if d.get("quant") is not None:
            from spattern.qplan import QuantPlan

            quant = QuantPlan.from_json(d["quant"], quant_arrays or {})
        return cls(layers=[LayerPlan.from_json(x) for x in layers], model_name=d.get("model_name"), quant=quant)

    @classmethod
    def load(cls, path: str | Path) -> "PatternPlan":
        path = Path(path)
        if path.is_dir():
            path = path / PLAN_FILE
        if not path.exists():
            raise PlanError(f"no plan at {path}")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise PlanError(f"{path} is not valid JSON: {e}") from None
        if isinstance(data, dict) and data.get("quant") is not None:
            from spattern.qplan import QuantPlan

            return cls.from_json(data, QuantPlan.load_arrays(path.parent))
        return cls.from_json(data)
