"""pad-source-barrier: puts a `util.optimization_barrier` between a `tensor.pad` and its source when IREE's SPIR-V
codegen would store the source into the padded buffer with misaligned vector stores.

Why (issue 19, generated models 1055 and 2007): IREE 3.13 fuses a pad into its producer's dispatch, which then
writes the unpadded values straight into the interior of the padded buffer. When the padded innermost size is a
multiple of 4 floats, the SPIR-V backend types that buffer as `vector<4xf32>` and indexes it with the element
offset divided by 4; an interior that starts 2 floats into a row (a low pad of 2, 6, 10, ... on the width) loses
those 2 floats, and the whole interior lands 2 columns to the left. Measured on lavapipe (the same SPIR-V runs
on any GPU): ReLU -> pad 2 at 16x16 gives max error = max |output|; a 3x3 conv with pad 2 or dilation 2 after a
pattern conv with bias, a U-Net decoder or a residual block, likewise. Odd low pads (1, 3) and padded widths
that are not a multiple of 4 use scalar stores and are right, so they are left alone, as is every pad whose
rows cannot be vector-typed. With the barrier, the producer writes a buffer of its own and the pad is a copy
(one more small dispatch per such pad; no other change). Dense models need it as much as pattern ones, so it
runs on every Vulkan compile, after the plan's passes (`Target.post_passes`), which makes pads of our own
lowering covered too.

The barrier is IREE's own op; the bindings know no `util` dialect, so it is created unregistered (generic form),
and IREE reads it as its registered op from the bytecode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch_mlir import ir

from .base import PassContext, as_op, rewrite_each

BARRIER = "util.optimization_barrier"
VECTOR_BYTES = 16  # the SPIR-V backend's widest storage vector: vector<4xf32>


def _element_bytes(element: ir.Type) -> int | None:
    width = getattr(element, "width", None)  # float and integer types have it; index and others do not
    return None if width is None or width % 8 else width // 8


def misaligned_interior(low: int, padded: int, element_bytes: int) -> bool:
    """Whether a pad's interior starts inside a vector of the padded rows at an offset IREE would vectorize: the
    rows are whole vectors, and the low pad is an even number of elements that is not a whole vector."""
    lanes = max(1, VECTOR_BYTES // element_bytes)
    return lanes > 1 and padded % lanes == 0 and low % lanes != 0 and low % 2 == 0


@dataclass
class PadSourceBarrier:
    """pad-source-barrier (see the module docstring). No options."""

    name: ClassVar[str] = "pad-source-barrier"

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        module.context.allow_unregistered_dialects = True
        ctx.stats[self.name] = rewrite_each(module, "tensor.pad", self._rewrite)

    def _rewrite(self, op: ir.Operation) -> bool | None:
        result = ir.RankedTensorType(op.results[0].type)
        if result.rank == 0 or not result.has_static_shape:
            return None
        low = list(ir.DenseI64ArrayAttr(op.attributes["static_low"]))
        element_bytes = _element_bytes(result.element_type)
        if element_bytes is None or not misaligned_interior(low[-1], result.shape[-1], element_bytes):
            return None
        source = op.operands[0]
        producer = as_op(source.owner)
        if producer is not None and producer.name == BARRIER:
            return False  # already isolated (the pass ran before)
        with ir.InsertionPoint(op), op.location:
            barrier = ir.Operation.create(BARRIER, results=[source.type], operands=[source])
        op.operands[0] = barrier.results[0]
        return True
