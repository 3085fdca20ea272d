"""Modelled ARM64 time of each pattern layer on an A76-class core, beside the modelled dense time.

A model, not a measurement: the figures come from `arm_model_table.json`, which bench/arm_model.py writes from
llvm-mca's model of the shipped NEON pattern-conv inner loop and of an 8x12 fp32 GEMM loop (the dense reference)
on `-mcpu=neoverse-n1` (a Cortex-A76 derivative). Nothing is run at report time. What the layer model counts:
every kept kernel costs, per pass over a tile, the modelled cycles of the inner loop of that pass's vector count
(stride 1: over the padded width), each pattern run its setup and one mispredicted loop exit per pass, stride 2 its tap
de-interleave; dense: all 9 MACs per kernel at the GEMM loop's rate, with no im2col or packing counted. Not
counted on either side: cache misses, the write-out, threads.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from .errors import InputError

TABLE = Path(__file__).with_name("arm_model_table.json")
BIG_CORE = "neoverse-n1"
SPK_TILE, VW = 96, 4  # kernels/pattern_conv.h's tile, NEON's vector width
NUM_PATTERNS = 8  # the default library size: a (chunk, channel)'s runs are its distinct patterns


@lru_cache(maxsize=1)
def load_table(path: Path = TABLE) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read the ARM model table {path}: {e}; regenerate it with "
                         "`python bench/arm_model.py --table spattern/arm_model_table.json`") from None


def expected_runs(kernels: float, patterns: int = NUM_PATTERNS) -> float:
    """Distinct patterns among `kernels` kernels whose patterns are spread evenly over `patterns`."""
    return patterns * (1.0 - (1.0 - 1.0 / patterns) ** kernels)


def chunk_size(F: int) -> int:
    return 128 if F >= 256 else 64  # filter_kernel_reorder.chunk_size's rule (enough workgroups assumed)


def tile_passes(length: int, vps: int, tail_pass: bool) -> list[int]:
    """The vectors of each pass over a tile of `length` positions (kernels/pattern_conv.c spk_pass)."""
    nv = math.ceil(length / VW)
    if nv < vps:
        return [nv]
    if tail_pass and nv % vps:
        return [vps] * (nv // vps) + [nv % vps]
    return [vps] * math.ceil(nv / vps)


def layer_cycles(C: int, F: int, Ho: int, Wo: int, stride: int, keep: float, core: Mapping[str, Any]) -> dict[str, float]:
    """Modelled cycles of one image's pattern conv (C -> F channels, Ho x Wo outputs, `keep` of the kernels kept)
    and of the dense reference on the same layer, on one core (a row of the table's "cores")."""
    positions = Ho * (Wo + 2) if stride == 1 else Ho * Wo
    full, last = divmod(positions, SPK_TILE)
    by_nv = {int(k): v for k, v in core["pattern_cycles_per_kernel_by_nv"].items()}
    vps, tail = core["pattern_vectors_per_pass"], core["pattern_tail_pass"]
    tiles = [(SPK_TILE, full)] + ([(last, 1)] if last else [])
    kernel_cycles = sum(n * sum(by_nv[p] for p in tile_passes(length, vps, tail)) for length, n in tiles)
    passes = sum(n * len(tile_passes(length, vps, tail)) for length, n in tiles)
    nchunk = math.ceil(F / chunk_size(F))
    runs = nchunk * C * expected_runs(min(F, chunk_size(F)) * keep)
    cyc = F * C * keep * kernel_cycles
    cyc += runs * passes * (core["pattern_run_setup_cycles"] + core["mispredict_cycles"])
    if stride == 2:
        cyc += nchunk * C * (full + bool(last)) * 3 * (SPK_TILE / VW) * core["s2_tap_cycles_per_vector"]
    dense = 2.0 * 9 * C * F * Ho * Wo / core["dense_flop_per_cycle"]
    return {"pattern": cyc, "dense": dense}


def layer_estimate(row: Any, core_name: str = BIG_CORE) -> dict[str, float] | None:
    """(pattern ms, dense ms, speedup, MAC limit) of a report LayerRow, or None for a layer the pattern kernel
    does not run (dense layers, non-3x3)."""
    if row.mode != "pattern" or row.kind != "conv3x3" or len(row.in_shape) != 4 or len(row.out_shape) != 4:
        return None
    core = load_table()["cores"][core_name]
    n, C, H, _ = row.in_shape
    _, F, Ho, Wo = row.out_shape
    stride = 2 if Ho * 2 <= H else 1
    keep = min(1.0, row.macs_kept_fraction * 9.0 / 4.0)  # kept kernels (4 of 9 MACs each)
    c = layer_cycles(C, F, Ho, Wo, stride, keep, core)
    hz = core["ghz"] * 1e9
    return {"pattern_ms": n * c["pattern"] / hz * 1e3, "dense_ms": n * c["dense"] / hz * 1e3,
            "speedup": c["dense"] / c["pattern"], "mac_limit": 1.0 / row.macs_kept_fraction}


def arm_table(rows: Any, core_name: str = BIG_CORE):
    """A rich Table: each pattern layer's modelled time beside the modelled dense time, labelled as a model."""
    from rich.table import Table

    t = load_table()
    core = t["cores"][core_name]
    table = Table(title=f"ARM64 estimate: a MODEL, not a measurement (llvm-mca {t['llvm_mca_version']} "
                        f"-mcpu={core_name}, {core['name']} core at {core['ghz']} GHz, one thread, L1-resident)",
                  caption="pattern: the NEON pattern kernel's modelled inner loop + run costs; dense: an 8x12 fp32 "
                          "GEMM loop at its modelled rate, no im2col (optimistic for dense)")
    for col in ("layer", "out", "kept MACs", "pattern ms", "dense ms", "speedup", "MAC limit"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    tot_p = tot_d = 0.0
    for row in rows:
        e = layer_estimate(row, core_name)
        if e is None:
            continue
        tot_p += e["pattern_ms"]
        tot_d += e["dense_ms"]
        table.add_row(row.name, "x".join(str(d) for d in row.out_shape), f"{row.macs_kept_fraction:.0%}",
                      f"{e['pattern_ms']:.2f}", f"{e['dense_ms']:.2f}", f"{e['speedup']:.2f}x",
                      f"{e['mac_limit']:.2f}x")
    if tot_p:
        table.add_row("all pattern layers", "", "", f"{tot_p:.2f}", f"{tot_d:.2f}", f"{tot_d / tot_p:.2f}x", "")
    return table
