"""strided-1x1-to-slice: rewrites a strided 1x1 `linalg.conv_2d_nchw_fchw` (kernel 1x1, strides (sh, sw) != (1, 1))
into a subsampling of its input, x[:, :, ::sh, ::sw] of shape [N, C, Ho, Wo], followed by the same conv with
strides 1. A 1x1 conv reads input pixel (oh*sh, ow*sw) for output pixel (oh, ow) and nothing else, so subsampling
first is the same computation: same MACs, same products summed in the same order.

The subsampling is written as a reshape plus a unit-stride slice: the input cut or zero-padded (at the high end;
the padding is never read) to [N, C, Ho*sh, Wo*sw], `tensor.expand_shape` to [N, C, Ho, sh, Wo, sw], then the
rank-reducing `tensor.extract_slice` of element 0 of both stride dims. The obvious form, one `tensor.extract_slice`
with strides [1, 1, sh, sw], does not work in IREE 3.13: it is fused back into the conv's loads (the stride is
back inside the matmul) or into a data-tiling pack (which then fails to compile); so is a strided-map copy.

Why it pays: IREE 3.13 on the host CPU target does not treat a strided 1x1 conv (the ResNet downsample convs) as
a matmul: the stride stays in a generic that neither data tiling nor the mmt4d ukernel picks up, 25-100x slower
than ONNX Runtime. A stride-1 1x1 conv becomes a matmul: dense ResNet-50 1.72x (the figures:
bench/results/pass-measurements.txt, bench/results/parts-224.txt).

The conv's input may come from anything (a tensor.pad of a padded 1x1 conv included: the subsampling then reads the
padded tensor, which is exactly what the strided conv reads). A strided 1x1 conv whose shapes are not static (or
whose input has an encoding) is left alone and counted as `skipped`; stride-1 and non-1x1 convs are not counted.
Run first on every compile for the CPU targets (`Target.pre_passes`), dense models included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch_mlir import ir

from .base import PassContext, int_pair_attr, rewrite_each

CONV_NCHW = "linalg.conv_2d_nchw_fchw"
MEMOIZED_MAPS = "linalg.memoized_indexing_maps"


def _static_shape(value: ir.Value) -> list[int] | None:
    try:
        t = ir.RankedTensorType(value.type)
    except ValueError:
        return None
    if not t.has_static_shape:
        return None
    return list(t.shape)


def _slice(x: ir.Value, sizes: list[int], elt: ir.Type, result_shape: list[int] | None = None) -> ir.Value:
    """x[0:sizes[0], 0:sizes[1], ...] (unit strides); rank-reduced to result_shape when given."""
    rank = len(sizes)
    return ir.Operation.create(
        "tensor.extract_slice", results=[ir.RankedTensorType.get(result_shape or sizes, elt)], operands=[x],
        attributes={"static_offsets": ir.DenseI64ArrayAttr.get([0] * rank),
                    "static_sizes": ir.DenseI64ArrayAttr.get(sizes),
                    "static_strides": ir.DenseI64ArrayAttr.get([1] * rank),
                    "operandSegmentSizes": ir.DenseI32ArrayAttr.get([1, 0, 0, 0])}).results[0]


def _pad_high(x: ir.Value, shape: list[int], elt: ir.Type) -> ir.Value:
    """x padded at the high end to `shape` with zeros (the padding is never read: only element 0 of each
    stride group is)."""
    zero_attr = ir.FloatAttr.get(elt, 0.0) if not isinstance(elt, ir.IntegerType) else ir.IntegerAttr.get(elt, 0)
    zero = ir.Operation.create("arith.constant", results=[elt], attributes={"value": zero_attr}).results[0]
    old = ir.RankedTensorType(x.type).shape
    pad = ir.Operation.create(
        "tensor.pad", results=[ir.RankedTensorType.get(shape, elt)], operands=[x],
        attributes={"static_low": ir.DenseI64ArrayAttr.get([0] * len(shape)),
                    "static_high": ir.DenseI64ArrayAttr.get([a - b for a, b in zip(shape, old)]),
                    "operandSegmentSizes": ir.DenseI32ArrayAttr.get([1, 0, 0])},
        regions=1)
    block = pad.regions[0].blocks.append(*([ir.IndexType.get()] * len(shape)))
    with ir.InsertionPoint(block):
        ir.Operation.create("tensor.yield", operands=[zero])
    return pad.results[0]


@dataclass
class Strided1x1ToSlice:
    """strided-1x1-to-slice (see the module docstring). No options."""

    name: ClassVar[str] = "strided-1x1-to-slice"

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        ctx.stats[self.name] = rewrite_each(module, CONV_NCHW, self._rewrite)

    def _rewrite(self, op: ir.Operation) -> bool | None:
        """True: rewritten; False: a strided 1x1 conv left alone; None: not a strided 1x1 conv."""
        if len(op.operands) != 3 or len(op.results) != 1:
            return None
        sh, sw = int_pair_attr(op, "strides")
        if (sh, sw) == (1, 1):
            return None
        x, w, _ = op.operands
        w_shape = _static_shape(w)
        if w_shape is None:
            return False if self._maybe_1x1(w) else None
        if len(w_shape) != 4 or w_shape[2:] != [1, 1]:
            return None
        x_shape = _static_shape(x)
        out_shape = _static_shape(op.results[0])
        if x_shape is None or out_shape is None or len(x_shape) != 4 or len(out_shape) != 4:
            return False
        n, c, h, wd = x_shape
        ho, wo = out_shape[2:]
        if (ho - 1) * sh + 1 > h or (wo - 1) * sw + 1 > wd:
            return False
        if ir.RankedTensorType(x.type).encoding is not None:
            return False
        with ir.InsertionPoint(op), op.location:
            out_type = ir.RankedTensorType.get([n, c, ho, wo], ir.RankedTensorType(x.type).element_type)
            sliced = self._subsample(x, out_type, sh, sw)
        op.operands[0] = sliced
        op.attributes["strides"] = ir.DenseIntElementsAttr.get(
            np.array([1, 1], dtype=np.int64), type=ir.VectorType.get([2], ir.IntegerType.get_signless(64)))
        # The named op caches its indexing maps (with the old strides) on first use; drop the cache.
        if MEMOIZED_MAPS in op.attributes:
            del op.attributes[MEMOIZED_MAPS]
        return True

    @staticmethod
    def _subsample(x: ir.Value, out_type: ir.RankedTensorType, sh: int, sw: int) -> ir.Value:
        """x[:, :, ::sh, ::sw] cut to out_type's shape [N, C, Ho, Wo], as a reshape and a unit-stride slice: x cut
        (or zero-padded) to [N, C, Ho*sh, Wo*sw], expanded to [N, C, Ho, sh, Wo, sw], then element 0 of the two
        stride dims. (A strided tensor.extract_slice says the same, but IREE 3.13 fuses it into the consumer's
        loads: into the conv, the stride is back inside the matmul; into a data-tiling pack, codegen fails on
        ResNet-50 with "large vector sizes".)"""
        n, c, ho, wo = out_type.shape
        xt = ir.RankedTensorType(x.type)
        elt = xt.element_type
        h, w = xt.shape[2], xt.shape[3]
        th, tw = ho * sh, wo * sw
        if (min(h, th), min(w, tw)) != (h, w):
            x = _slice(x, [n, c, min(h, th), min(w, tw)], elt)
        if (th, tw) != (min(h, th), min(w, tw)):
            x = _pad_high(x, [n, c, th, tw], elt)
        x6 = ir.Operation.create(
            "tensor.expand_shape", results=[ir.RankedTensorType.get([n, c, ho, sh, wo, sw], elt)], operands=[x],
            attributes={"reassociation": ir.Attribute.parse("[[0], [1], [2, 3], [4, 5]]"),
                        "static_output_shape": ir.DenseI64ArrayAttr.get([n, c, ho, sh, wo, sw])}).results[0]
        return _slice(x6, [n, c, ho, 1, wo, 1], elt, result_shape=[n, c, ho, wo])

    @staticmethod
    def _maybe_1x1(w: ir.Value) -> bool:
        try:
            t = ir.RankedTensorType(w.type)
        except ValueError:
            return True
        return t.rank == 4 and all(t.is_dynamic_dim(i) or t.shape[i] == 1 for i in (2, 3))
