"""bench/arm_model.py: finds a shipped NEON object's innermost loops and reads llvm-mca's model of them.

llvm-mca (Debian llvm-19, or llvm) is optional on a developer's machine: without it the llvm-mca tests skip,
and under CI (env CI set) its absence is a failure (scripts/setup.sh installs llvm-19)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "arm_model.py"


@pytest.fixture(scope="module")
def am():
    spec = importlib.util.spec_from_file_location("bench_arm_model", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def llvm(am):
    found = am.find_llvm()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("llvm-mca / llvm-objdump missing under CI: scripts/setup.sh installs Debian's llvm-19")
        pytest.skip("llvm-mca / llvm-objdump not installed (Debian package llvm-19)")
    return found


def test_innermost_loops_takes_the_inner_of_two_nested_loops(am):
    I = am.Insn
    insns = [I(0x0, "mov", "x0, #0", None), I(0x4, "add", "x1, x1, #1", None),  # outer loop top
             I(0x8, "fmla", "v0.4s, v1.4s, v2.s[0]", None),  # inner loop top
             I(0xc, "subs", "x2, x2, #1", None), I(0x10, "b.ne", "0x8 <f+0x8>", 0x8),
             I(0x14, "subs", "x3, x3, #1", None), I(0x18, "b.ne", "0x4 <f+0x4>", 0x4),
             I(0x1c, "ret", "", None)]
    loops = am.innermost_loops("f", insns)
    assert [(lp.start, lp.end) for lp in loops] == [(0x8, 0x10)]
    assert [i.mnemonic for i in loops[0].preheader] == ["mov", "add"]
    assert "b.ne .Lmca_top" in am.mca_source(loops[0].body, loops[0].start)


def test_maxpool_loop_is_modelled_on_both_cores(am, llvm):
    """The 2x2 max pool's vector loop (the smallest shipped object) through llvm-mca for both cores: the
    summary and the resource pressure table are read, and the bottleneck names one of the model's units."""
    obj = ROOT / "spattern" / "_kernels" / "maxpool2x2_aarch64_neon.o"
    groups = am.grouped_vector_loops(llvm, obj)
    fmax = [g for g in groups if any(i.mnemonic.startswith("fmax") for i in g[0].body)]
    assert fmax, "the max pool object has no fmax loop"
    lm = am.model_loop(llvm, "maxpool2x2", fmax[0], obj)
    for core in am.CORES:
        p = lm.per_core[core.mcpu]
        assert 0 < p["block_rthroughput"] <= p["cycles_per_iter"] < 10 * lm.insns
        assert "Unit" in p["bottleneck"]
        assert 0 < p["gflops"] < core.ghz * core.peak_flop_per_cycle
    # LLVM >= 17 models Neoverse-N1 itself; LLVM 14 falls back to Cortex-A57 (the report says which)
    assert lm.per_core["neoverse-n1"]["model"] == ("N1" if llvm.version >= 17 else "A57")
    assert lm.per_core["cortex-a55"]["model"] == "CortexA55"


def test_shipped_table_matches_the_pattern_object(am, llvm):
    """spattern/arm_model_table.json (what `spattern report --target arm64-*` reads) was generated from the
    pattern object built from this checkout's kernels: its widest kernel loop models to the table's cycles.
    Regenerate with `python bench/arm_model.py --table spattern/arm_model_table.json` after changing
    kernels/pattern_conv.c."""
    from spattern import arm_estimate

    obj = ROOT / "spattern" / "_kernels" / "pattern_conv_aarch64_neon.o"
    widest = max((g for g in am.grouped_vector_loops(llvm, obj) if g[0].func == "spk_tile_s1"),
                 key=lambda g: g[0].count(am.is_fma))
    lm = am.model_loop(llvm, "pattern_conv", widest, obj)
    core = arm_estimate.load_table()["cores"]["neoverse-n1"]
    assert lm.out_vectors == core["pattern_vectors_per_pass"]
    if llvm.version == arm_estimate.load_table()["llvm_mca_version"]:
        table = core["pattern_cycles_per_kernel_by_nv"][str(lm.out_vectors)]
        assert abs(lm.per_core["neoverse-n1"]["cycles_per_iter"] - table) <= 0.02 * table
