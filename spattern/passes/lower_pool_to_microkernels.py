"""lower-pool-to-microkernels: a 2x2 / stride-2 max pool in NCHW (VGG's pools, after our pattern convs) runs in
our C max-pool kernel, writing the next pattern conv's padded input when that conv is its only user (CPU targets).

Rewrites `linalg.pooling_nchw_max` with a 2x2 window, strides 2 and dilations 1 over one static [1, C, H, W] f32
image, its init a fill of -inf (or the lowest float), and its output floor(H / 2) x floor(W / 2) (no ceil_mode),
into `func.call @spattern_mk_<n>(%x, %unused, %table)` of kernels/maxpool2x2.c, the header packed by
`spattern.microkernels.maxpool_abi` (the kernel has no weights: a 1-element constant fills the ABI's slot). The private
declaration carries `spattern.microkernel = {kernel = "maxpool2x2", ...}` for `materialize_microkernels`. When the
pool's only user is a pattern conv that lower-to-microkernels lowers, the kernel writes that conv's padded input,
zeros included (marked `spattern.padded_output`, read through the interior slice until then), as the 1x1 and
pattern kernels' padded outputs do.

Why it pays: IREE vectorizes an NCHW pool poorly, since the window's columns interleave in memory. The kernel
folds two rows with a vertical max, then an even/odd shuffle and a horizontal max, in whole vectors: VGG-16's
five pools 3x faster (the figures: bench/results/pass-measurements.txt,
bench/results/session9-linear-and-pool-kernels.txt).

Runs on the microkernel path after pool-to-channels-last (which takes the pools after IREE's own convs, such as
ResNet's stem pool, to NHWC: not candidates here) and before lower-to-microkernels. Other NCHW max pools (other
windows, batches, dynamic shapes) are left to IREE (counted `skipped`, recorded as fallbacks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch_mlir import ir

from ..dialect import constants
from ..microkernels.maxpool_abi import KERNEL, pack_maxpool
from .base import PassContext, erase_dead, module_symbols, ops_named
from .lower_to_microkernels import PADDED_OUTPUT_ATTR, emit_kernel_call, interior, pattern_consumer_pads
from .pool_to_channels_last import POOL_NCHW_MAX

_LOWEST_F32 = float(np.finfo(np.float32).min)
NOT_2X2 = "max pool other than 2x2 / stride 2 over one image: IREE's pool"


def _dense_pair(op: ir.Operation, name: str) -> list[int]:
    return [int(v) for v in ir.DenseIntElementsAttr(op.attributes[name])]


def is_2x2_pool(op: ir.Operation) -> bool:
    """Whether `op` (a linalg.pooling_nchw_max) is a 2x2 / stride-2 pool of one static f32 image with a -inf init
    and a floor-mode output: what the kernel computes."""
    x, window, init = op.operands[0], op.operands[1], op.operands[2]
    xt, yt = ir.RankedTensorType(x.type), ir.RankedTensorType(op.results[0].type)
    if not (xt.has_static_shape and yt.has_static_shape and xt.element_type == ir.F32Type.get()):
        return False
    n, c, h, w = xt.shape
    if (n != 1 or h < 2 or w < 2 or list(yt.shape) != [1, c, h // 2, w // 2]
            or list(ir.RankedTensorType(window.type).shape) != [2, 2]
            or _dense_pair(op, "strides") != [2, 2] or _dense_pair(op, "dilations") != [1, 1]):
        return False
    lowest = constants.try_constant_array(init)
    return lowest is not None and bool(np.all(lowest <= _LOWEST_F32))


@dataclass
class LowerPoolToMicrokernels:
    """lower-pool-to-microkernels (see the module docstring). workgroups: at most this many per pool (channel
    groups); None: maxpool_abi's default."""

    workgroups: int | None = None
    name: ClassVar[str] = "lower-pool-to-microkernels"

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        taken = module_symbols(module)
        stats = {"pools": 0, "skipped": 0, "padded_outputs": 0}
        with module.context, ir.Location.unknown():
            for op in ops_named(module, POOL_NCHW_MAX):
                if not is_2x2_pool(op):
                    stats["skipped"] += 1
                    ctx.fall_back(self.name, op, NOT_2X2)
                    continue
                stats["pools"] += 1
                stats["padded_outputs"] += self._lower_one(module, op, taken)
            erase_dead(module)  # the pools' inits and windows
        ctx.stats[self.name] = stats

    def _lower_one(self, module: ir.Module, op: ir.Operation, taken: set[str]) -> bool:
        """Rewrites one pool; whether it writes the next conv's padded input."""
        _, c, h, w = (int(d) for d in ir.RankedTensorType(op.operands[0].type).shape)
        out_shape = tuple(int(d) for d in ir.RankedTensorType(op.results[0].type).shape)
        packed = pack_maxpool(c, h, w, out_pad=pattern_consumer_pads(op.results[0]), workgroups=self.workgroups)
        with ir.InsertionPoint(op), op.location:
            call = emit_kernel_call(module, taken, packed, KERNEL, op.operands[0], None, self.name, op.location)
            value = call.results[0]
            if any(packed.out_pad):  # lower-to-microkernels' pattern conv then reads the padded buffer as is
                call.attributes[PADDED_OUTPUT_ATTR] = ir.DenseI64ArrayAttr.get(list(packed.out_pad))
                value = interior(value, packed.out_pad, out_shape)
        op.results[0].replace_all_uses_with(value)
        op.erase()
        return any(packed.out_pad)
