"""What stayed off the fast path, and why: the summary of a pipeline's fallbacks (not a pass).

The passes record each candidate they decline (`PassContext.fall_back`: the layer, a short fixed reason, the path
it stays on). After the last pass, `collect_fallbacks` takes a census of the layers still on IREE's dense codegen
in the module's public functions (convs, depthwise convs, Linear matmuls, and the 1x1 matmuls a kernel did not
take), each with the latest reason a pass gave for it or, where no pass declined it (no pass had it as a
candidate: a 5x5 conv, a grouped conv), a reason read off its kind and weight shape. A dense record of a layer
(an op with a state-dict weight) that is no longer dense at the end (a later pass took it: an RGB conv that
dense-3x3-to-patterns runs as patterns) is dropped; dense records of ops without weights (pools), "portable" (a
pattern conv on lower-to-linalg) and "unfused" (an epilogue left as a dispatch) records are kept as they are. `fallback_counts` and `summary_line` are what the report and the CLI print.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping, Sequence

from torch_mlir import ir

from .base import Fallback, PassContext, int_pair_attr, layer_of, weight_constant
from .conv_1x1_to_matmul import CALLEE_PREFIX as MATMUL_1X1_PREFIX

CENSUS = "census"  # the `pass` of a record the census wrote (no pass declined that layer)
PATHS = ("dense", "portable", "unfused")
_PATH_TEXT = {"dense": "on the dense path", "portable": "on the portable path", "unfused": "not fused"}


def _public_functions(module: ir.Module) -> list[ir.Operation]:
    out = []
    for op in module.body.operations:
        op = op.operation
        visibility = op.attributes["sym_visibility"] if "sym_visibility" in op.attributes else None
        if op.name == "func.func" and (visibility is None or ir.StringAttr(visibility).value != "private"):
            out.append(op)
    return out


def _walk(op: ir.Operation) -> list[ir.Operation]:
    found: list[ir.Operation] = []

    def visit(o: ir.Operation) -> ir.WalkResult:
        found.append(o)
        return ir.WalkResult.ADVANCE

    op.walk(visit)
    return found


def _weight_shape(op: ir.Operation) -> tuple[int, ...] | None:
    """The shape of the state-dict weight behind operand 1 (before the export reshaped it), or None."""
    const = weight_constant(op.operands[1]) if len(op.operands) > 1 else None
    if const is None:
        return None
    return tuple(int(d) for d in ir.RankedTensorType(const.results[0].type).shape)


def dense_reason(op: ir.Operation) -> str | None:
    """Why a dense layer op has no fast path, from its kind and weight shape; None if `op` is not a layer (no
    constant weight: a helper's body, a pool)."""
    shape = _weight_shape(op)
    if shape is None:
        return None
    name = op.name
    if name == "func.call":
        return "1x1 conv: IREE's matmul"
    if name in ("linalg.matmul", "linalg.batch_matmul"):
        return "Linear: IREE's matmul" if len(shape) == 2 else None
    if len(shape) != 4:
        return None
    kh, kw = shape[2], shape[3]
    if "depthwise" in name:
        return "depthwise conv: no pattern kernel"
    if "ngchw" in name or "gfchw" in name:
        return "grouped conv: no pattern kernel"
    if name.startswith("linalg.conv_2d") and int_pair_attr(op, "dilations") != (1, 1):
        return "dilated conv: no pattern kernel"
    if (kh, kw) == (1, 1):
        return "1x1 conv: IREE's conv"
    if (kh, kw) == (3, 3):
        return "3x3 conv not in the plan"
    return f"{kh}x{kw} conv: not a pattern shape"


def _is_layer_op(op: ir.Operation) -> bool:
    name = op.name
    if name.startswith(("linalg.conv_", "linalg.depthwise_conv_")) or name in ("linalg.matmul", "linalg.batch_matmul"):
        return True
    if name == "linalg.generic":  # a conv as a generic (depthwise-conv-to-generic): it reduces
        return any("reduction" in str(i) for i in ir.ArrayAttr(op.attributes["iterator_types"]))
    return name == "func.call" and ir.FlatSymbolRefAttr(op.attributes["callee"]).value.startswith(MATMUL_1X1_PREFIX)


def _generic_reason(op: ir.Operation) -> str | None:
    shape = _weight_shape(op)
    if shape is None or len(shape) != 4:
        return None
    return "depthwise conv: no pattern kernel" if shape[1] == 1 else f"{shape[2]}x{shape[3]} conv: IREE's generic"


def dense_layers(module: ir.Module) -> list[tuple[str, str]]:
    """(layer, reason from its shape) of every layer op still on IREE's dense codegen, in program order."""
    out = []
    with module.context:
        for fn in _public_functions(module):
            for op in _walk(fn):
                if not _is_layer_op(op):
                    continue
                reason = _generic_reason(op) if op.name == "linalg.generic" else dense_reason(op)
                if reason is not None:
                    out.append((layer_of(op), reason))
    return out


def collect_fallbacks(module: ir.Module, ctx: PassContext) -> list[Fallback]:
    """The pipeline's fallbacks after its last pass (see the module docstring): one dense record per layer still
    dense, then the other records (portable, unfused, and dense records of ops without weights, such as pools),
    each in the order the passes declined them."""
    declined: dict[str, Fallback] = {}
    for f in ctx.fallbacks:
        if f.path == "dense" and f.has_weights:
            declined[f.layer] = f  # the latest pass's reason wins
    dense = [declined.get(layer, Fallback(CENSUS, layer, reason)) for layer, reason in dense_layers(module)]
    others = [f for f in ctx.fallbacks if f.path != "dense" or not f.has_weights]
    seen: set[tuple[str, str, str]] = set()
    out = []
    for f in [*dense, *others]:
        key = (f.layer, f.reason, f.path)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def fallback_counts(fallbacks: Iterable[Mapping[str, Any] | Fallback]) -> dict[str, dict[str, int]]:
    """{path: {reason: count}}, paths in PATHS order, reasons by count (then name)."""
    records = [f.to_json() if isinstance(f, Fallback) else dict(f) for f in fallbacks]
    out: dict[str, dict[str, int]] = {}
    for path in PATHS:
        counted = Counter(r["reason"] for r in records if r.get("path", "dense") == path)
        if counted:
            out[path] = dict(sorted(counted.items(), key=lambda kv: (-kv[1], kv[0])))
    return out


def summary_line(fallbacks: Sequence[Mapping[str, Any] | Fallback]) -> str:
    """One line, e.g. "3 layers on the dense path: 2 x 5x5 conv: not a pattern shape, 1 x grouped conv: no
    pattern kernel"; "every layer on the fast path" when nothing fell back."""
    counts = fallback_counts(fallbacks)
    if not counts:
        return "every layer on the fast path (no fallbacks)"
    parts = []
    for path, reasons in counts.items():
        n = sum(reasons.values())
        noun = ("epilogue" if n == 1 else "epilogues") if path == "unfused" else ("layer" if n == 1 else "layers")
        detail = ", ".join(f"{c} x {r}" for r, c in reasons.items())
        parts.append(f"{n} {noun} {_PATH_TEXT[path]}: {detail}")
    return "; ".join(parts)


def fallbacks_info(module: ir.Module, ctx: PassContext) -> dict[str, Any]:
    """What the pipeline keeps in its info: `fallbacks` (records as dicts) and `fallback_counts`."""
    found = collect_fallbacks(module, ctx)
    return {"fallbacks": [f.to_json() for f in found], "fallback_counts": fallback_counts(found)}
