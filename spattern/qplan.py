"""QuantPlan: the int8 half of a plan (scales, zero points, int8 weights, int32 biases), a leaf contract.

Written by the quantizer (`spattern.pruning.quantize`), read by the integer reference and, later, by the int8
lowering; the arithmetic it parameterises is `spattern.qarith` (named by `scheme`). A plan is a list of nodes in
execution order, one per value of the model's traced graph (after BatchNorm folding and ReLU fusion): each has
its op, its input nodes, the module it runs (if any), its output's u8 grid and clamp, and op attributes. Conv and
linear nodes own four arrays, saved in safetensors beside plan.json (never pickled):
`<node>.weight` int8 [F, ...], `<node>.weight_scale` float32 [F], `<node>.bias` int32 [F] (zero point folded in),
`<node>.requant_scale` float32 [F]. Everything a later stage needs is stored, so nothing is recomputed there.
Node names are the torch.fx names of the traced model ("features_3", "add_1"); `module` is the module's own path
("features.3"), which is how the plan's pattern layers and the exported IR name a conv.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from .errors import PlanError
from .qarith import SCHEME, U8_MAX, U8_MIN, ActQuant, AddQuant

QUANT_FILE = "quant.safetensors"
# input: quantize the float input; conv/linear: int8 GEMM + requantize; add: integer residual add; cat: each
# input requantized to the output grid; relu: requantize to a zero point of 0; maxpool/avgpool: on u8;
# view: shape only (flatten, reshape, dropout, identity); fallback: dequantize, run fp32, quantize back
OPS = ("input", "conv", "linear", "add", "cat", "relu", "maxpool", "avgpool", "view", "fallback")
WEIGHT_ARRAYS = {"weight": torch.int8, "weight_scale": torch.float32, "bias": torch.int32,
                 "requant_scale": torch.float32}


@dataclass
class QuantNode:
    name: str
    op: str
    inputs: list[str]
    out: ActQuant
    clamp: tuple[int, int] = (U8_MIN, U8_MAX)
    module: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def add_params(self) -> AddQuant:
        return AddQuant(**self.attrs["add"])

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, "inputs": list(self.inputs), **self.out.to_json(),
                "clamp": list(self.clamp), "module": self.module, "attrs": self.attrs}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "QuantNode":
        name = d.get("name", "?")
        try:
            node = cls(name=str(d["name"]), op=str(d["op"]), inputs=[str(x) for x in d["inputs"]],
                       out=ActQuant(float(d["scale"]), int(d["zero_point"])),
                       clamp=(int(d["clamp"][0]), int(d["clamp"][1])), module=d.get("module"),
                       attrs=dict(d.get("attrs") or {}))
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise PlanError(f"int8 node {name!r}: malformed entry ({type(e).__name__}: {e})") from None
        node.validate()
        return node

    def validate(self) -> None:
        where = f"int8 node {self.name!r}"
        if self.op not in OPS:
            raise PlanError(f"{where}: unknown op {self.op!r}; known: {', '.join(OPS)}")
        if not (math.isfinite(self.out.scale) and self.out.scale > 0):
            raise PlanError(f"{where}: scale must be finite and positive, got {self.out.scale}")
        if not U8_MIN <= self.out.zero_point <= U8_MAX:
            raise PlanError(f"{where}: zero point {self.out.zero_point} is outside [0, 255]")
        lo, hi = self.clamp
        if not U8_MIN <= lo <= hi <= U8_MAX:
            raise PlanError(f"{where}: clamp {self.clamp} is not a sub-range of [0, 255]")
        if self.op == "add":
            AddQuant(**self.attrs.get("add", {}))


@dataclass
class QuantPlan:
    """The int8 plan of a model: nodes in execution order, the outputs, and the conv / linear arrays."""

    nodes: list[QuantNode]
    outputs: list[str]
    arrays: dict[str, torch.Tensor] = field(default_factory=dict)
    scheme: str = SCHEME

    def node(self, name: str) -> QuantNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise PlanError(f"the int8 plan has no node {name!r}")

    def weights(self, node: str) -> dict[str, torch.Tensor]:
        return {k: self.arrays[f"{node}.{k}"] for k in WEIGHT_ARRAYS}

    def fallbacks(self) -> list[QuantNode]:
        """The nodes the int8 path does not cover (dequantize, fp32, quantize back)."""
        return [n for n in self.nodes if n.op == "fallback"]

    def validate(self) -> None:
        if self.scheme != SCHEME:
            raise PlanError(f"the int8 plan uses arithmetic {self.scheme!r}; this spattern implements {SCHEME!r}: "
                            "quantize the model again")
        seen: set[str] = set()
        for n in self.nodes:
            n.validate()
            if n.name in seen:
                raise PlanError(f"the int8 plan names node {n.name!r} twice")
            missing = [i for i in n.inputs if i not in seen]
            if missing:
                raise PlanError(f"int8 node {n.name!r} reads {missing}, which no earlier node writes")
            seen.add(n.name)
            if n.op in ("conv", "linear"):
                self._check_arrays(n)
        for o in self.outputs:
            if o not in seen:
                raise PlanError(f"the int8 plan's output {o!r} is not one of its nodes")

    def _check_arrays(self, n: QuantNode) -> None:
        f = None
        for key, dtype in WEIGHT_ARRAYS.items():
            t = self.arrays.get(f"{n.name}.{key}")
            if t is None:
                raise PlanError(f"int8 node {n.name!r}: {QUANT_FILE} has no {n.name}.{key}")
            if t.dtype != dtype:
                raise PlanError(f"int8 node {n.name!r}: {key} is {t.dtype}, expected {dtype}")
            f = t.shape[0] if f is None else f
            if t.shape[0] != f:
                raise PlanError(f"int8 node {n.name!r}: {key} has {t.shape[0]} channels, the weight has {f}")

    def to_json(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "outputs": list(self.outputs), "nodes": [n.to_json() for n in self.nodes]}

    @classmethod
    def from_json(cls, d: Mapping[str, Any], arrays: Mapping[str, torch.Tensor]) -> "QuantPlan":
        if not isinstance(d.get("nodes"), list) or not isinstance(d.get("outputs"), list):
            raise PlanError("malformed int8 plan: 'nodes' and 'outputs' must be lists")
        plan = cls(nodes=[QuantNode.from_json(x) for x in d["nodes"]], outputs=[str(x) for x in d["outputs"]],
                   arrays=dict(arrays), scheme=str(d.get("scheme")))
        plan.validate()
        return plan

    def save_arrays(self, folder: str | Path) -> Path:
        from safetensors.torch import save

        from .fileio import atomic_write_bytes

        return atomic_write_bytes(Path(folder) / QUANT_FILE,
                                  save({k: v.detach().cpu().contiguous() for k, v in self.arrays.items()}))

    @staticmethod
    def load_arrays(folder: str | Path) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        path = Path(folder) / QUANT_FILE
        if not path.is_file():
            raise PlanError(f"the plan is int8, and {path} (its weights and scales) is missing")
        try:
            return load_file(str(path))
        except Exception as e:
            raise PlanError(f"{path} is not a readable safetensors file: {e}") from None
