"""The per-layer ARM estimate of `spattern report --target arm64-android` (spattern/arm_estimate.py): read from
the shipped model table, labelled as a model, and it responds to what the layer keeps."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from spattern import arm_estimate, report


def test_table_is_shipped_and_names_its_model():
    t = arm_estimate.load_table()
    core = t["cores"][arm_estimate.BIG_CORE]
    assert t["generated_by"] == "bench/arm_model.py" and "not a measurement" in t["what"]
    assert 0 < core["dense_flop_per_cycle"] <= core["peak_flop_per_cycle"]
    assert core["pattern_cycles_per_out_vector"] > 0 and core["pattern_vectors_per_pass"] >= 1


@pytest.mark.parametrize("stride", [1, 2])
def test_layer_cycles_follow_the_kept_kernels(stride):
    core = arm_estimate.load_table()["cores"][arm_estimate.BIG_CORE]
    full = arm_estimate.layer_cycles(128, 128, 28, 28, stride, 1.0, core)
    half = arm_estimate.layer_cycles(128, 128, 28, 28, stride, 0.5, core)
    assert half["dense"] == full["dense"]
    assert 0.5 * full["pattern"] < half["pattern"] < full["pattern"]
    # never faster than the MAC limit against a dense loop at the model's rate
    assert full["dense"] / full["pattern"] <= 9 / 4 and half["dense"] / half["pattern"] <= 9 / 2


def test_report_with_arm_target_prints_model_table(pruned_vgg_small_files):
    out = io.StringIO()
    rows = report.report_command(**pruned_vgg_small_files.args, time_repeat=0, target="arm64-android",
                                 console=Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert "a MODEL, not a measurement" in text and "neoverse-n1" in text
    pattern_rows = [r for r in rows if arm_estimate.layer_estimate(r) is not None]
    assert pattern_rows
    for r in pattern_rows:
        assert r.name in text.split("ARM64 estimate")[1]
    dense = [r for r in rows if r.mode != "pattern"]
    assert dense and all(arm_estimate.layer_estimate(r) is None for r in dense)


def test_tile_passes_mirror_the_kernels_pass_split():
    """kernels/pattern_conv.c spk_pass: whole VPS passes, then (NEON's tail pass) just the vectors left."""
    assert arm_estimate.tile_passes(96, 6, True) == [6, 6, 6, 6]
    assert arm_estimate.tile_passes(63, 6, True) == [6, 6, 4]  # 7x7 over the padded width: 16 vectors
    assert arm_estimate.tile_passes(63, 6, False) == [6, 6, 6]
    assert arm_estimate.tile_passes(9, 6, True) == [3]
