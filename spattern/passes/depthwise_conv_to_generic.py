"""depthwise-conv-to-generic: rewrites `linalg.depthwise_conv_2d_nchw_chw` into an equivalent `linalg.generic`
whose loops are ordered like its NCHW output (n, c, oh, ow, kh, kw), so the output indexing map is the identity.

Why (issue 7): IREE generalizes the named op in the loop order of its OpDSL definition, (n, oh, ow, c, kh, kw),
i.e. with the permuted output map (n, c, oh, ow) <- (d0, d3, d1, d2). For such an op IREE's SPIR-V BaseDistribute
pipeline (the one every Vulkan target here uses for depthwise convs) distributes the output's zero fill over the
workgroup's threads with one thread mapping and the reduction with another, with no barrier between them: a
thread's accumulation can be overwritten by another thread's late zero store. On lavapipe that zeroes about a
third of the outputs (max error = max |output|); the SPIR-V has the race on any GPU, though whether and how
often it shows there depends on the scheduling (not checked on real hardware). With the identity output map the
fill is fused into the same per-thread tile as the reduction (each thread zeroes exactly the elements it then
accumulates), and the numbers are right. Only the loop order changes: same reads, same MACs, same result.

All operands must have one element type (float: mulf/addf, integer: muli/addi, as the named op computes it);
a conv with mixed types (e.g. i8 inputs into an i32 accumulator) is left alone and counted as `skipped`.
Run first on every compile for the Vulkan targets (`Target.pre_passes`), dense models included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch_mlir import ir

from .base import PassContext, int_pair_attr, rewrite_each

DEPTHWISE_NCHW = "linalg.depthwise_conv_2d_nchw_chw"


def _arith(op: ir.Operation) -> tuple[ir.Type, str, str] | None:
    """(element type, multiply op, add op) when every operand has one element type, float or integer."""
    types = [ir.RankedTensorType(v.type).element_type for v in op.operands]
    if len({str(t) for t in types}) != 1:
        return None
    elt = types[0]
    if isinstance(elt, (ir.F16Type, ir.BF16Type, ir.F32Type, ir.F64Type)):
        return elt, "arith.mulf", "arith.addf"
    if isinstance(elt, ir.IntegerType):
        return elt, "arith.muli", "arith.addi"
    return None


@dataclass
class DepthwiseConvToGeneric:
    """depthwise-conv-to-generic (see the module docstring). No options."""

    name: ClassVar[str] = "depthwise-conv-to-generic"

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        ctx.stats[self.name] = rewrite_each(module, DEPTHWISE_NCHW, self._rewrite)

    def _rewrite(self, op: ir.Operation) -> bool:
        if len(op.operands) != 3 or len(op.results) != 1:
            return False
        arith = _arith(op)
        if arith is None:
            return False
        elt, mul_op, add_op = arith
        sh, sw = int_pair_attr(op, "strides")
        dh, dw = int_pair_attr(op, "dilations")
        maps = ir.Attribute.parse(
            "[affine_map<(n, c, h, w, i, j) -> "
            f"(n, c, h * {sh} + i * {dh}, w * {sw} + j * {dw})>, "
            "affine_map<(n, c, h, w, i, j) -> (c, i, j)>, "
            "affine_map<(n, c, h, w, i, j) -> (n, c, h, w)>]")
        iterators = ir.Attribute.parse(
            "[#linalg.iterator_type<parallel>, #linalg.iterator_type<parallel>, #linalg.iterator_type<parallel>, "
            "#linalg.iterator_type<parallel>, #linalg.iterator_type<reduction>, #linalg.iterator_type<reduction>]")
        with ir.InsertionPoint(op), op.location:
            generic = ir.Operation.create(
                "linalg.generic", results=[op.results[0].type], operands=list(op.operands),
                attributes={"indexing_maps": maps, "iterator_types": iterators,
                            "operandSegmentSizes": ir.DenseI32ArrayAttr.get([2, 1])},
                regions=1)
            block = generic.regions[0].blocks.append(elt, elt, elt)
            with ir.InsertionPoint(block):
                x, w, acc = block.arguments
                mul = ir.Operation.create(mul_op, results=[elt], operands=[x, w]).results[0]
                add = ir.Operation.create(add_op, results=[elt], operands=[acc, mul]).results[0]
                ir.Operation.create("linalg.yield", operands=[add])
        op.results[0].replace_all_uses_with(generic.results[0])
        op.erase()
        return True
