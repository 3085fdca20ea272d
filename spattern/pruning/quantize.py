"""Data-free int8 quantization of a pruned model (`quantize: int8`; DESIGN.md "int8").

Stages, on the same BatchNorm-matched synthetic images pruning used (ZeroQ-style; no real image is read):
(1) trace the pruned model, fold BatchNorm, fuse ReLUs (qgraph.py); (2) calibrate each activation's range (min /
max over the images) into a u8 grid (qarith.act_quant: zero point 0 after a ReLU, asymmetric elsewhere);
(3) recover: distil the fake-quantized model towards the dense one (distill.distill, masks fixed, weights
fake-quantized per output channel with a straight-through gradient, activation grids fixed), kept only if it
lowers the divergence on held-out synthetic images; (4) write the trained weights back into the pruned model and
derive the QuantPlan (int8 weights, int32 biases, float32 requantization multipliers; qplan.py).
On the owner's side, optionally: `calibrate_int8` on their own images, `finetune_int8` on their labelled data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .. import qarith
from ..errors import ConfigError, PlanError
from ..qarith import ActQuant
from ..qplan import QuantNode, QuantPlan
from .distill import distill, divergence, keep_if_better, logits_of
from .qgraph import GNode, QGraph, build_graph, run_fx, write_back

if TYPE_CHECKING:
    from ..plan import PatternPlan


def _ste(x: torch.Tensor, y: torch.Tensor, pass_grad: torch.Tensor | None = None) -> torch.Tensor:
    """y's value with x's gradient (masked to pass_grad where given): the straight-through estimator."""
    g = x - x.detach()
    return y.detach() + (g if pass_grad is None else g * pass_grad)


def fake_quant_act(x: torch.Tensor, q: ActQuant) -> torch.Tensor:
    """x on its u8 grid (qarith.quantize_input then dequantize); gradient passed inside the range only."""
    r = torch.round(x / q.scale) + q.zero_point
    inside = (r >= qarith.U8_MIN) & (r <= qarith.U8_MAX)
    y = (torch.clamp(r, qarith.U8_MIN, qarith.U8_MAX) - q.zero_point) * q.scale
    return _ste(x, y, inside.to(x.dtype))


def fake_quant_weight(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(w on its per-output-channel int8 grid, the scales [F]); zeros stay zero."""
    s = qarith.weight_scales(w)
    return _ste(w, qarith.quantize_weight(w, s).to(w.dtype) * s.reshape(-1, *([1] * (w.dim() - 1)))), s


def _fake_quant_bias(b: torch.Tensor | None, s_in: float, s_w: torch.Tensor) -> torch.Tensor | None:
    if b is None:
        return None
    grid = (s_in * s_w).to(b.dtype)
    return _ste(b, torch.round(b / grid) * grid)


def _clamp_lo(n: GNode, out: ActQuant) -> int:
    return out.zero_point if n.relu or n.op == "relu" else qarith.U8_MIN


def _inherits_grid(n: GNode) -> bool:
    """Ops whose output stays on their input's u8 grid (no calibration of their own)."""
    return n.op in ("maxpool", "view", "avgpool")


def run_float(graph: QGraph, x: torch.Tensor, observe: Callable[[GNode, torch.Tensor], None] | None = None) -> Any:
    """The folded float graph (what calibration measures); observe(node, value) sees every activation."""
    env: dict[str, Any] = {}
    for n in graph.nodes:
        v = x if n.op == "input" else run_fx(graph.gm, n.fx, env)
        if n.relu:
            v = F.relu(v)
        env[n.name] = v
        if observe is not None and n.op != "meta":
            observe(n, v)
    return env[graph.outputs[0]] if len(graph.outputs) == 1 else tuple(env[o] for o in graph.outputs)


@torch.no_grad()
def calibrate(graph: QGraph, images: torch.Tensor, batch: int = 64) -> dict[str, ActQuant]:
    """Each activation's u8 grid from its min / max over `images`; pools and views keep their input's grid."""
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}

    def observe(n: GNode, v: torch.Tensor) -> None:
        lo[n.name] = min(lo.get(n.name, 0.0), float(v.min()))
        hi[n.name] = max(hi.get(n.name, 0.0), float(v.max()))

    for a in range(0, images.shape[0], batch):
        run_float(graph, images[a:a + batch], observe)
    acts: dict[str, ActQuant] = {}
    for n in graph.nodes:
        if n.op == "meta":
            continue
        acts[n.name] = acts[n.inputs[0]] if _inherits_grid(n) else qarith.act_quant(lo[n.name], hi[n.name])
    return acts


class FakeQuantModel(nn.Module):
    """The graph in float with every weight and activation rounded to its int8 / u8 grid (straight-through
    gradients): what distillation trains. Its parameters are the folded graph's, so masks on its convs hold."""

    def __init__(self, graph: QGraph, acts: dict[str, ActQuant]):
        super().__init__()
        self.gm = graph.gm
        self.graph = graph
        self.acts = acts

    def _weighted(self, n: GNode, env: dict[str, Any]) -> torch.Tensor:
        m = self.graph.module(n)
        w, s_w = fake_quant_weight(m.weight)
        b = _fake_quant_bias(m.bias, self.acts[n.inputs[0]].scale, s_w)
        if n.op == "conv":
            return run_fx(self.gm, n.fx, env, fn=lambda x: m._conv_forward(x, w, b))
        return run_fx(self.gm, n.fx, env, fn=lambda x: F.linear(x, w, b))

    def step(self, n: GNode, env: dict[str, Any], x: torch.Tensor | None = None) -> Any:
        """Node n's value from the values of its inputs in env (x: the network input, for the input node)."""
        if n.op == "input":
            v = x
        elif n.op in ("conv", "linear"):
            v = self._weighted(n, env)
        else:
            v = run_fx(self.gm, n.fx, env)
        if n.relu:
            v = F.relu(v)
        return v if n.op in ("meta", "maxpool", "view") else fake_quant_act(v, self.acts[n.name])

    def forward(self, x: torch.Tensor) -> Any:
        env: dict[str, Any] = {}
        for n in self.graph.nodes:
            env[n.name] = self.step(n, env, x)
        outs = [env[o] for o in self.graph.outputs]
        return outs[0] if len(outs) == 1 else tuple(outs)


def _weighted_node(graph: QGraph, n: GNode, acts: dict[str, ActQuant]) -> tuple[QuantNode, dict[str, torch.Tensor]]:
    m = graph.module(n)
    s_in, out = acts[n.inputs[0]], acts[n.name]
    s_w = qarith.weight_scales(m.weight)
    w_q = qarith.quantize_weight(m.weight, s_w)
    arrays = {"weight": w_q, "weight_scale": s_w,
              "bias": qarith.fold_bias(m.bias, s_in.scale, s_w, s_in.zero_point, w_q),
              "requant_scale": qarith.requant_scale(s_in.scale, s_w, out.scale)}
    return QuantNode(n.name, n.op, list(n.inputs), out, (_clamp_lo(n, out), qarith.U8_MAX), n.module), arrays


def _attrs(graph: QGraph, n: GNode, acts: dict[str, ActQuant], example_shape: tuple[int, ...]) -> dict[str, Any]:
    out = acts[n.name]
    if n.op == "input":
        return {"shape": list(example_shape)}
    if n.op == "add":
        a, b = (acts[i] for i in n.inputs)
        return {"add": qarith.add_quant(a.scale, b.scale, out.scale).to_json()}
    if n.op in ("cat", "relu"):
        scales = [float(qarith.requant_scale(acts[i].scale, 1.0, out.scale)) for i in n.inputs]
        return {"scales": scales, "dim": _cat_dim(n)} if n.op == "cat" else {"scale": scales[0]}
    if n.op == "avgpool":
        k = _pool_window(graph, n, acts)
        return {"kernel": list(k["kernel"]), "stride": list(k["stride"]), "padding": list(k["padding"]),
                "scale": float(qarith.requant_scale(1.0, 1.0, float(k["kernel"][0] * k["kernel"][1])))}
    if n.op == "fallback":
        return {"what": n.why}
    return {}


def _cat_dim(n: GNode) -> int:
    return int(n.fx.kwargs.get("dim", n.fx.args[1] if len(n.fx.args) > 1 else 0))


def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _pool_window(graph: QGraph, n: GNode, acts: dict[str, ActQuant]) -> dict[str, tuple[int, int]]:
    """An average pool as (kernel, stride, padding); an adaptive one with uniform windows as the plain pool."""
    m = graph.module(n)
    if isinstance(m, nn.AdaptiveAvgPool2d):
        h, w = graph.spatial[n.inputs[0]]
        oh, ow = _pair(m.output_size)
        return {"kernel": (h // oh, w // ow), "stride": (h // oh, w // ow), "padding": (0, 0)}
    k = _pair(m.kernel_size)
    return {"kernel": k, "stride": _pair(m.stride if m.stride is not None else k), "padding": _pair(m.padding)}


def quant_plan(graph: QGraph, acts: dict[str, ActQuant], example_shape: tuple[int, ...]) -> QuantPlan:
    """The QuantPlan of the graph's current weights and these activation grids."""
    nodes, arrays = [], {}
    for n in graph.nodes:
        if n.op == "meta":
            continue
        if n.op in ("conv", "linear"):
            qn, arr = _weighted_node(graph, n, acts)
            arrays.update({f"{n.name}.{k}": v for k, v in arr.items()})
        else:
            out = acts[n.name]
            qn = QuantNode(n.name, n.op, list(n.inputs), out, (_clamp_lo(n, out), qarith.U8_MAX), n.module)
        qn.attrs = {**qn.attrs, **_attrs(graph, n, acts, example_shape)}
        nodes.append(qn)
    plan = QuantPlan(nodes=nodes, outputs=list(graph.outputs), arrays=arrays)
    plan.validate()
    return plan


def pattern_masks(graph: QGraph, plan: PatternPlan) -> dict[nn.Conv2d, torch.Tensor]:
    """{folded conv of the graph: its pattern mask}: the masks distillation keeps fixed."""
    return {graph.gm.get_submodule(lp.name): torch.from_numpy(lp.mask()).to(torch.float32) for lp in plan.layers}


def quantize(pruned: nn.Module, dense: nn.Module, images: torch.Tensor, plan: PatternPlan, steps: int = 100,
             seed: int = 0, precision: str = "float32", on_step: Callable[[int, int], None] | None = None
             ) -> tuple[QuantPlan, dict[str, Any]]:
    """Quantize `pruned` (in place: its weights take the recovered ones) on synthetic `images`; returns the
    QuantPlan and a report (divergences before and after recovery, fallbacks)."""
    example = images[:1]
    graph = build_graph(pruned, example)
    n_hold = max(1, images.shape[0] // 8)
    train, hold = (images[:-n_hold], images[-n_hold:]) if images.shape[0] > 1 else (images, images)
    acts = calibrate(graph, train)
    fq = FakeQuantModel(graph, acts)
    hold_logits = logits_of(dense, hold)
    score = lambda: divergence(fq, hold_logits, hold)  # noqa: E731
    report: dict[str, Any] = {"kl_float": divergence(pruned, hold_logits, hold), "kl_calibrated": score()}
    if steps > 0:
        kept, before, after = keep_if_better(
            fq, lambda: distill(fq, dense, train, pattern_masks(graph, plan), steps=steps, seed=seed,
                                precision=precision, on_step=on_step), score)
        report["distillation"] = {"kept": kept, "kl_before": before, "kl_after": after}
        if kept:  # else the model keeps its own weights, bit for bit
            write_back(graph, pruned)
    qp = quant_plan(graph, acts, tuple(example.shape))
    report["fallbacks"] = [f"{n.name} ({n.attrs.get('what')})" for n in qp.fallbacks()]
    return qp, report


def _require_quant(plan: PatternPlan) -> QuantPlan:
    if getattr(plan, "quant", None) is None:
        raise PlanError("this plan is not quantized; prune with quantize: int8 (spattern prune --quantize int8)")
    return plan.quant


def _graph_and_acts(model: nn.Module, plan: PatternPlan) -> tuple[QGraph, dict[str, ActQuant], tuple[int, ...]]:
    qp = _require_quant(plan)
    shape = tuple(qp.nodes[0].attrs.get("shape", ()))
    graph = build_graph(model, torch.zeros(shape))
    acts = {n.name: n.out for n in qp.nodes}
    missing = [n.name for n in graph.nodes if n.op != "meta" and n.name not in acts]
    if missing:
        raise PlanError(f"the int8 plan does not fit this model (no grid for {missing[:3]}); is it for another model?")
    return graph, acts, shape


def calibrate_int8(model: nn.Module, plan: PatternPlan, images: torch.Tensor) -> PatternPlan:
    """Owner's option: recalibrate the activation grids on their own images (float, [N, C, H, W], the model's
    normalisation); returns the plan with a new QuantPlan (weights unchanged)."""
    graph, _, shape = _graph_and_acts(model, plan)
    plan.quant = quant_plan(graph, calibrate(graph, images), shape)
    return plan


def finetune_int8(model: nn.Module, plan: PatternPlan, loader: Iterable, epochs: int = 1, lr: float = 1e-3,
                  **kw: Any) -> nn.Module:
    """Owner's option: quantization-aware fine-tuning on their labelled data, masks fixed, activation grids
    fixed; the model (in place) and plan.quant take the result. kw: finetune's (weight_decay, momentum,
    loss_fn)."""
    from .finetune import masked_sgd

    if epochs < 0:
        raise ConfigError(f"epochs must be an integer >= 0, got {epochs!r}")
    graph, acts, shape = _graph_and_acts(model, plan)
    fq = FakeQuantModel(graph, acts)
    masked_sgd(fq, pattern_masks(graph, plan), loader, epochs=epochs, lr=lr, **kw)
    write_back(graph, model)
    plan.quant = quant_plan(graph, acts, shape)
    return model
