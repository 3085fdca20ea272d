"""filter-kernel-reorder (FKR): chooses each conv's filter chunks and the order of each chunk's kernels.

Writes on each `sparse_pattern.conv2d`:
  chunk_filters  tensor<F x i32>: the filters chunk by chunk, each chunk's in ascending order (a filter's
                 chunk-local index is its position in its chunk);
  chunk_sizes    tensor<n_chunks x i32>: filters per chunk;
  kernel_order   tensor<K x i32>: the canonical kernel each weight row now holds; the rows (permuted with it) are
                 in (chunk, channel, pattern, filter) order.
The chunks: ceil(F / size) chunks with similar kept-kernel counts (load balance: a chunk is one workgroup's unit
of work), size 128 for layers of >= 256 filters whose image still gives >= 8 workgroups with it, else 64
(`chunk_size`). Why it pays: the microkernel walks each chunk's kernels in this order, so each (chunk, channel,
pattern) is one contiguous run that one hard-coded pattern loop serves, with no pattern branch per kernel, and
longer chunks make longer runs. lower-to-microkernels packs exactly these chunks and this order; without this
pass it packs `identity_chunks` and `unordered_kernels` (the ablation's "no FKR"). The portable path
(lower-to-linalg) does not depend on it: it derives each group's rows from the kept kernels' taps.

Not done (see DESIGN.md): permuting filters across layers; every permutation here is inside one op, so it costs
nothing at run time by itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch_mlir import ir

from ..dialect.constants import constant_array
from ..dialect.sparse_pattern import CONV2D, Conv2dInfo, conv2d_info, i32_elements, load_dialect
from ..microkernels.microkernel_abi import CHUNK, ConvGeometry
from .base import PassContext, f32_constant, ops_named
from .schedule import optional_table

SMALL_CHUNK = 64  # filters per chunk for narrow layers or too few workgroups; the chunks without this pass


def chunk_size(f: int, work_units: int) -> int:
    """Filters per chunk for a layer of f filters whose image gives work_units (images x tiles) units.

    Larger chunks make longer runs of same-pattern kernels per (chunk, channel), so each run's tap loads and loop
    exit are spread over more kernels: 128-filter chunks measured +3-18% (one core, r=0.5) and +-4% (r=0) over 64
    for 256 and 512 filters (bench/results/microkernels-tuning.txt). They are used only where they still leave
    >= 8 workgroups (threads need work) and for f >= 256 (at 128 filters the gain was mixed); their accumulators
    (57 KiB) no longer fit L1, which the longer runs more than pay for."""
    if f >= 2 * CHUNK and work_units * math.ceil(f / CHUNK) >= 8:
        return CHUNK
    return SMALL_CHUNK


def deal_filters(kept_per_filter: np.ndarray, size: int) -> list[np.ndarray]:
    """Deals filters into ceil(F/size) chunks of at most size filters with similar total work (longest first
    into the least-loaded chunk that has room), each chunk's filters in ascending order."""
    f = len(kept_per_filter)
    nch = max(1, math.ceil(f / size))
    cap = math.ceil(f / nch)
    load = np.zeros(nch, dtype=np.int64)
    members: list[list[int]] = [[] for _ in range(nch)]
    for fi in np.argsort(-kept_per_filter, kind="stable"):
        open_chunks = [i for i in range(nch) if len(members[i]) < cap]
        best = min(open_chunks, key=lambda i: (load[i], i))
        members[best].append(int(fi))
        load[best] += int(kept_per_filter[fi])
    return [np.asarray(sorted(m), dtype=np.int64) for m in members]


def identity_chunks(f: int) -> list[np.ndarray]:
    """The chunks without this pass: consecutive filters, ceil(f / SMALL_CHUNK) chunks of even size."""
    return [m.astype(np.int64) for m in np.array_split(np.arange(f), max(1, math.ceil(f / SMALL_CHUNK)))]


def chunk_index(chunks: list[np.ndarray], f: int) -> tuple[np.ndarray, np.ndarray]:
    """(chunk, chunk-local index) of each of the f filters."""
    chunk_of = np.zeros(f, dtype=np.int64)
    local_of = np.zeros(f, dtype=np.int64)
    for i, members in enumerate(chunks):
        chunk_of[members] = i
        local_of[members] = np.arange(len(members))
    return chunk_of, local_of


def sorted_kernels(info: Conv2dInfo, chunks: list[np.ndarray], by_pattern: bool) -> np.ndarray:
    """The canonical kernels in (chunk, channel, pattern, chunk-local filter) order, or without by_pattern in
    (chunk, channel, chunk-local filter) order: the least order the kernel's tables need."""
    f, c = info.canonical_kernels()
    chunk_of, local_of = chunk_index(chunks, info.out_channels)
    keys = (local_of[f], info.filter_patterns()[f, c], c, chunk_of[f]) if by_pattern else (local_of[f], c, chunk_of[f])
    return np.lexsort(keys).astype(np.int64)


def op_chunks(op: ir.Operation, info: Conv2dInfo) -> list[np.ndarray]:
    """The op's chunks: this pass's chunk_filters / chunk_sizes, else identity_chunks."""
    flat, sizes = optional_table(op, "chunk_filters"), optional_table(op, "chunk_sizes")
    if flat is None or sizes is None:
        return identity_chunks(info.out_channels)
    return np.split(flat.reshape(-1), np.cumsum(sizes.reshape(-1))[:-1])


def reading_order(op: ir.Operation, info: Conv2dInfo) -> np.ndarray:
    """[K] the canonical kernel the microkernel reads at each position: the op's rows (kernel_order) when this pass
    ran, else `unordered_kernels` (canonical rows in (chunk, channel, filter) order)."""
    if info.kernel_order is not None:
        return info.kernel_order
    return unordered_kernels(info, op_chunks(op, info))


def reading_kernels(info: Conv2dInfo, order: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(filters, channels, library pattern indices) of the canonical kernels `order` lists, in that order."""
    f, c = info.canonical_kernels()
    f, c = f[order], c[order]
    return f, c, info.filter_patterns()[f, c]


def unordered_kernels(info: Conv2dInfo, chunks: list[np.ndarray]) -> np.ndarray:
    """The kernel order without this pass: grouped as the kernel's tables need, not sorted by pattern."""
    return sorted_kernels(info, chunks, by_pattern=False)


def work_units(op: ir.Operation, info: Conv2dInfo) -> int:
    """Images x spatial tiles of the conv's input: the units the microkernel spreads over workgroups."""
    n, c, h, w = (int(d) for d in ir.RankedTensorType(op.operands[0].type).shape)
    geo = ConvGeometry(n, c, h, w, info.out_channels, info.strides[0], info.padding[0])
    return n * geo.ntiles()


@dataclass
class FilterKernelReorder:
    """Options: `chunk_size` (filters per chunk; 0: the 64/128 rule of `chunk_size`)."""

    name: ClassVar[str] = "filter-kernel-reorder"
    chunk_size: int = 0

    def run(self, module: ir.Module, ctx: PassContext) -> None:
        load_dialect(module.context)
        n = wide = 0
        with module.context, ir.Location.unknown():
            for op in ops_named(module, CONV2D):
                info = conv2d_info(op)
                size = self.chunk_size or chunk_size(info.out_channels, work_units(op, info))
                chunks = deal_filters(info.filter_kept().sum(axis=1), min(size, CHUNK))
                weights = constant_array(op.operands[1])
                current = info.kernel_order if info.kernel_order is not None else np.arange(len(weights))
                canonical = np.empty_like(weights)
                canonical[current] = weights  # back to canonical order, then into the new one
                order = sorted_kernels(info, chunks, by_pattern=True)
                with ir.InsertionPoint(op):
                    op.operands[1] = f32_constant(canonical[order])
                op.attributes["kernel_order"] = i32_elements(order)
                op.attributes["chunk_filters"] = i32_elements(np.concatenate(chunks))
                op.attributes["chunk_sizes"] = i32_elements(np.array([len(m) for m in chunks]))
                n += 1
                wide += size > SMALL_CHUNK
        ctx.stats[self.name] = {"reordered": n, "convs_in_128_chunks": wide}
