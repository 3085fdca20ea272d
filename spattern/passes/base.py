"""What every pass shares: the context it runs in and small IR helpers (constants, op walks, use lists)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np
from torch_mlir import ir

from ..dialect.sparse_pattern import ops_named  # noqa: F401 (re-exported for the passes)
from ..pruning.plan import PatternPlan


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


class Pass(Protocol):
    name: str

    def run(self, module: ir.Module, ctx: PassContext) -> None: ...


def as_op(owner: Any) -> ir.Operation | None:
    if isinstance(owner, ir.OpView):
        return owner.operation
    if isinstance(owner, ir.Operation):
        return owner
    return None


def users(value: ir.Value) -> list[ir.Operation]:
    return [as_op(use.owner) for use in value.uses]  # type: ignore[misc]


def f32_constant(values: np.ndarray) -> ir.Value:
    """An arith.constant holding `values` as a DenseElementsAttr (readable back with np.array), at the current
    insertion point."""
    values = np.ascontiguousarray(np.asarray(values, dtype=np.float32))
    attr = ir.DenseElementsAttr.get(values, type=ir.F32Type.get())
    return ir.Operation.create("arith.constant", results=[attr.type], attributes={"value": attr}).results[0]


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
                 "linalg.broadcast", "linalg.fill", "linalg.generic", "linalg.conv_2d_nchw_fchw"}
    erased = 0
    while True:
        dead = [op for name in removable for op in ops_named(module, name)
                if all(len(list(r.uses)) == 0 for r in op.results)]
        if not dead:
            return erased
        for op in dead:
            op.erase()
        erased += len(dead)
