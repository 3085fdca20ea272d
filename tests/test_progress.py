"""What prune() tells a user: log lines without a terminal (a line per stage, one every ~10 s with the step,
elapsed time and time left), an estimate before the long stages, and a cache hit counted in the same unit."""

import io

import torch

from spattern import models
from spattern.pruning import PruneConfig, prune
from spattern.pruning.progress import LogTask, Progress, estimate_prune_seconds, format_seconds, layerwise_flops
from spattern.pruning.synthetic import synthesis_steps


def test_log_task_writes_a_line_every_interval_and_one_at_the_end():
    now = [0.0]
    out = io.StringIO()
    task = LogTask("synthetic images", 100, "steps", out, every_s=10.0, clock=lambda: now[0])
    for step in range(1, 101):
        now[0] = step * 0.5  # 0.5 s per step: a line at 10 s, 20 s, ... and the end at 50 s
        task(step, 100)
    lines = out.getvalue().splitlines()
    assert lines[0] == "synthetic images: step 20/100, 0:10 elapsed, about 0:40 left"
    assert len(lines) == 5 and lines[-1] == "synthetic images: done, 100 steps in 0:50"
    task(100, 100)  # a repeated final report prints nothing more
    assert len(out.getvalue().splitlines()) == 5


def test_progress_without_a_terminal_is_lines_and_disabled_is_silent():
    out = io.StringIO()
    with Progress(True, stream=out, terminal=False) as prog:
        prog.task("distillation", 3)(3, 3)
        prog.note("estimate: ...")
    assert out.getvalue() == "distillation: done, 3 steps in 0:00\nestimate: ...\n"
    quiet = io.StringIO()
    with Progress(False, stream=quiet) as prog:
        prog.task("x", 2)(2, 2)
        prog.note("y")
    assert quiet.getvalue() == ""
    assert format_seconds(3725) == "1:02:05" and format_seconds(59.6) == "1:00"


def test_estimate_grows_with_the_work():
    small = layerwise_flops([(16, 16)] * 4, positions=1024, admm_iters=6)
    big = layerwise_flops([(64, 64)] * 4, positions=1024, admm_iters=6)
    assert big > 16 * small
    est = estimate_prune_seconds(0.5, 400, 100, 4, 4, big, 1e10)
    assert est["synthesis"] == 200 and est["recovery"] == 0.5 * 1.2 * 100 and est["layerwise"] > big / 1e10


def test_prune_logs_the_estimate_and_a_cache_hit_counts_steps(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPATTERN_CACHE", str(tmp_path))
    model = models.build("vgg_small", num_classes=10, image_size=16, width=0.125, seed=0)
    cfg = PruneConfig(num_samples=8, synth_steps=6, positions=256, admm_iters=3, distill_steps=0)
    fresh = prune(model, torch.randn(1, 3, 16, 16), cfg, progress=True)
    err = capsys.readouterr().err  # pytest's stderr is not a terminal: log lines
    steps = synthesis_steps(8, 6)
    assert f"synthetic images: done, {steps} steps in" in err
    assert "estimate (from " in err and "total about" in err
    assert err.index("estimate (from ") < err.index("layer-wise admm: done")
    assert set(fresh.report["estimate"]) == {"synthesis", "layerwise", "recovery", "total"}
    prune(model, torch.randn(1, 3, 16, 16), cfg, progress=True)  # the synthetic images are cached now
    err = capsys.readouterr().err
    assert f"synthetic images: done, {steps} steps in 0:00" in err and "estimate (from " in err
