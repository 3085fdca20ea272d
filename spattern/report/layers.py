"""The per-layer table's rows: one LayerRow per Conv2d / Linear call of a torch model, with its shapes, MACs and
what the PatternPlan kept (forward hooks give the shapes).

Time share is measured honestly but not inside IREE: per-layer timing inside an IREE module needs tracing builds
(Tracy), which the wheels lack. So the time column, when asked for, is the layer's share of the torch eager
forward pass of the same (dense-shaped) layer, labelled as such. It says where the dense model's time goes, which
is what decides how much pruning a layer can pay back; it is not the compiled module's per-layer time. It is
timed on one thread, because on a busy machine OpenMP's spinning barriers make multi-threaded layer times swing.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

from ..errors import InputError, PlanError


@dataclass
class LayerRow:
    """One compute layer (conv or linear) of a model, as the report shows it."""

    name: str
    kind: str  # "conv3x3", "conv1x1", "dwconv3x3", "conv5x5", "linear", ...
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    mode: str  # "pattern" or "dense"
    filter_block: int | None  # None for dense layers
    macs: int  # dense MACs of the layer (batch included)
    macs_kept_fraction: float  # 1.0 for dense layers
    time_s: float | None = None  # measured seconds per call (torch eager, see module docstring)

    @property
    def macs_kept(self) -> int:
        return int(round(self.macs * self.macs_kept_fraction))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("in_shape", "out_shape", "weight_shape"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "LayerRow":
        try:
            return cls(name=str(d["name"]), kind=str(d["kind"]), in_shape=tuple(d["in_shape"]),
                       out_shape=tuple(d["out_shape"]), weight_shape=tuple(d["weight_shape"]), mode=str(d["mode"]),
                       filter_block=None if d.get("filter_block") is None else int(d["filter_block"]),
                       macs=int(d["macs"]), macs_kept_fraction=float(d["macs_kept_fraction"]),
                       time_s=None if d.get("time_s") is None else float(d["time_s"]))
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"malformed layer record {d!r}: {type(e).__name__}: {e}") from None


def _kind(module: Any) -> str:
    from torch import nn

    if isinstance(module, nn.Linear):
        return "linear"
    kh, kw = module.kernel_size
    size = f"{kh}x{kw}"
    if module.groups > 1 and module.groups == module.in_channels:
        return f"dwconv{size}"
    return f"gconv{size}" if module.groups > 1 else f"conv{size}"


def _macs(module: Any, out_shape: tuple[int, ...]) -> int:
    from torch import nn

    numel = 1
    for d in out_shape:
        numel *= int(d)
    if isinstance(module, nn.Linear):
        return numel * module.in_features
    kh, kw = module.kernel_size
    return numel * (module.in_channels // module.groups) * kh * kw


def layer_table(model: Any, example_input: Any, plan: Any = None, time_repeat: int = 0) -> list[LayerRow]:
    """One LayerRow per Conv2d / Linear call, in execution order.

    plan: a PatternPlan; its layers are "pattern" rows with the plan's filter block and MACs-kept fraction, every
    other layer is "dense". PlanError if the plan names a layer the model does not have or with another shape.
    time_repeat > 0 measures each layer's torch eager time, on one thread (median of that many forward passes, after
    one warmup).
    """
    import torch
    from torch import nn

    if not isinstance(model, nn.Module):
        raise InputError(f"layer_table needs a torch.nn.Module, got {type(model).__name__} (an ExportedProgram "
                         "has no modules to hook; pass the nn.Module it was exported from)")
    x = example_input[0] if isinstance(example_input, (list, tuple)) else example_input
    if not isinstance(x, torch.Tensor):
        raise InputError(f"example input must be a torch.Tensor, got {type(x).__name__}")
    planned = {layer.name: layer for layer in plan.layers} if plan is not None else {}
    modules = {name: m for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    for name in planned:
        if name not in modules:
            raise PlanError(f"the plan names layer {name!r}, which is not a Conv2d of this model; is this plan "
                            "for another model?")
        if tuple(modules[name].weight.shape) != tuple(planned[name].weight_shape):
            raise PlanError(f"layer {name!r}: the model's weight has shape {tuple(modules[name].weight.shape)}, "
                            f"the plan expects {tuple(planned[name].weight_shape)}")

    rows: dict[str, LayerRow] = {}
    starts: dict[str, float] = {}
    times: dict[str, list[float]] = {name: [] for name in modules}

    def pre(name: str):
        def hook(mod: Any, inputs: Any) -> None:
            starts[name] = time.perf_counter()
        return hook

    def post(name: str):
        def hook(mod: Any, inputs: Any, output: Any) -> None:
            times[name].append(time.perf_counter() - starts[name])
            if name in rows:
                return
            lp = planned.get(name)
            rows[name] = LayerRow(
                name=name, kind=_kind(mod), in_shape=tuple(inputs[0].shape), out_shape=tuple(output.shape),
                weight_shape=tuple(mod.weight.shape), mode="pattern" if lp is not None else "dense",
                filter_block=lp.filter_block if lp is not None else None,
                macs=_macs(mod, tuple(output.shape)),
                macs_kept_fraction=lp.macs_kept_fraction() if lp is not None else 1.0)
        return hook

    handles = []
    for name, m in modules.items():
        handles.append(m.register_forward_pre_hook(pre(name)))
        handles.append(m.register_forward_hook(post(name)))
    threads = torch.get_num_threads()
    try:
        with torch.no_grad():
            model(x)
            for ts in times.values():
                ts.clear()
            # one thread: shares stay meaningful on a busy machine, where OpenMP's spinning barriers make
            # multi-threaded layer times swing by 10x (measured here under load)
            torch.set_num_threads(1)
            for _ in range(max(0, time_repeat)):
                model(x)
    finally:
        torch.set_num_threads(threads)
        for h in handles:
            h.remove()
    out = list(rows.values())
    if time_repeat > 0:
        for row in out:
            ts = sorted(times[row.name])
            # a module called k times per forward (shared layers) is timed k times per pass: sum per pass
            per_pass = len(ts) // time_repeat or 1
            row.time_s = ts[len(ts) // 2] * per_pass if ts else None
    return out


@dataclass
class Totals:
    macs: int
    macs_kept: int
    pattern_layers: int
    dense_layers: int

    @property
    def mac_limit(self) -> float:
        """The speedup the kept MACs allow at best (dense MACs / kept MACs)."""
        return self.macs / self.macs_kept if self.macs_kept else float("inf")


def totals(rows: Sequence[LayerRow]) -> Totals:
    return Totals(macs=sum(r.macs for r in rows), macs_kept=sum(r.macs_kept for r in rows),
                  pattern_layers=sum(r.mode == "pattern" for r in rows),
                  dense_layers=sum(r.mode != "pattern" for r in rows))
