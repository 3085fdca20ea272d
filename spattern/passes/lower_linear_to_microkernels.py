"""lower-linear-to-microkernels: a fully connected layer over one input vector (torch's Linear at batch 1) runs in
our C 1x1 kernel as a 1x1 conv over a 1x1 image, its bias and a following ReLU fused (CPU targets).

Rewrites what torch-mlir makes of a batch-1 Linear,
`linalg.matmul(x: [1, K], W^T: [K, N], zeros: [1, N])` (W^T a constant, as a rule `linalg.transpose` of the
[N, K] weight), the bias add after it (a constant [N] or [1, N] added along the outputs) and a ReLU after that,
into `collapse(call @spattern_mk_<n>(expand(x) [1, K, 1, 1], %weights, %table)) : [1, N]`, the weights and bias
packed by `spattern.microkernels.conv1x1_abi` (layout 2: [N/B][K][B] with B up to 1024, then the bias). The private
declaration carries `spattern.microkernel = {kernel = "conv1x1", ...}`, which `materialize_microkernels` turns
into a custom dispatch of kernels/conv1x1.c, as for the 1x1 convs.

Why it pays: at batch 1 a Linear is a matrix-vector product, bound by reading its weights once from memory, which
IREE's matmul does at a fraction of the memory bandwidth. Layout 2 (`spg_vblock`) also reads only the weight rows
of nonzero inputs, which after a ReLU are about half: VGG-16's classifier 1.8x faster (the figures:
bench/results/pass-measurements.txt, session9-linear-and-pool-kernels.txt, session10-sparse-gemv.txt).

Runs on the microkernel path only. A batch-1 matmul whose weight or init does not fold to a constant, or whose
init is not zero, is left to IREE (counted `skipped`); matmuls over more than one row are not counted. Both are
recorded as fallbacks where the matmul is a Linear layer (its weight a state-dict blob).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch_mlir import ir
from torch_mlir.dialects import tensor

from ..dialect import constants
from ..microkernels.conv1x1_abi import KERNEL, pack_conv1x1
from .base import (PassContext, affine_map, erase_dead, indexing_maps, module_symbols, ops_named, state_dict_key,
                   users)
from .lower_to_microkernels import emit_kernel_call, is_relu



NOT_BATCH1 = "Linear over a batch or not f32: IREE's matmul"
NOT_CONSTANT = "Linear whose weight is not a constant or whose init is not zero: IREE's matmul"


@dataclass
class _Linear:
    """A batch-1 Linear found in the IR: y = relu?(x W^T + bias); `ops` from the matmul to the last fused op."""

    x: ir.Value
    weight: np.ndarray  # [N, K]
    bias: np.ndarray  # [N]
    relu: bool
    ops: list[ir.Operation]


def _bias_of(op: ir.Operation, current: ir.Value, n: int) -> np.ndarray | None:
    """The [N] constant that `op` adds to `current` ([1, N]) along its outputs, or None."""
    if op.name != "linalg.generic" or len(op.operands) != 3 or len(op.results) != 1:
        return None
    maps = indexing_maps(op)
    identity = ir.AffineMap.get_identity(2)
    cur = 0 if op.operands[0] == current else 1 if op.operands[1] == current else None
    if cur is None or maps[cur] != identity or maps[2] != identity or maps[1 - cur] not in (identity,
                                                                                          affine_map(2, [1])):
        return None
    body = list(op.regions[0].blocks[0].operations)
    args = list(op.regions[0].blocks[0].arguments)
    if ([o.name for o in body] != ["arith.addf", "linalg.yield"] or {body[0].operands[0], body[0].operands[1]}
            != {args[0], args[1]} or body[1].operands[0] != body[0].results[0]):
        return None
    vec = constants.try_constant_array(op.operands[1 - cur])
    return None if vec is None or vec.size != n else vec.reshape(n).astype(np.float32)


def match_linear(matmul: ir.Operation) -> _Linear | None:
    """The batch-1 Linear rooted at `matmul` with a constant weight and a zero init, or None."""
    x, rhs, init = matmul.operands[0], matmul.operands[1], matmul.operands[2]
    zeros = constants.try_constant_array(init)
    if zeros is None or np.any(zeros != 0):
        return None
    weight_t = constants.try_constant_array(rhs)  # after the cheap check: a large weight is read from its blob
    if weight_t is None:
        return None
    n = weight_t.shape[1]
    ops = [matmul]
    bias = np.zeros(n, np.float32)
    after = users(matmul.results[0])
    if len(after) == 1 and after[0] is not None:
        found = _bias_of(after[0], matmul.results[0], n)
        if found is not None:
            bias = found
            ops.append(after[0])
    last = ops[-1].results[0]
    after = users(last)
    relu = len(after) == 1 and after[0] is not None and is_relu(after[0], last.type)
    if relu:
        ops.append(after[0])
    return _Linear(x, np.ascontiguousarray(weight_t.T, dtype=np.float32), bias, relu, ops)


def _is_batch1_f32(matmul: ir.Operation) -> bool:
    x, y = (ir.RankedTensorType(v.type) for v in (matmul.operands[0], matmul.results[0]))
    f32 = ir.F32Type.get()
    return (x.has_static_shape and y.has_static_shape and x.rank == 2 and x.shape[0] == 1
            and x.element_type == f32 and y.element_type == f32)


@dataclass
class LowerLinearToMicrokernels:
    """lower-linear-to-microkernels (see the module docstring). No options: the kernel's layout 2 runs one
    workgroup per block of filters (conv1x1_abi.vector_block)."""

    name: ClassVar[str] = "lower-linear-to-microkernels"

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        taken = module_symbols(module)
        stats = {"linears": 0, "skipped": 0, "fused_relu": 0}
        with module.context, ir.Location.unknown():
            for matmul in ops_named(module, "linalg.matmul"):
                if not _is_batch1_f32(matmul):
                    if state_dict_key(matmul.operands[1]) is not None:  # a Linear layer, not a helper's matmul
                        ctx.fall_back(self.name, matmul, NOT_BATCH1)
                    continue
                linear = match_linear(matmul)
                if linear is None:
                    stats["skipped"] += 1
                    ctx.fall_back(self.name, matmul, NOT_CONSTANT)
                    continue
                self._rewrite(module, taken, matmul, linear)
                stats["linears"] += 1
                stats["fused_relu"] += linear.relu
            erase_dead(module)  # the weight, its transpose, the init and the bias
        ctx.stats[self.name] = stats

    def _rewrite(self, module: ir.Module, taken: set[str], matmul: ir.Operation, linear: _Linear) -> None:
        n, k = linear.weight.shape
        packed = pack_conv1x1(linear.weight, linear.bias, 1, 1, relu=linear.relu)
        end = linear.ops[-1]
        f32 = ir.F32Type.get()
        with ir.InsertionPoint(end), matmul.location:
            image = tensor.ExpandShapeOp(ir.RankedTensorType.get([1, k, 1, 1], f32), linear.x, [[0], [1, 2, 3]],
                                         [], [1, k, 1, 1]).result
            call = emit_kernel_call(module, taken, packed, KERNEL, image, None, self.name, matmul.location)
            y = tensor.CollapseShapeOp(ir.RankedTensorType.get([1, n], f32), call.results[0],
                                       [[0], [1, 2, 3]]).result
        end.results[0].replace_all_uses_with(y)
        for dead in reversed(linear.ops):
            dead.erase()
