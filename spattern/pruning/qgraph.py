"""The graph the int8 path quantizes: the pruned model traced by torch.fx, BatchNorm folded into the conv (or
linear) before it, a ReLU fused into the conv / linear / add it follows, each node sorted into an int8 op
(`spattern.qplan.OPS`) or a fallback. The calibration, the fake-quant model and the integer reference all run
this one graph, so they agree on what a node is; its node names are the QuantPlan's.

Folding keeps pruned zeros (a folded weight is the weight times a per-channel factor), so the pattern masks hold
for the folded convs. `write_back` returns trained folded weights to the model's conv + BatchNorm pairs.
"""

from __future__ import annotations

import copy
import operator
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from ..errors import ConfigError

_RELU_FUNCTIONS = {F.relu, torch.relu, torch.relu_}
_ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}
_VIEW_METHODS = {"view", "reshape", "flatten", "contiguous"}
_VIEW_MODULES = (nn.Flatten, nn.Dropout, nn.Identity)
_FUSABLE_INTO = ("conv", "linear", "add")


@dataclass
class GNode:
    """One value of the graph. op: an int8 op (qplan.OPS), or "meta" for values that are not quantized
    activations (sizes, constants); inputs: the quantized activations it reads."""

    name: str
    op: str
    fx: torch.fx.Node
    inputs: list[str] = field(default_factory=list)
    relu: bool = False
    module: str | None = None
    why: str = ""  # for a fallback: what it is


@dataclass
class QGraph:
    gm: torch.fx.GraphModule
    nodes: list[GNode]
    outputs: list[str]
    folded: dict[str, str]  # conv / linear module -> the BatchNorm folded into it
    spatial: dict[str, tuple[int, ...]] = field(default_factory=dict)  # activation -> its (H, W) on the example

    def node(self, name: str) -> GNode:
        return self._by_name()[name]

    def _by_name(self) -> dict[str, GNode]:
        return {n.name: n for n in self.nodes}

    def weighted(self) -> list[GNode]:
        return [n for n in self.nodes if n.op in ("conv", "linear")]

    def module(self, n: GNode) -> nn.Module:
        return self.gm.get_submodule(str(n.fx.target))


def _set_module(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, module)


def _fold_batchnorm(gm: torch.fx.GraphModule) -> dict[str, str]:
    """Fold every eval-mode BatchNorm whose input is a conv / linear used by it alone; returns conv -> bn."""
    folded: dict[str, str] = {}
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(gm.get_submodule(node.target), nn.modules.batchnorm._BatchNorm):
            continue
        prev = node.args[0]
        if not isinstance(prev, torch.fx.Node) or prev.op != "call_module" or len(prev.users) != 1:
            continue
        producer, bn = gm.get_submodule(prev.target), gm.get_submodule(node.target)
        if bn.running_mean is None or prev.target in folded:
            continue
        if isinstance(producer, nn.Conv2d):
            fused = fuse_conv_bn_eval(producer, bn)
        elif isinstance(producer, nn.Linear) and isinstance(bn, nn.BatchNorm1d):
            fused = fuse_linear_bn_eval(producer, bn)
        else:
            continue
        _set_module(gm, prev.target, fused)
        folded[str(prev.target)] = str(node.target)
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
    return folded


def _tensor_args(node: torch.fx.Node) -> list[torch.fx.Node]:
    out: list[torch.fx.Node] = []
    torch.fx.node.map_arg((node.args, node.kwargs), lambda n: out.append(n) or n)
    return out


def run_fx(gm: torch.fx.GraphModule, node: torch.fx.Node, env: dict[str, Any],
           fn: Callable[..., Any] | None = None) -> Any:
    """The node's own op on the values in env (fn replaces a module's forward when given)."""
    args, kwargs = torch.fx.node.map_arg((node.args, node.kwargs), lambda n: env[n.name])
    if node.op == "call_module":
        return (fn or gm.get_submodule(node.target))(*args, **kwargs)
    if node.op == "call_function":
        return node.target(*args, **kwargs)
    if node.op == "call_method":
        return getattr(args[0], node.target)(*args[1:], **kwargs)
    if node.op == "get_attr":
        obj: Any = gm
        for part in str(node.target).split("."):
            obj = getattr(obj, part)
        return obj
    raise ConfigError(f"int8: cannot run graph node {node.name} ({node.op})")


def _is_float(v: Any) -> bool:
    return isinstance(v, torch.Tensor) and v.is_floating_point()


def _avgpool_ok(m: nn.Module, in_shape: torch.Size) -> bool:
    if isinstance(m, nn.AdaptiveAvgPool2d):
        out = m.output_size if isinstance(m.output_size, tuple) else (m.output_size, m.output_size)
        return all(o is not None and s % o == 0 for s, o in zip(in_shape[-2:], out))
    pad = m.padding if isinstance(m.padding, tuple) else (m.padding, m.padding)
    return not m.ceil_mode and m.divisor_override is None and (m.count_include_pad or pad == (0, 0))


def _classify(gm: torch.fx.GraphModule, node: torch.fx.Node, env: dict[str, Any]) -> tuple[str, str]:
    """(op, why) for a node whose output is a quantized activation."""
    if node.op == "call_module":
        m = gm.get_submodule(node.target)
        if isinstance(m, nn.Conv2d) and m.padding_mode == "zeros" and not isinstance(m.padding, str):
            return "conv", ""
        if isinstance(m, nn.Linear):
            return "linear", ""
        if isinstance(m, nn.ReLU):
            return "relu", ""
        if isinstance(m, nn.MaxPool2d) and not m.return_indices:
            return "maxpool", ""
        if isinstance(m, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)) and _avgpool_ok(m, env[node.args[0].name].shape):
            return "avgpool", ""
        if isinstance(m, _VIEW_MODULES):
            return "view", ""
        return "fallback", type(m).__name__
    if node.op == "call_function":
        floats = [a for a in _tensor_args(node) if _is_float(env[a.name])]
        if node.target in _RELU_FUNCTIONS:
            return "relu", ""
        if node.target in _ADD_FUNCTIONS and len(floats) == 2 and len(node.args) == 2 and not node.kwargs:
            return "add", ""
        if node.target is torch.cat and len(node.args) >= 1 and all(_is_float(env[a.name]) for a in node.args[0]):
            return "cat", ""
        if node.target is torch.flatten:
            return "view", ""
        return "fallback", getattr(node.target, "__name__", str(node.target))
    if node.op == "call_method":
        if node.target in _VIEW_METHODS:
            return "view", ""
        if node.target == "relu":
            return "relu", ""
        return "fallback", f".{node.target}()"
    return "fallback", node.op


def _fuse_relus(gm: torch.fx.GraphModule, nodes: list[GNode]) -> list[GNode]:
    """A ReLU whose only input is a conv / linear / add used by it alone becomes that node's clamp."""
    by_name = {n.name: n for n in nodes}
    renamed: dict[str, str] = {}
    keep = []
    for n in nodes:
        n.inputs = [renamed.get(i, i) for i in n.inputs]
        src = by_name.get(n.inputs[0]) if n.op == "relu" and len(n.inputs) == 1 else None
        if src is not None and src.op in _FUSABLE_INTO and not src.relu and len(src.fx.users) == 1:
            src.relu = True
            n.fx.replace_all_uses_with(src.fx)
            gm.graph.erase_node(n.fx)
            renamed[n.name] = src.name
            continue
        keep.append(n)
    return keep


def build_graph(model: nn.Module, example: torch.Tensor) -> QGraph:
    """Trace a copy of `model` (eval mode), fold BatchNorm, fuse ReLUs and sort every node; ConfigError when
    torch.fx cannot trace the model (the int8 path needs its graph)."""
    model = copy.deepcopy(model).eval()
    try:
        gm = torch.fx.symbolic_trace(model)
    except Exception as e:
        text = str(e).strip().splitlines()
        raise ConfigError(f"quantize int8 needs a model torch.fx can trace, and tracing failed "
                          f"({type(e).__name__}: {text[0][:160] if text else ''}); prune without quantize, or make "
                          "the forward traceable (no data-dependent control flow)") from None
    folded = _fold_batchnorm(gm)
    env: dict[str, Any] = {}
    quantized: set[str] = set()
    spatial: dict[str, tuple[int, ...]] = {}
    nodes: list[GNode] = []
    outputs: list[str] = []
    with torch.no_grad():
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                if quantized:
                    raise ConfigError("quantize int8 takes models with one image input")
                env[node.name] = example.float()
                quantized.add(node.name)
                nodes.append(GNode(node.name, "input", node))
                continue
            if node.op == "output":
                outs = node.args[0] if isinstance(node.args[0], (tuple, list)) else [node.args[0]]
                outputs = [o.name for o in outs if isinstance(o, torch.fx.Node) and o.name in quantized]
                if len(outputs) != len(outs):
                    raise ConfigError("quantize int8 takes models whose outputs are float tensors")
                continue
            env[node.name] = run_fx(gm, node, env)
            ins = [a.name for a in _tensor_args(node) if a.name in quantized]
            if not (_is_float(env[node.name]) and ins):
                nodes.append(GNode(node.name, "meta", node))
                continue
            op, why = _classify(gm, node, env)
            module = str(node.target) if node.op == "call_module" else None
            quantized.add(node.name)
            spatial[node.name] = tuple(env[node.name].shape[-2:])
            nodes.append(GNode(node.name, op, node, inputs=ins, module=module, why=why))
    nodes = _fuse_relus(gm, nodes)
    gm.recompile()
    return QGraph(gm=gm, nodes=nodes, outputs=outputs, folded=folded, spatial=spatial)


@torch.no_grad()
def write_back(graph: QGraph, model: nn.Module) -> None:
    """Copy the graph's (trained, folded) conv / linear weights into `model`'s own modules: where a BatchNorm was
    folded, the conv takes w_f / k and the BatchNorm's shift takes the rest (k = gamma / sqrt(var + eps)), so the
    model computes what the graph computes, zeros included."""
    modules = dict(model.named_modules())
    for n in graph.weighted():
        src, dst = graph.module(n), modules[str(n.fx.target)]
        bn_name = graph.folded.get(str(n.fx.target))
        if bn_name is None:
            dst.weight.copy_(src.weight)
            if dst.bias is not None:
                dst.bias.copy_(src.bias)
            continue
        bn = modules[bn_name]
        k = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else 1 / torch.sqrt(bn.running_var + bn.eps)
        live = k != 0
        shape = (-1,) + (1,) * (dst.weight.dim() - 1)
        safe_k = torch.where(live, k, torch.ones_like(k))
        dst.weight.copy_(torch.where(live.reshape(shape), src.weight / safe_k.reshape(shape), dst.weight))
        b = dst.bias if dst.bias is not None else torch.zeros_like(bn.running_mean)
        if bn.affine:
            bn.bias.copy_(src.bias - (b - bn.running_mean) * k)
