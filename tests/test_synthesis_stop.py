"""The defaults that keep pruning fast (issue 22): the plateau stop of the synthesis (steps is only a cap, progress
ends complete), the cache key that carries the stopping rule, and synth_resolution "auto"."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spattern.errors import ConfigError
from spattern.pruning import PruneConfig
from spattern.pruning import synthetic
from spattern.pruning.synthetic import PlateauStop, bn_matched_inputs


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                      nn.Flatten(), nn.Linear(8, 4))
    m[1].running_mean.uniform_(-0.5, 0.5)
    m[1].running_var.uniform_(0.5, 1.5)
    return m.eval()


def test_plateau_stop_rule():
    flat = PlateauStop(cap=200)
    while not flat.done():
        flat.update(1.0)
    assert flat.steps == 1 + 10 + 20  # the first step sets the best, 10 stale steps, then the 20-step tail
    falling = PlateauStop(cap=50)
    loss = 1.0
    while not falling.done():
        falling.update(loss)
        loss *= 0.9  # 10% better every step: never a plateau, the cap holds
    assert falling.steps == 50 and falling.tail_left is None
    tail = PlateauStop(cap=200)
    for _ in range(11):
        tail.update(1.0)
    scales = []
    while not tail.done():
        scales.append(tail.lr_scale())
        tail.update(1.0)
    assert scales == sorted(scales, reverse=True) and 0 < scales[-1] < scales[0] < 1


def test_synthesis_stops_before_the_cap_and_progress_ends_complete(tmp_path, monkeypatch):
    monkeypatch.setenv("SPATTERN_CACHE", str(tmp_path))
    calls: list[tuple[int, int]] = []
    x = bn_matched_inputs(_tiny(), (3, 8, 8), n=8, steps=300, batch=4, on_step=lambda d, t: calls.append((d, t)))
    assert x.shape == (8, 3, 8, 8)
    done, total = calls[-1]
    assert done == total < 2 * 300  # stopped early, and the last report is complete
    assert [d for d, _ in calls] == list(range(1, done + 1))
    capped: list[tuple[int, int]] = []
    bn_matched_inputs(_tiny(), (3, 8, 8), n=4, steps=5, batch=4, use_cache=False,
                      on_step=lambda d, t: capped.append((d, t)))
    assert capped[-1] == (5, 5)  # the cap holds


def test_cache_key_carries_the_stopping_rule(tmp_path, monkeypatch):
    monkeypatch.setenv("SPATTERN_CACHE", str(tmp_path))
    calls: list[tuple[int, int]] = []
    first = bn_matched_inputs(_tiny(), (3, 8, 8), n=4, steps=40, batch=4, on_step=lambda d, t: calls.append((d, t)))
    ran = calls[-1][0]
    calls.clear()
    again = bn_matched_inputs(_tiny(), (3, 8, 8), n=4, steps=40, batch=4, on_step=lambda d, t: calls.append((d, t)))
    assert calls == [(ran, ran)] and torch.equal(first, again)  # a hit reports the steps that ran, not the cap
    monkeypatch.setattr(synthetic, "SYNTH_KEY_VERSION", "another-rule")
    calls.clear()
    bn_matched_inputs(_tiny(), (3, 8, 8), n=4, steps=40, batch=4, on_step=lambda d, t: calls.append((d, t)))
    assert len(calls) > 1  # another stopping rule: synthesised again, not read from the cache


def test_auto_synthesis_resolution():
    cfg = PruneConfig()
    assert cfg.synth_resolution == "auto"
    assert cfg.synthesis_size(224, 224) == (112, 112)
    assert cfg.synthesis_size(32, 32) == (32, 32) and cfg.synthesis_size(112, 112) == (112, 112)
    assert PruneConfig(synth_resolution=None).synthesis_size(224, 224) == (224, 224)
    assert PruneConfig(synth_resolution=64).synthesis_size(224, 224) == (64, 64)
    for bad in ("big", 4, True):
        with pytest.raises(ConfigError):
            PruneConfig(synth_resolution=bad)
