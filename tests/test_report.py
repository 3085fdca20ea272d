"""The per-layer report and its plot, on tiny models (fast: no compile)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from torch import nn

from spattern import report
from spattern.errors import InputError, ModelLoadError, OutputPathError, PlanError, SpatternError
from spattern.pruning import LayerRule, PruneConfig, prune


class Tiny(nn.Module):
    """conv3x3 (3 in: kept dense by default) -> conv3x3 16->16 -> conv1x1 -> linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.body = nn.Conv2d(16, 16, 3, padding=1)
        self.point = nn.Conv2d(16, 8, 1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.point(torch.relu(self.body(torch.relu(self.stem(x))))))
        return self.fc(x.mean((2, 3)))


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return Tiny().eval(), torch.randn(1, 3, 8, 8)


@pytest.fixture(scope="module")
def pruned(tiny):
    model, x = tiny
    cfg = PruneConfig(default=LayerRule(connectivity=0.5, filter_block=4), method="magnitude", distill_steps=0,
                      recalibrate_bn=False)
    return prune(model, x, cfg, progress=False)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_dense_rows(tiny):
    model, x = tiny
    rows = report.layer_table(model, x)
    assert [r.name for r in rows] == ["stem", "body", "point", "fc"]
    assert [r.kind for r in rows] == ["conv3x3", "conv3x3", "conv1x1", "linear"]
    assert all(r.mode == "dense" and r.filter_block is None and r.macs_kept_fraction == 1.0 for r in rows)
    assert rows[1].in_shape == (1, 16, 8, 8) and rows[1].out_shape == (1, 16, 8, 8)
    assert rows[0].macs == 16 * 64 * 3 * 9
    assert rows[1].macs == 16 * 64 * 16 * 9
    assert rows[2].macs == 8 * 64 * 16
    assert rows[3].macs == 4 * 8
    assert report.totals(rows).mac_limit == 1.0


def test_pattern_rows(pruned, tiny):
    _, x = tiny
    rows = {r.name: r for r in report.layer_table(pruned.model, x, pruned.plan)}
    planned = {layer.name for layer in pruned.plan.layers}
    assert "body" in planned
    for name, row in rows.items():
        if name in planned:
            lp = pruned.plan.layer(name)
            assert row.mode == "pattern" and row.filter_block == 4
            assert row.macs_kept_fraction == pytest.approx(lp.macs_kept_fraction())
            assert row.macs_kept_fraction == pytest.approx(0.5 * 4 / 9)
        else:
            assert row.mode == "dense" and row.macs_kept_fraction == 1.0
    text = report.render([report.rows_table(list(rows.values()))])
    assert "pattern" in text and "body" in text and "MAC limit" in text


def test_time_share_is_measured_and_labelled(tiny):
    model, x = tiny
    rows = report.layer_table(model, x, time_repeat=3)
    assert all(r.time_s is not None and r.time_s > 0 for r in rows)
    text = " ".join(report.render([report.rows_table(rows)]).split())  # the caption wraps at the table's width
    assert "time share" in text and "torch eager" in text


def test_format_report_with_and_without_layers(tiny, pruned):
    _, x = tiny

    class Fake:
        vmfb = b"x" * 1000
        target = None
        stages = {"export": 1.0}
        info: dict = {}

    fake = Fake()
    assert "no per-layer record" in report.format_report(fake)
    fake.info = {"lowering": "microkernels"}
    report.attach_layers(fake, pruned.model, x, pruned.plan)
    json.dumps(fake.info)  # the record is plain JSON
    text = report.format_report(fake)
    assert "microkernels" in text and "body" in text and "pattern" in text


def test_plot_png_size(tmp_path, pruned, tiny):
    _, x = tiny
    rows = report.layer_table(pruned.model, x, pruned.plan)
    peers = tmp_path / "peers.json"
    peers.write_text(json.dumps({"format": "spattern.peers", "version": 1, "models": [
        {"model": "tiny", "engines": {"spattern_p": {"status": "ok", "median_ms": 2.0},
                                      "onnxruntime": {"status": "ok", "median_ms": 3.0},
                                      "tvm": {"status": "skipped", "reason": "too slow"}}}]}))
    acc = tmp_path / "acc.json"
    acc.write_text(json.dumps([{"setting": "r=0", "accuracy": 0.9, "speedup": 2.0},
                               {"setting": "r=0.5", "accuracy": 85.0, "speedup": 3.5},
                               {"setting": "no speed", "accuracy": 0.95}]))
    out = tmp_path / "out.png"
    report.report_command(plot_path=out, peers=[peers, peers], accuracy=acc, time_repeat=0, console=_quiet(),
                          **_tiny_model_args(tmp_path, pruned))
    assert png_size(out) == report.PLOT_SIZE_PX
    speed = report.speedups_vs_peers(report.read_peers(peers))
    assert speed["tiny"] == ("spattern_p", {"onnxruntime": (1.5, 1.5, 1.5)})
    points = report.read_accuracy(acc)
    assert [p.accuracy for p in points] == [90.0, 85.0, 95.0] and points[2].speedup is None
    # no peers or accuracy: only the layers panel is drawn (no empty placeholders)
    out2 = tmp_path / "only_layers.png"
    report.plot(out2, rows)
    assert png_size(out2) == report.plot_size_px(1) and report.plot_size_px(1)[0] * 3 == report.PLOT_SIZE_PX[0]


def _quiet():
    import io

    from rich.console import Console

    return Console(file=io.StringIO())


def _tiny_model_args(tmp_path: Path, pruned) -> dict:
    """A zoo model at its smallest, from a state dict, with the plan saved beside it: what the CLI gets."""
    from spattern import models

    model = models.build("vgg_small", num_classes=10, image_size=32)
    weights = tmp_path / "w.pt"
    torch.save(model.state_dict(), weights)
    return {"model": weights, "zoo": "vgg_small", "num_classes": 10, "input_shape": (1, 3, 32, 32)}


def test_report_command_with_plan(pruned_vgg_small_files):
    rows = report.report_command(**pruned_vgg_small_files.args, time_repeat=1, console=_quiet())
    assert sum(r.mode == "pattern" for r in rows) == pruned_vgg_small_files.n_planned > 0


def test_accuracy_py_rows(tmp_path):
    """bench/accuracy.py writes {"rows": [{model, task, stage, setting, connectivity, acc, ...}]}: no speedup,
    so points sit at the MAC limit of their connectivity and say so."""
    path = tmp_path / "acc.json"
    path.write_text(json.dumps({"args": {}, "rows": [
        {"model": "vgg_small", "task": "digits", "stage": "dense", "acc": 0.994, "dense": 0.994},
        {"model": "vgg_small", "task": "digits", "stage": "admm", "setting": "patterns", "inputs": "bn",
         "connectivity": 0.0, "acc": 0.99},
        {"model": "vgg_small", "task": "digits", "stage": "admm", "setting": "conn0.5", "inputs": "bn",
         "connectivity": 0.5, "acc": 0.986}]}))
    points = report.read_accuracy(path)
    assert [p.setting for p in points] == ["dense", "admm patterns bn", "admm conn0.5 bn"]
    assert [p.speedup for p in points] == [1.0, 2.25, 4.5] and not any(p.measured for p in points)
    assert points[2].accuracy == pytest.approx(98.6) and points[0].group == "vgg_small/digits"
    out = tmp_path / "acc.png"
    report.plot(out, None, None, points)
    assert png_size(out) == report.plot_size_px(1)  # only the accuracy panel: nothing else was given


def test_bad_inputs(tmp_path, tiny, pruned):
    model, x = tiny
    with pytest.raises(InputError):
        report.layer_table("not a model", x)
    with pytest.raises(InputError):
        report.layer_table(model, [1, 2])
    other = nn.Sequential(nn.Conv2d(3, 16, 3))
    with pytest.raises(PlanError):
        report.layer_table(other, x, pruned.plan)
    with pytest.raises(ModelLoadError):
        report.read_peers(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError):
        report.read_accuracy(bad)
    bad.write_text(json.dumps({"models": []}))
    with pytest.raises(InputError):
        report.read_peers(bad)
    bad.write_text(json.dumps([{"setting": "x", "connectivity": "half", "acc": 0.5}]))
    with pytest.raises(InputError):
        report.read_accuracy(bad)
    bad.write_text(json.dumps([{"setting": "x"}]))
    with pytest.raises(InputError):
        report.read_accuracy(bad)
    bad.write_text(json.dumps([{"setting": "x", "accuracy": "high"}]))
    with pytest.raises(InputError):
        report.read_accuracy(bad)
    with pytest.raises(OutputPathError):
        report.plot(tmp_path / "no" / "such" / "dir.png", None)
    with pytest.raises(OutputPathError):
        report.plot(tmp_path / "x.jpg", None)
    with pytest.raises(SpatternError):
        report.report_command(None, zoo="no_such_model", console=_quiet())


def test_report_reads_at_80_columns_in_a_pipe(tmp_path):
    """A ResNet's longest layer names, 3-digit channel counts and measured times fit 80 columns with nothing
    collapsed to '…' (the boxed table did that to MACs, kept and time at 80)."""
    import io

    from rich.console import Console
    from safetensors.torch import save_file

    from spattern import models

    save_file(models.build("resnet18", num_classes=10, image_size=32, seed=0).state_dict(), tmp_path / "w.safetensors")
    pipe = Console(file=io.StringIO(), width=80, force_terminal=False, color_system=None)
    report.report_command(tmp_path / "w.safetensors", zoo="resnet18", input_shape=(1, 3, 32, 32), num_classes=10,
                          time_repeat=1, console=pipe)
    text = pipe.file.getvalue()
    lines = text.splitlines()
    assert "…" not in text and max(len(line.rstrip()) for line in lines) <= 80, text
    assert any(line.startswith("layer2.0.downsample.0 ") and "64>128" in line for line in lines), text
    assert any(line.startswith("total") and line.rstrip().endswith("ms") for line in lines), text
