"""Pruning configuration: a default rule, per-layer overrides by glob on module names, an exclude list.

Shaped like the pruning tools users know (a default plus overrides by name pattern). A rule of None (or an
exclude match) keeps a layer dense. Convs the pattern kernels cannot run (not 3x3, groups != 1, dilated) and the
first conv (3 input channels, too little to prune and most sensitive) stay dense unless a rule names them.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError
from .library import N_CANDIDATES, validate_library
from .precision import PRECISIONS

QUANTIZE_MODES = ("int8",)

# synth_resolution "auto": inputs larger than this are synthesised at it. The layer-wise fits only need the
# activation statistics, which 112x112 images of a 224 model reproduce (bench/results/accuracy-vgg16-timing-*).
AUTO_SYNTH_RESOLUTION = 112

FILTER_BLOCKS_HINT = "1 (a pattern per kernel, the default), 8, 64"


def _check_fields(cls: type, d: Any, where: str) -> None:
    """ConfigError unless d is a mapping whose keys are all fields of the dataclass cls."""
    if not isinstance(d, Mapping):
        raise ConfigError(f"{where}: expected a mapping (or null to keep a layer dense), got {d!r}")
    known = {f.name for f in fields(cls)}
    unknown = set(d) - known
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(known)}")


@dataclass
class LayerRule:
    """How one layer is pruned.

    connectivity: fraction of (filter block, input channel) kernel sets removed, in [0, 1).
    filter_block: filters sharing one pattern per input channel (1 = per-kernel patterns).
    library_size: patterns chosen from this layer's own weights when `library` is None.
    library: explicit pattern library (candidate ids 0..55 or tap lists), validated."""

    connectivity: float = 0.0
    filter_block: int = 1
    library_size: int = 8
    library: list[int] | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, where: str = "LayerRule") -> None:
        if isinstance(self.connectivity, bool) or not isinstance(self.connectivity, (int, float)) \
                or not 0.0 <= float(self.connectivity) < 1.0:
            raise ConfigError(f"{where}: connectivity must be a fraction in [0, 1), got {self.connectivity!r}")
        self.connectivity = float(self.connectivity)
        if isinstance(self.filter_block, bool) or not isinstance(self.filter_block, int) or self.filter_block < 1:
            raise ConfigError(f"{where}: filter_block must be an integer >= 1 (e.g. {FILTER_BLOCKS_HINT}), "
                              f"got {self.filter_block!r}")
        if isinstance(self.library_size, bool) or not isinstance(self.library_size, int) \
                or not 1 <= self.library_size <= N_CANDIDATES:
            raise ConfigError(f"{where}: library_size must be an integer in 1..{N_CANDIDATES}, "
                              f"got {self.library_size!r}")
        if self.library is not None:
            self.library = validate_library(self.library, where=f"{where}: library")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, where: str) -> "LayerRule | None":
        if d is None:
            return None
        _check_fields(cls, d, where)
        rule = cls.__new__(cls)
        for f in fields(cls):
            setattr(rule, f.name, d.get(f.name, f.default))
        rule.validate(where)
        return rule


@dataclass
class PruneConfig:
    """Which layers are pruned and how, plus the effort of the data-free stages.

    rules: glob on module names (fnmatch, e.g. "layer4.*") -> LayerRule, or None to keep that layer dense; the
    last matching rule wins. exclude: globs of layers kept dense whatever the rules say.
    The remaining fields size the synthetic data and the optimisers: more is slower and usually more accurate."""

    default: LayerRule = field(default_factory=LayerRule)
    rules: dict[str, LayerRule | None] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)
    synthetic: str = "bn"  # "bn" (BatchNorm-statistics matched) or "gaussian" (baseline only)
    num_samples: int = 256  # synthetic images
    synth_steps: int = 200
    # synthesise (and fit) at this size when the input is larger; "auto": AUTO_SYNTH_RESOLUTION (224 -> 112, a
    # quarter of the work per step; 32x32 inputs unchanged); None: always at the input's size
    synth_resolution: int | str | None = "auto"
    positions: int = 8192  # sampled output positions per layer for the least-squares fits
    admm_iters: int = 24
    method: str = "admm"  # "admm", "refit" (projection + least-squares refit), "magnitude" (projection only)
    distill_steps: int = 100
    recalibrate_bn: bool = True
    # the synthesis and distillation passes: "float32", "bfloat16" (autocast; 2.5-3x faster where the CPU has
    # AVX512-BF16 / AMX, slower where it emulates it) or "auto" (bfloat16 where native); fits stay float32/64.
    # Not "auto" by default yet: where it means bfloat16, its accuracy with the plateau stop is not yet measured.
    precision: str = "float32"
    # the model's arithmetic after pruning: None (float32) or "int8" (per-channel int8 weights, u8 activations,
    # calibrated and recovered on the same synthetic images; DESIGN.md "int8"). Not `precision`, which is the
    # arithmetic of the synthesis passes.
    quantize: str | None = None
    quantize_distill_steps: int = 100  # recovery steps with fake quantization (0: calibration only)

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def quick(cls) -> "PruneConfig":
        """A shorter preset (`spattern prune --quick`): a quarter of the synthetic images, a quarter of the
        synthesis steps, half the sampled positions, ADMM iterations and a third of the distillation steps;
        about 1/16 of the synthesis work, which dominates small models. Its accuracy cost has not yet been
        measured with bench/accuracy.py."""
        return cls(num_samples=64, synth_steps=50, positions=4096, admm_iters=12, distill_steps=30)

    def validate(self) -> None:
        if not isinstance(self.default, LayerRule):
            raise ConfigError("PruneConfig.default must be a LayerRule")
        self.default.validate("default")
        if not isinstance(self.rules, Mapping):
            raise ConfigError("PruneConfig.rules must map module-name globs to LayerRule or None")
        for pat, rule in self.rules.items():
            if not isinstance(pat, str) or not pat:
                raise ConfigError(f"rule key {pat!r} must be a non-empty module-name glob")
            if rule is not None and not isinstance(rule, LayerRule):
                raise ConfigError(f"rule {pat!r}: expected a LayerRule or None, got {type(rule).__name__}")
            if rule is not None:
                rule.validate(f"rule {pat!r}")
        if isinstance(self.exclude, str) or not all(isinstance(x, str) for x in self.exclude):
            raise ConfigError("PruneConfig.exclude must be a list of module-name globs")
        if self.synthetic not in ("bn", "gaussian"):
            raise ConfigError(f"synthetic must be 'bn' or 'gaussian', got {self.synthetic!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.quantize is not None and self.quantize not in QUANTIZE_MODES:
            raise ConfigError(f"quantize must be null (float32) or one of {', '.join(QUANTIZE_MODES)}, "
                              f"got {self.quantize!r}")
        if self.method not in ("admm", "refit", "magnitude"):
            raise ConfigError(f"method must be 'admm', 'refit' or 'magnitude', got {self.method!r}")
        for name in ("num_samples", "positions"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("synth_steps", "admm_iters", "distill_steps", "quantize_distill_steps"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {getattr(self, name)!r}")
        if self.synth_resolution not in (None, "auto") and (isinstance(self.synth_resolution, bool)
                                                             or not isinstance(self.synth_resolution, int)
                                                             or self.synth_resolution < 8):
            raise ConfigError(f"synth_resolution must be None, 'auto' or an integer >= 8, "
                              f"got {self.synth_resolution!r}")

    def synthesis_size(self, h: int, w: int) -> tuple[int, int]:
        """The (height, width) the synthetic images have (and the fits run at) for an h x w input."""
        size = AUTO_SYNTH_RESOLUTION if self.synth_resolution == "auto" else self.synth_resolution
        if isinstance(size, int) and max(h, w) > size:
            return size, size
        return h, w

    def rule_for(self, name: str, in_channels: int, prunable: bool) -> LayerRule | None:
        """The rule for a module, or None when it stays dense."""
        if any(fnmatch.fnmatchcase(name, pat) for pat in self.exclude):
            return None
        rule: LayerRule | None = self.default if (prunable and in_channels > 3) else None
        named = False
        for pat, r in self.rules.items():
            if fnmatch.fnmatchcase(name, pat):
                rule, named = r, True
        if rule is not None and not prunable:
            if named:
                raise ConfigError(f"rule for {name!r}: this layer is not a 3x3 conv with groups=1 and dilation=1, "
                                  "so it cannot be pattern-pruned; remove the rule or exclude the layer")
            return None
        return rule

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PruneConfig":
        _check_fields(cls, d, "prune config")
        kwargs: dict[str, Any] = {k: v for k, v in d.items() if k not in ("default", "rules", "exclude")}
        default = LayerRule.from_dict(d.get("default", {}), "default")
        if default is None:
            raise ConfigError("default: must be a rule mapping (use exclude or rules to keep layers dense)")
        rules_raw = d.get("rules", {}) or {}
        if not isinstance(rules_raw, Mapping):
            raise ConfigError("rules: must map module-name globs to rule mappings or null")
        rules = {str(k): LayerRule.from_dict(v, f"rule {k!r}") for k, v in rules_raw.items()}
        exclude = d.get("exclude", []) or []
        if isinstance(exclude, str) or not isinstance(exclude, list):
            raise ConfigError("exclude: must be a list of module-name globs")
        return cls(default=default, rules=rules, exclude=[str(x) for x in exclude], **kwargs)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "PruneConfig":
        """Load a config such as:

            default: {connectivity: 0.5, filter_block: 1, library_size: 8}
            rules:
              "layer4.*": {connectivity: 0.3}
              "features.3": null        # keep dense
            exclude: ["classifier.*"]
            quantize: int8              # optional: int8 weights and activations
        """
        import yaml

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"no prune config at {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {e}") from None
        try:
            return cls.from_dict(data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
