"""The int8 reference: the quantized, pruned model run with the kernels' own integer arithmetic (qarith.py).

`IntegerReference(model, plan.quant)` takes the pruned float model (for its graph: strides, paddings, pool
windows, the fallback ops) and the QuantPlan (every integer the arithmetic uses: int8 weights, int32 biases,
float32 multipliers, grids), and computes layer by layer on u8 tensors. Convs (pattern convs are convs with
zeros), 1x1 convs and linears accumulate u8 x s8 products exactly in int32 (done here as float64 convolutions of
integers, exact below 2^53, then checked against the int32 range), then requantize; adds, concats, ReLUs and pools
follow qarith. Anything else dequantizes, runs fp32 and quantizes back; `fallback_calls` counts those. A compiled
int8 module must match `forward_q` within one output step (the kernels' target: bit for bit).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import qarith
from ..errors import InputError, PlanError
from ..qplan import QuantNode, QuantPlan
from .qgraph import GNode, QGraph, build_graph, run_fx

INT32_LIMIT = 2 ** 31


def _int32(acc: torch.Tensor, where: str) -> torch.Tensor:
    if acc.numel() and float(acc.abs().max()) >= INT32_LIMIT:
        raise PlanError(f"int8 node {where!r}: an accumulator leaves the int32 range")
    return acc.to(torch.int64).to(torch.int32)


class IntegerReference(nn.Module):
    def __init__(self, model: nn.Module, quant: QuantPlan):
        super().__init__()
        if not isinstance(quant, QuantPlan):
            raise PlanError("IntegerReference takes a QuantPlan (plan.quant of a plan pruned with quantize: int8)")
        quant.validate()
        self.quant = quant
        self.input_shape = tuple(quant.nodes[0].attrs.get("shape", ()))
        self.graph: QGraph = build_graph(model, torch.zeros(self.input_shape))
        self._check_fit()
        self.fallback_calls = 0

    def _check_fit(self) -> None:
        ours = [(n.name, n.op) for n in self.graph.nodes if n.op != "meta"]
        theirs = [(n.name, n.op) for n in self.quant.nodes]
        if ours != theirs:
            diff = next((a, b) for a, b in zip(ours + [None], theirs + [None]) if a != b)  # type: ignore[operator]
            raise PlanError(f"the int8 plan does not fit this model: graph node {diff[0]} vs plan node {diff[1]}; "
                            "is the plan for another model?")

    def _conv(self, n: GNode, q: QuantNode, x: torch.Tensor, z_in: int) -> torch.Tensor:
        m = self.graph.module(n)
        w = self.quant.weights(n.name)
        ph, pw = m.padding
        x = F.pad(x.to(torch.float64), (pw, pw, ph, ph), value=float(z_in))
        acc = F.conv2d(x, w["weight"].to(torch.float64), w["bias"].to(torch.float64), m.stride, 0, m.dilation,
                       m.groups)
        return qarith.requantize(_int32(acc, n.name), w["requant_scale"], q.out.zero_point, *q.clamp)

    def _linear(self, n: GNode, q: QuantNode, x: torch.Tensor) -> torch.Tensor:
        w = self.quant.weights(n.name)
        acc = F.linear(x.to(torch.float64), w["weight"].to(torch.float64), w["bias"].to(torch.float64))
        return qarith.requantize(_int32(acc, n.name), w["requant_scale"], q.out.zero_point, *q.clamp,
                                 channel_dim=acc.dim() - 1)

    def step(self, n: GNode, q: QuantNode, env: dict[str, Any], x: torch.Tensor) -> torch.Tensor:
        """Node n (plan node q) on the u8 values of its inputs in env (x: the float network input)."""
        ins = [env[i] for i in q.inputs]
        grids = [self.quant.node(i).out for i in q.inputs]
        if q.op == "input":
            return qarith.quantize_input(x, q.out)
        if q.op == "conv":
            return self._conv(n, q, ins[0], grids[0].zero_point)
        if q.op == "linear":
            return self._linear(n, q, ins[0])
        if q.op == "add":
            return qarith.add_requantize(ins[0], grids[0], ins[1], grids[1], q.add_params(), q.out, *q.clamp)
        if q.op == "relu":
            acc = ins[0].to(torch.int32) - grids[0].zero_point
            return qarith.requantize(acc, torch.tensor(q.attrs["scale"]), q.out.zero_point, *q.clamp)
        if q.op == "cat":
            parts = [qarith.requantize(t.to(torch.int32) - g.zero_point, torch.tensor(s), q.out.zero_point, *q.clamp)
                     for t, g, s in zip(ins, grids, q.attrs["scales"])]
            return torch.cat(parts, dim=q.attrs["dim"])
        if q.op == "maxpool":  # max of u8 (exact in float32), padding never wins
            return run_fx(self.graph.gm, n.fx, {**env, q.inputs[0]: ins[0].to(torch.float32)}).to(torch.uint8)
        if q.op == "avgpool":
            acc = F.avg_pool2d((ins[0].to(torch.int32) - grids[0].zero_point).to(torch.float64), q.attrs["kernel"],
                               q.attrs["stride"], q.attrs["padding"], divisor_override=1)
            return qarith.requantize(_int32(acc, n.name), torch.tensor(q.attrs["scale"]), q.out.zero_point, *q.clamp)
        if q.op == "view":
            m = self.graph.module(n) if n.fx.op == "call_module" else None
            return ins[0] if isinstance(m, (nn.Dropout, nn.Identity)) else run_fx(self.graph.gm, n.fx, env)
        self.fallback_calls += 1  # dequantize, fp32, quantize back
        floats = {i: qarith.dequantize(t, g) for i, t, g in zip(q.inputs, ins, grids)}
        with torch.no_grad():
            return qarith.quantize_input(run_fx(self.graph.gm, n.fx, {**env, **floats}), q.out)

    @torch.no_grad()
    def forward_q(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The u8 outputs (their grids: `output_grids`)."""
        if tuple(x.shape[1:]) != self.input_shape[1:]:
            raise InputError(f"the int8 reference was built for inputs N,{','.join(map(str, self.input_shape[1:]))}"
                             f"; got {','.join(map(str, x.shape))}")
        env: dict[str, Any] = {}
        nodes = iter(self.quant.nodes)
        for n in self.graph.nodes:
            env[n.name] = run_fx(self.graph.gm, n.fx, env) if n.op == "meta" else self.step(n, next(nodes), env, x)
        return [env[o] for o in self.quant.outputs]

    def output_grids(self) -> list[qarith.ActQuant]:
        return [self.quant.node(o).out for o in self.quant.outputs]

    def forward(self, x: torch.Tensor) -> Any:
        """The outputs dequantized to float32."""
        outs = [qarith.dequantize(q, g) for q, g in zip(self.forward_q(x), self.output_grids())]
        return outs[0] if len(outs) == 1 else tuple(outs)
