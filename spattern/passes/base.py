"""What every pass shares: the context it runs in and small IR helpers (constants, op walks, use lists)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import arith, func, tensor

from ..dialect.sparse_pattern import ops_named  # noqa: F401 (re-exported for the passes)
from ..errors import CompileError
from ..plan import PatternPlan


@dataclass(frozen=True)
class Fallback:
    """A candidate a pass left on a slower path: `layer` (the torch module's name where the IR tells it, see
    `layer_of`), `reason` (a short fixed phrase: records with one reason are counted together) and `path`:
    "dense" (IREE's own codegen), "portable" (a pattern conv on lower-to-linalg instead of the microkernel) or
    "unfused" (the layer runs in our kernel, an op after it stays a dispatch of its own). A conv's record may be
    superseded by a later pass that takes the layer (spattern.passes.fallbacks.collect_fallbacks)."""

    pass_name: str
    layer: str
    reason: str
    path: str = "dense"
    has_weights: bool = True  # a layer with a state-dict weight (a conv, a Linear), not a pool

    def to_json(self) -> dict[str, str]:
        return {"pass": self.pass_name, "layer": self.layer, "reason": self.reason, "path": self.path}


@dataclass
class PassContext:
    """What a pass may read besides the module: the plan (import-patterns needs it) and what passes report
    (per-pass statistics, printed by spattern-opt --stats and collected by the pipeline)."""

    plan: PatternPlan | None = None
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    # lower-to-linalg's matmul form: 0 = linalg.batch_matmul (GPUs); t > 0 = gather straight into the [N/t, K, t, 1]
    # right-hand-side layout of IREE's mmt4d CPU microkernel and call linalg.batch_mmt4d with t x t tiles (the
    # target's f32 tile: 16 with AVX-512, 8 with AVX2 or NEON; spattern.runtime.targets.Target.mmt4d_tile).
    mmt4d_tile: int = 0
    # What the passes declined, in the order they declined it (see spattern.passes.fallbacks for the summary).
    fallbacks: list[Fallback] = field(default_factory=list)

    def fall_back(self, pass_name: str, op: ir.Operation, reason: str, path: str = "dense") -> None:
        """Record that `pass_name` left `op` (a layer's op) on a slower path, and why."""
        weighted = "layer" in op.attributes or (len(op.operands) > 1 and state_dict_key(op.operands[1]) is not None)
        self.fallbacks.append(Fallback(pass_name, layer_of(op), reason, path, weighted))


class Pass(Protocol):
    name: str

    def run(self, module: ir.Module, ctx: PassContext) -> None: ...


def as_op(owner: Any) -> ir.Operation | None:
    if isinstance(owner, ir.OpView):
        return owner.operation
    if isinstance(owner, ir.Operation):
        return owner
    return None


def same_value(a: ir.Value | None, b: ir.Value | None) -> bool:
    """Whether `a` and `b` are one SSA value; False when either is None. The bindings' `Value.__eq__` raises a
    TypeError for None (on either side), so an optional value must never meet `==` or `!=` directly."""
    return a is not None and b is not None and a == b


def users(value: ir.Value) -> list[ir.Operation]:
    return [as_op(use.owner) for use in value.uses]  # type: ignore[misc]


# Ops that carry one tensor along (their operand 0) with its layout: reshapes, pads, slices.
CARRIERS = ("tensor.pad", "tensor.expand_shape", "tensor.collapse_shape", "tensor.extract_slice")


def is_elementwise(op: ir.Operation) -> bool:
    """A `linalg.generic` with only parallel iterators."""
    return op.name == "linalg.generic" and all(
        "parallel" in str(i) for i in ir.ArrayAttr(op.attributes["iterator_types"]))


def indexing_maps(op: ir.Operation) -> list[ir.AffineMap]:
    """A linalg op's indexing maps, as maps (compared structurally with `affine_map`, never as printed text)."""
    return [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]


def affine_map(n_dims: int, results: Sequence[int | None]) -> ir.AffineMap:
    """(d0, ..., d{n_dims-1}) -> results, in the current context: an int is that dim, None the constant 0 (a
    broadcast dim). `affine_map(2, [0, 1])` is the 2-d identity."""
    exprs = [ir.AffineConstantExpr.get(0) if r is None else ir.AffineDimExpr.get(r) for r in results]
    return ir.AffineMap.get(n_dims, 0, exprs)


def generic_inputs(op: ir.Operation) -> list[ir.Value]:
    """The `ins` operands of a linalg op."""
    return list(op.operands[:list(ir.DenseI32ArrayAttr(op.attributes["operandSegmentSizes"]))[0]])


def produced_by(value: ir.Value, match: Callable[[ir.Operation], bool], depth: int = 12,
                any_input: bool = False) -> bool:
    """Whether an op that `match`es computes `value`, directly or through a chain of at most `depth` ops that
    each carry one tensor along: CARRIERS (their source) and elementwise `linalg.generic`s with exactly one input
    of their result's type (a folded BatchNorm, whose other inputs are broadcast per-channel constants; a ReLU).
    A generic that combines two full tensors (a residual add) ends the chain: it makes a tensor of its own.
    With `any_input`, every input of an elementwise generic is followed instead (the add's two operands too)."""
    op = as_op(value.owner)
    if op is None or depth <= 0:
        return False
    if match(op):
        return True
    if op.name in CARRIERS:
        return produced_by(op.operands[0], match, depth - 1, any_input)
    if not is_elementwise(op) or len(op.results) != 1:
        return False
    inputs = generic_inputs(op)
    if any_input:
        return any(produced_by(v, match, depth - 1, True) for v in inputs)
    carried = [v for v in inputs if v.type == op.results[0].type]
    return len(carried) == 1 and produced_by(carried[0], match, depth - 1)


_WEIGHT_CARRIERS = (*CARRIERS, "linalg.transpose")


def weight_constant(value: ir.Value, depth: int = 6) -> ir.Operation | None:
    """The `arith.constant` behind a weight operand, through reshapes and transposes (a grouped conv's weight is
    expanded, a depthwise one collapsed, a Linear's transposed); None if it is not one."""
    op = as_op(value.owner)
    while op is not None and depth > 0 and op.name in _WEIGHT_CARRIERS:
        op, depth = as_op(op.operands[0].owner), depth - 1
    return op if op is not None and op.name == "arith.constant" else None


def state_dict_key(value: ir.Value) -> str | None:
    """The state-dict key of the weight behind `value` (export names each weight blob after it, e.g.
    `dense_resource<layer1.0.conv1.weight>`), or None."""
    const = weight_constant(value)
    if const is None:
        return None
    text = str(const.attributes["value"])
    if not text.startswith("dense_resource<"):
        return None
    key = text[len("dense_resource<"):].split(">", 1)[0].strip('"')
    return None if key.startswith("torch_tensor") else key


def layer_of(op: ir.Operation) -> str:
    """The torch module an op computes, as far as the IR tells it: a pattern conv's `layer` attribute, else the
    state-dict key of its weight (operand 1) less `.weight`; else the op's name and result shape. (torch-mlir's
    locations give only source lines, not module names.)"""
    if "layer" in op.attributes:
        return str(ir.StringAttr(op.attributes["layer"]).value)
    key = state_dict_key(op.operands[1]) if len(op.operands) > 1 else None
    if key is not None:
        return key[:-len(".weight")] if key.endswith(".weight") else key
    shape = ""
    if len(op.results):
        try:
            shape = " -> " + "x".join(str(d) for d in ir.RankedTensorType(op.results[0].type).shape)
        except ValueError:  # not a ranked tensor
            pass
    return f"{op.name}{shape}"


def add_functions(module: ir.Module, text: str, pass_name: str, where: ir.Location) -> None:
    """Parses `text` (private helper functions a pass built as MLIR) into `module`, at its top. A parse failure
    is the pass's bug: a CompileError naming the pass and the op it was rewriting."""
    try:
        parsed = ir.Module.parse(text)
    except ir.MLIRError as e:
        raise CompileError(f"{pass_name} built invalid IR for {where}: {e}") from None
    anchor = module.body.operations[0].operation
    for fn in list(parsed.body.operations):
        fn.operation.move_before(anchor)


def _padded(shape: Sequence[int], low: Sequence[int], high: Sequence[int]) -> list[int]:
    return [d + lo + hi for d, lo, hi in zip(shape, low, high)]


def zero_pad(x: ir.Value, low: Sequence[int], high: Sequence[int], zero: ir.Value | None = None) -> ir.Value:
    """`tensor.pad` of `x` with `zero` (an f32 0.0 made here when None), static `low` / `high` per dimension, at
    the current insertion point."""
    source = ir.RankedTensorType(x.type)
    if zero is None:
        zero = arith.ConstantOp(ir.F32Type.get(), 0.0).result
    shape = _padded(source.shape, low, high)
    pad = tensor.PadOp(ir.RankedTensorType.get(shape, source.element_type), x, [], [], list(low), list(high))
    with ir.InsertionPoint(pad.regions[0].blocks.append(*[ir.IndexType.get()] * len(shape))):
        tensor.YieldOp(zero)
    return pad.result


def add_pad_function(module: ir.Module, name: str, x_type: ir.RankedTensorType, low: Sequence[int],
                     high: Sequence[int], where: ir.Location) -> None:
    """A private `func.func @name(%x: x_type)` that returns `zero_pad(%x, low, high)`, at the module's top."""
    with ir.InsertionPoint(module.body.operations[0].operation), where:
        padded = _padded(x_type.shape, low, high)
        fn = func.FuncOp(name, ([x_type], [ir.RankedTensorType.get(padded, x_type.element_type)]),
                         visibility="private")
        with ir.InsertionPoint(fn.add_entry_block()):
            func.ReturnOp([zero_pad(fn.arguments[0], low, high)])


def fresh_symbol(taken: set[str], prefix: str) -> str:
    """The first `prefix<i>` not in `taken` (which then holds it too)."""
    i = 0
    while f"{prefix}{i}" in taken:
        i += 1
    taken.add(f"{prefix}{i}")
    return f"{prefix}{i}"


def replace_with_call(op: ir.Operation, callee: str, operands: list[ir.Value]) -> None:
    """Replace single-result `op` by `func.call @callee(operands)` (a private function a pass added), erasing it."""
    with ir.InsertionPoint(op), op.location:
        call = ir.Operation.create("func.call", results=[op.results[0].type], operands=operands,
                                   attributes={"callee": ir.FlatSymbolRefAttr.get(callee)})
    op.results[0].replace_all_uses_with(call.results[0])
    op.erase()


def module_symbols(module: ir.Module) -> set[str]:
    return {str(ir.StringAttr(op.attributes["sym_name"]).value) for op in module.body.operations
            if "sym_name" in op.attributes}


def tensor_type(shape: tuple[int, ...] | list[int], elt: object = "f32") -> str:
    """MLIR text of a ranked tensor type, e.g. tensor<1x64x56x56xf32>, for the IR the passes build as text."""
    return "tensor<" + "x".join(str(int(d)) for d in shape) + f"x{elt}>"


def dense_constant(values: np.ndarray, elt: ir.Type) -> ir.Value:
    """An arith.constant holding `values` as a DenseElementsAttr of element type `elt` (readable back with
    np.array), at the current insertion point."""
    attr = ir.DenseElementsAttr.get(np.ascontiguousarray(values), type=elt)
    return ir.Operation.create("arith.constant", results=[attr.type], attributes={"value": attr}).results[0]


def f32_constant(values: np.ndarray) -> ir.Value:
    """dense_constant of `values` as f32."""
    return dense_constant(np.asarray(values, dtype=np.float32), ir.F32Type.get())


def int_pair_attr(op: ir.Operation, name: str) -> tuple[int, int]:
    """A linalg conv's `strides` / `dilations` (a 2-element dense int attribute) as a pair; (1, 1) if absent."""
    if name not in op.attributes:
        return 1, 1
    values = np.array(ir.DenseIntElementsAttr(op.attributes[name])).reshape(-1)
    return int(values[0]), int(values[1])


def rewrite_each(module: ir.Module, op_name: str, rewrite: Callable[[ir.Operation], bool | None]) -> dict[str, int]:
    """Apply `rewrite` to every op named `op_name` (in the module's context); it returns True (rewritten), False
    (a candidate left alone) or None (not a candidate). Returns the counts a pass reports as its statistics."""
    counts = {"rewritten": 0, "skipped": 0}
    with module.context, ir.Location.unknown():
        for op in ops_named(module, op_name):
            verdict = rewrite(op)
            if verdict is not None:
                counts["rewritten" if verdict else "skipped"] += 1
    return counts


def erase_dead(module: ir.Module) -> int:
    """Erase pure ops (constants, tensor reshapes/pads, elementwise generics) whose results are unused, until none
    is left; returns how many."""
    removable = {"arith.constant", "tensor.pad", "tensor.empty", "tensor.expand_shape", "tensor.collapse_shape",
                 "linalg.broadcast", "linalg.fill", "linalg.generic", "linalg.conv_2d_nchw_fchw",
                 "linalg.transpose"}
    erased = 0
    while True:
        dead = [op for name in removable for op in ops_named(module, name)
                if all(len(list(r.uses)) == 0 for r in op.results)]
        if not dead:
            return erased
        for op in dead:
            op.erase()
        erased += len(dead)
