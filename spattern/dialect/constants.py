"""Reading constant tensors of a module as numpy arrays, and making new ones.

torch-mlir imports weights as `dense_resource<...>` blobs, which the Python bindings cannot read directly
(`DenseResourceElementsAttr` has no accessor). What works: print the one `arith.constant` inside an otherwise
empty module, whose text then carries only that blob (as hex), and decode it. That costs two bytes of text per
byte of weight, for the weights actually read (the 3x3 convs of VGG-16: 59 MB), never the whole model.
Constants that our passes create are `DenseElementsAttr`s, read with `np.array(attr)`.

`constant_array` also folds the small per-channel computations torch-mlir emits for an eval-mode BatchNorm
(`1 / sqrt(var + eps)` as elementwise `linalg.generic`s over constants, `tensor.expand_shape`,
`linalg.broadcast`), so that import-patterns can fold a BatchNorm without a model at hand, and a Linear layer's
transposed weight (`linalg.transpose`) and zero init (`linalg.fill`) for lower-linear-to-microkernels.
"""

from __future__ import annotations

import re
from typing import Callable

import numpy as np
from torch_mlir import ir

_HEX = re.compile(r'"0x([0-9A-Fa-f]*)"')


class NotConstant(Exception):
    """The value is not (foldable to) a compile-time constant."""


def _resource_array(op: ir.Operation, attr: ir.Attribute) -> np.ndarray:
    rtt = ir.RankedTensorType(attr.type)
    with op.context, ir.Location.unknown():
        scratch = ir.Module.create()
        with ir.InsertionPoint(scratch.body):
            ir.Operation.create("arith.constant", results=[rtt], attributes={"value": attr})
        text = scratch.operation.get_asm()
    match = _HEX.search(text)
    if not match:
        raise NotConstant(f"no blob printed for {attr}")
    raw = bytes.fromhex(match.group(1))[4:]  # the first 4 bytes are the blob's alignment
    dtype = _np_dtype(rtt.element_type)
    return np.frombuffer(raw, dtype=dtype).reshape(rtt.shape).copy()


def _np_dtype(t: ir.Type) -> np.dtype:
    s = str(t)
    table = {"f32": np.float32, "f64": np.float64, "f16": np.float16, "i64": np.int64, "i32": np.int32,
             "i8": np.int8, "i1": np.bool_}
    if s not in table:
        raise NotConstant(f"element type {s} not supported")
    return np.dtype(table[s])


def attr_array(op: ir.Operation, attr: ir.Attribute) -> np.ndarray:
    """numpy value of an elements attribute (dense or dense_resource) or a scalar float/int attribute."""
    if isinstance(attr, ir.DenseResourceElementsAttr) or str(attr).startswith("dense_resource<"):
        return _resource_array(op, attr)
    try:
        dense = ir.DenseElementsAttr(attr)
        shape = ir.ShapedType(dense.type).shape
        if dense.is_splat:
            return np.full(shape, np.array(dense.get_splat_value().value if hasattr(dense.get_splat_value(),
                                                                                    "value") else 0))
        return np.array(dense).reshape(shape)
    except (TypeError, ValueError):
        pass
    try:
        return np.array(ir.FloatAttr(attr).value, dtype=np.float64)
    except (TypeError, ValueError):
        pass
    try:
        return np.array(ir.IntegerAttr(attr).value)
    except (TypeError, ValueError):
        raise NotConstant(f"attribute {attr} is not a constant tensor") from None


def constant_array(value: ir.Value) -> np.ndarray:
    """The numpy value of a constant SSA value: raises NotConstant if it does not fold."""
    return _Folder().value(value)


def try_constant_array(value: ir.Value) -> np.ndarray | None:
    try:
        return constant_array(value)
    except NotConstant:
        return None


_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "arith.addf": np.add, "arith.subf": np.subtract, "arith.mulf": np.multiply, "arith.divf": np.divide,
    "arith.maximumf": np.maximum, "arith.minimumf": np.minimum,
}
_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "math.sqrt": np.sqrt, "math.rsqrt": lambda a: 1.0 / np.sqrt(a), "arith.negf": np.negative,
    "arith.truncf": lambda a: np.asarray(a, dtype=np.float32), "arith.extf": lambda a: np.asarray(a, np.float64),
}


class _Folder:
    def value(self, value: ir.Value) -> np.ndarray:
        owner = value.owner
        if not isinstance(owner, (ir.Operation, ir.OpView)):
            raise NotConstant("a block argument is not a constant")
        op = owner.operation if hasattr(owner, "operation") else owner
        name = op.name
        if name == "arith.constant":
            return attr_array(op, op.attributes["value"])
        if name in ("tensor.expand_shape", "tensor.collapse_shape", "tensor.reshape"):
            return self.value(op.operands[0]).reshape(ir.RankedTensorType(op.results[0].type).shape)
        if name == "linalg.broadcast":
            src = self.value(op.operands[0])
            out_shape = ir.RankedTensorType(op.results[0].type).shape
            dims = [int(d) for d in ir.DenseI64ArrayAttr(op.attributes["dimensions"])]
            kept_dims = [d for d in range(len(out_shape)) if d not in dims]
            shaped = src.reshape([out_shape[d] if d in kept_dims else 1 for d in range(len(out_shape))])
            return np.broadcast_to(shaped, out_shape).copy()
        if name == "linalg.transpose":
            perm = [int(d) for d in ir.DenseI64ArrayAttr(op.attributes["permutation"])]
            return np.transpose(self.value(op.operands[0]), perm)
        if name == "linalg.fill":
            t = ir.RankedTensorType(op.results[0].type)
            return np.full(t.shape, self.value(op.operands[0]), _np_dtype(t.element_type))
        if name == "linalg.generic":
            return self._generic(op)
        raise NotConstant(f"{name} is not folded")

    def _generic(self, op: ir.Operation) -> np.ndarray:
        maps = [ir.AffineMapAttr(m).value for m in ir.ArrayAttr(op.attributes["indexing_maps"])]
        if any(m != maps[0] for m in maps):
            raise NotConstant("only elementwise generics with identical maps fold")
        n_in = len(op.operands) - len(op.results)
        inputs = [self.value(op.operands[i]) for i in range(n_in)]
        block = op.regions[0].blocks[0]
        env: dict[ir.Value, np.ndarray] = {}
        for arg, val in zip(block.arguments, inputs):
            env[arg] = val
        for inner in block.operations:
            name = inner.name
            if name == "linalg.yield":
                out = env_value(self, env, inner.operands[0])
                return np.broadcast_to(out, ir.RankedTensorType(op.results[0].type).shape).astype(np.float32)
            if name in ("cf.assert", "arith.cmpf"):
                continue  # torch-mlir's division-by-zero guard: not part of the value
            args = [env_value(self, env, v) for v in inner.operands]
            if name in _BINARY:
                env[inner.results[0]] = _BINARY[name](args[0], args[1])
            elif name in _UNARY:
                env[inner.results[0]] = _UNARY[name](args[0])
            else:
                raise NotConstant(f"{name} inside a generic is not folded")
        raise NotConstant("generic without yield")


def env_value(folder: _Folder, env: dict[ir.Value, np.ndarray], value: ir.Value) -> np.ndarray:
    if value in env:
        return env[value]
    return folder.value(value)  # a scalar constant captured from outside the body
