"""import-patterns: dense convolutions that the PatternPlan covers become `sparse_pattern.conv2d`.

Rewrites `tensor.pad` + `linalg.conv_2d_nchw_fchw` (3x3, dilation 1, its weights a constant) into one
`sparse_pattern.conv2d` holding only the kept weights (4 per kept kernel), and folds the per-channel affine chain
that follows it (an eval-mode BatchNorm: subtract mean, multiply by 1/sqrt(var+eps), by gamma, add beta) into
the weights and bias: a per-filter scale keeps every pruned zero a zero. Why it pays: every later pass sees the
pattern structure as attributes instead of rediscovering it from zeros, and the BatchNorm costs nothing at run
time. Everything else stays dense and untouched: the first (3-input) conv, 1x1, 5x5, depthwise, grouped and
dilated convs are not in a plan and are never an error.

Matching: convs are visited in program order (torch.export emits forward execution order, the plan's order);
a conv matches the next unmatched plan layer when its weight shape, stride and padding agree and its non-zeros lie
inside the layer's mask. A plan layer that no conv matches is a PlanError naming the layer and why. A matched
layer that no pattern lowering runs (unequal strides) or whose init is not a per-filter constant stays a dense
conv of its pruned weights, recorded as a fallback (PassContext.fall_back).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch_mlir import ir

from ..dialect import constants
from ..dialect.sparse_pattern import Conv2dOp, i8_elements, i32_elements, i64_array, library_taps, load_dialect
from ..errors import PlanError
from ..plan import LayerPlan
from .base import PassContext, affine_map, as_op, erase_dead, f32_constant, indexing_maps, ops_named, users



def _per_channel_maps() -> tuple[ir.AffineMap, ...]:
    """How an NCHW elementwise generic reads a per-channel [C, 1, 1] or [1, C, 1, 1] constant."""
    return affine_map(4, [1, None, None]), affine_map(4, [None, 1, None, None])


@dataclass
class DenseConv:
    """A linalg conv as import-patterns sees it."""

    op: ir.Operation
    input: ir.Value  # before the tensor.pad
    weight: np.ndarray  # [F, C, kh, kw]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]


KEPT_DENSE_UNEQUAL = "pattern layer kept dense: unequal strides"
KEPT_DENSE_INIT = "pattern layer kept dense: its conv's init is not a per-filter constant"


def _int_pair(op: ir.Operation, name: str) -> tuple[int, int]:
    if name not in op.attributes:
        return (1, 1)
    vals = [int(v) for v in np.array(ir.DenseElementsAttr(op.attributes[name])).ravel()]
    return (vals[0], vals[-1])


def _unpadded_input(value: ir.Value) -> tuple[ir.Value, tuple[int, int]] | None:
    """(input, (ph, pw)) behind a symmetric zero tensor.pad on H and W; (value, (0, 0)) without a pad."""
    pad = as_op(value.owner)
    if pad is None or pad.name != "tensor.pad":
        return value, (0, 0)
    low = [int(v) for v in ir.DenseI64ArrayAttr(pad.attributes["static_low"])]
    high = [int(v) for v in ir.DenseI64ArrayAttr(pad.attributes["static_high"])]
    if len(low) != 4 or low != high or low[0] or low[1]:
        return None
    yielded = pad.regions[0].blocks[0].operations[0]
    zero = constants.try_constant_array(yielded.operands[0]) if yielded.name == "tensor.yield" else None
    if zero is None or float(zero) != 0.0:
        return None
    return pad.operands[0], (low[2], low[3])


def dense_conv(op: ir.Operation) -> DenseConv | None:
    weight = constants.try_constant_array(op.operands[1])
    if weight is None:
        return None
    unpadded = _unpadded_input(op.operands[0])
    if unpadded is None:
        return None
    return DenseConv(op=op, input=unpadded[0], weight=weight.astype(np.float32), stride=_int_pair(op, "strides"),
                     padding=unpadded[1], dilation=_int_pair(op, "dilations"))


def initial_bias(conv: ir.Operation, f: int) -> np.ndarray | None:
    init = constants.try_constant_array(conv.operands[2])
    if init is None:
        fill = as_op(conv.operands[2].owner)
        if fill is not None and fill.name == "linalg.fill":
            value = constants.try_constant_array(fill.operands[0])
            return None if value is None else np.full(f, float(value), dtype=np.float32)
        return None
    per_channel = init[0, :, :1, :1].reshape(f)
    return per_channel.astype(np.float32) if np.all(init == per_channel[None, :, None, None]) else None


def _affine_step(op: ir.Operation, current: ir.Value, f: int) -> tuple[str, np.ndarray, bool] | None:
    """(arith op, per-channel vector, current-is-lhs) if `op` is `current <op> per-channel-constant`."""
    if op.name != "linalg.generic" or len(op.operands) != 3 or len(op.results) != 1:
        return None
    maps = indexing_maps(op)
    identity = ir.AffineMap.get_identity(4)
    if maps[2] != identity:
        return None
    body = list(op.regions[0].blocks[0].operations)
    if len(body) != 2 or body[0].name not in ("arith.addf", "arith.subf", "arith.mulf", "arith.divf"):
        return None
    args = list(op.regions[0].blocks[0].arguments)
    lhs_is_current = op.operands[0] == current
    cur_idx, const_idx = (0, 1) if lhs_is_current else (1, 0)
    if op.operands[cur_idx] != current or maps[cur_idx] != identity or maps[const_idx] not in _per_channel_maps():
        return None
    arith = body[0]
    if {arith.operands[0], arith.operands[1]} != {args[0], args[1]} or body[1].operands[0] != arith.results[0]:
        return None
    vec = constants.try_constant_array(op.operands[const_idx])
    if vec is None or vec.size != f:
        return None
    current_first = arith.operands[0] == args[cur_idx]
    return arith.name, vec.reshape(f).astype(np.float64), current_first


def fold_affine_chain(conv: ir.Operation, f: int) -> tuple[np.ndarray, np.ndarray, ir.Operation]:
    """(scale, shift, last op) of the per-channel affine chain after `conv` (y = scale * conv + shift)."""
    scale, shift = np.ones(f), np.zeros(f)
    last, current = conv, conv.results[0]
    while True:
        us = users(current)
        if len(us) != 1:
            break
        step = _affine_step(us[0], current, f)
        if step is None:
            break
        name, v, current_first = step
        if name == "arith.addf":
            shift = shift + v
        elif name == "arith.subf" and current_first:
            shift = shift - v
        elif name == "arith.subf":
            scale, shift = -scale, v - shift
        elif name == "arith.mulf":
            scale, shift = scale * v, shift * v
        elif name == "arith.divf" and current_first:
            scale, shift = scale / v, shift / v
        else:
            break  # v / x is not affine
        last, current = us[0], us[0].results[0]
    return scale, shift, last


def compact_weights_of(weight: np.ndarray, layer: LayerPlan) -> np.ndarray:
    """[K, 4] kept weights in canonical (f, c) order, each kernel's 4 values in ascending tap order."""
    kept = layer.filter_kept()
    f, c = np.nonzero(kept)
    taps = library_taps(layer.library)[layer.pattern[f // layer.filter_block, c]]  # [K, 4]
    return weight.reshape(weight.shape[0], weight.shape[1], 9)[f[:, None], c[:, None], taps].astype(np.float32)


@dataclass
class ImportPatterns:
    """import-patterns (see the module docstring). Options: `fold_batchnorm` (off for the ablation: the
    BatchNorm then stays as dense elementwise ops after the sparse conv)."""

    name: ClassVar[str] = "import-patterns"
    fold_batchnorm: bool = True

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        if ctx.plan is None:
            raise PlanError("import-patterns needs a PatternPlan (spattern-opt --plan plan.json)")
        load_dialect(module.context)
        layers = list(ctx.plan.layers)
        next_layer = 0
        rejected: dict[int, str] = {}
        imported: list[str] = []
        with module.context, ir.Location.unknown():
            for op in ops_named(module, "linalg.conv_2d_nchw_fchw"):
                if next_layer >= len(layers):
                    break
                conv = dense_conv(op)
                layer = layers[next_layer]
                if conv is None or tuple(conv.weight.shape) != tuple(layer.weight_shape):
                    continue
                reason = self._mismatch(conv, layer)
                if reason:
                    rejected.setdefault(next_layer, reason)
                    continue
                next_layer += 1
                kept_dense = self._kept_dense(conv, layer)
                if kept_dense is None and self._rewrite(conv, layer):
                    imported.append(layer.name)
                    continue
                ctx.fall_back(self.name, op, kept_dense or KEPT_DENSE_INIT)
            if next_layer < len(layers):
                layer = layers[next_layer]
                why = rejected.get(next_layer, "no linalg.conv_2d_nchw_fchw with that weight shape is left")
                raise PlanError(
                    f"import-patterns: plan layer {layer.name!r} (weight {tuple(layer.weight_shape)}, stride "
                    f"{tuple(layer.stride)}, padding {tuple(layer.padding)}) matches no conv in the module in "
                    f"execution order: {why}; is the plan for this model, and was the model pruned with it?")
            erase_dead(module)
        ctx.stats[self.name] = {"imported": len(imported), "layers": imported}

    @staticmethod
    def _mismatch(conv: DenseConv, layer: LayerPlan) -> str:
        if conv.dilation != (1, 1):
            return f"the conv is dilated {conv.dilation}"
        if conv.stride != tuple(layer.stride) or conv.padding != tuple(layer.padding):
            return f"the conv has stride {conv.stride} and padding {conv.padding}"
        outside = (conv.weight != 0) & ~layer.mask()
        if outside.any():
            return f"{int(outside.sum())} non-zero weights lie outside the plan's patterns"
        return ""

    @staticmethod
    def _kept_dense(conv: DenseConv, layer: LayerPlan) -> str | None:
        """Why a conv that matches its plan layer stays dense (its pruned weights run as a dense conv, which
        computes the same), or None: neither pattern lowering runs unequal strides."""
        if len(set(conv.stride)) != 1:
            return KEPT_DENSE_UNEQUAL
        return None

    def _rewrite(self, conv: DenseConv, layer: LayerPlan) -> bool:
        return rewrite_as_pattern_conv(conv, layer, self.fold_batchnorm)


def rewrite_as_pattern_conv(conv: DenseConv, layer: LayerPlan, fold_batchnorm: bool = True) -> bool:
    """Replaces `conv` (and the per-channel affine chain after it, when `fold_batchnorm`) by one
    `sparse_pattern.conv2d` reading `conv.input` with `layer`'s structure; conv.weight must be zero outside
    layer.mask(). False (nothing changed) when the conv's init is not a per-filter constant we can read."""
    op = conv.op
    f = layer.out_channels
    bias = initial_bias(op, f)
    if bias is None:
        return False  # an init we cannot read: stays dense (never wrong)
    scale, shift, last = (np.ones(f), np.zeros(f), op)
    if fold_batchnorm:
        scale, shift, last = fold_affine_chain(op, f)
    weight = conv.weight * scale[:, None, None, None].astype(np.float32)
    new_bias = (bias * scale + shift).astype(np.float32)
    with ir.InsertionPoint(last):
        w = f32_constant(compact_weights_of(weight, layer))
        b = f32_constant(new_bias)
        new = Conv2dOp(
            conv.input, w, b,
            library=i32_elements(library_taps(layer.library)),
            pattern_ids=i32_elements(layer.pattern),
            kept=i8_elements(layer.kept),
            filter_block=ir.IntegerAttr.get(ir.IntegerType.get_signless(64), layer.filter_block),
            strides=i64_array(layer.stride),
            padding=i64_array(layer.padding),
            output=last.results[0].type,
            loc=op.location,
        )
        new.operation.attributes["layer"] = ir.StringAttr.get(layer.name)
    last.results[0].replace_all_uses_with(new.results[0])
    return True
