"""Data-free pattern pruning: structure, plan validation, determinism, quality vs magnitude, no real data."""

from __future__ import annotations

import builtins
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from spattern import patterns
from spattern.errors import ConfigError, PlanError
from spattern.models import build
from spattern.pruning import (LayerRule, PatternPlan, PruneConfig, finetune, load_pruned, project, prune,
                              save_pruned, select_library, validate_library)
from spattern.pruning.precision import native_bfloat16, resolve_precision
from spattern.pruning.distill import recalibrate_bn
from spattern.pruning.synthetic import bn_matched_inputs, gaussian_inputs, pink_noise

torch.set_num_threads(1)  # 2 shared cores: one thread avoids OpenMP oversubscription
FAST = dict(num_samples=32, synth_steps=8, positions=2048, admm_iters=9, distill_steps=10)


pytestmark = pytest.mark.usefixtures("private_cache")


def tiny(name: str = "vgg_small", seed: int = 0) -> nn.Module:
    return build(name, num_classes=10, image_size=32, width=0.25 if name == "vgg_small" else 0.125, seed=seed)


@pytest.fixture(scope="module")
def pruned_vgg():
    model = tiny()
    ref = {k: v.clone() for k, v in model.state_dict().items()}
    res = prune(model, torch.randn(1, 3, 32, 32), PruneConfig(default=LayerRule(connectivity=0.5), **FAST),
                progress=False)
    return model, ref, res


def _check_structure(model: nn.Module, plan: PatternPlan, min_exact: float = 0.85) -> None:
    modules = dict(model.named_modules())
    for lp in plan.layers:
        w = modules[lp.name].weight.detach().numpy()
        nz = w != 0
        mask = lp.mask()
        assert not (nz & ~mask).any(), lp.name  # nothing outside the pattern or in a removed kernel
        kept = lp.filter_kept()
        exact = (nz == mask).all(axis=(2, 3))[kept]
        # a kept weight may be exactly zero only where its input channel is dead (all-zero after ReLU)
        assert exact.mean() >= min_exact, (lp.name, exact.mean())
        lib_masks = patterns.all_masks()[lp.filter_patterns()]
        assert (lib_masks.sum(axis=(2, 3)) == 4).all()


def test_every_kernel_is_its_pattern_or_zero(pruned_vgg):
    model, ref, res = pruned_vgg
    _check_structure(res.model, res.plan)
    names = [lp.name for lp in res.plan.layers]
    assert "features.0" not in names  # the first conv (3 input channels) stays dense
    assert len(names) == 7
    for lp in res.plan.layers:
        assert 0.4 <= lp.kept_fraction() <= 0.5 + 1e-9
        assert len(lp.library) == 8


def test_input_model_untouched(pruned_vgg):
    model, ref, _ = pruned_vgg
    for k, v in model.state_dict().items():
        assert torch.equal(v, ref[k]), k


def test_admm_beats_magnitude_on_synthetic_inputs(pruned_vgg):
    _, _, res = pruned_vgg
    for name, e in res.report["layers"].items():
        assert e["error"] < e["magnitude_error"], name


def test_resnet_and_filter_blocks():
    cfg = PruneConfig(default=LayerRule(filter_block=4, library_size=4), rules={"layer4.*": None}, **FAST)
    res = prune(tiny("resnet18"), torch.randn(1, 3, 32, 32), cfg, progress=False)
    names = [lp.name for lp in res.plan.layers]
    assert names[0] == "layer1.0.conv1" and not any(n.startswith("layer4") for n in names)
    assert not any("downsample" in n for n in names)  # 1x1 convs stay dense
    _check_structure(res.model, res.plan)
    for lp in res.plan.layers:
        fp = lp.filter_patterns()
        assert (fp.reshape(-1, 4, fp.shape[1]) == fp.reshape(-1, 4, fp.shape[1])[:, :1]).all()


def test_deterministic_for_a_seed():
    cfg = PruneConfig(**FAST)
    a = prune(tiny(), torch.randn(1, 3, 32, 32), cfg, seed=3, progress=False)
    b = prune(tiny(), torch.randn(1, 3, 32, 32), cfg, seed=3, progress=False)
    for (k, v), (_, w) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(v, w), k
    assert json.dumps(a.plan.to_json()) == json.dumps(b.plan.to_json())


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_prune_reads_no_real_data(monkeypatch, tmp_path, quantize):
    import torch.utils.data as tud

    import spattern.data as sdata

    def forbidden(*a, **k):
        raise AssertionError("pruning touched a dataset or an image file")

    monkeypatch.setattr(tud.DataLoader, "__iter__", forbidden)
    monkeypatch.setattr(tud.Dataset, "__getitem__", forbidden)
    for name in ("digits", "shapes", "cifar10", "read_cifar10_bin", "load_task"):
        monkeypatch.setattr(sdata, name, forbidden)
    real_open = builtins.open
    image_ext = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".bin", ".npy", ".npz", ".pkl", ".pickle")

    def guarded_open(file, *a, **k):
        if str(file).lower().endswith(image_ext):
            raise AssertionError(f"pruning opened {file}")
        return real_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(Path, "read_bytes", lambda self: forbidden() if str(self).lower().endswith(image_ext)
                        else real_open(self, "rb").read())
    try:
        import PIL.Image

        monkeypatch.setattr(PIL.Image, "open", forbidden)
    except ImportError:
        pass
    res = prune(tiny(), torch.randn(1, 3, 32, 32), PruneConfig(**FAST, quantize=quantize, quantize_distill_steps=3),
                progress=False)
    assert res.plan.layers and (res.plan.quant is not None) == (quantize is not None)


def test_save_load_roundtrip(pruned_vgg, tmp_path):
    _, _, res = pruned_vgg
    folder = save_pruned(res, tmp_path / "out", model_info={"zoo": "vgg_small", "num_classes": 10,
                                                            "image_size": 32, "width": 0.25})
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.safetensors", "plan.json"]
    back = load_pruned(folder)
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(back.model(x), res.model(x))
    assert back.plan.to_json() == res.plan.to_json()
    with pytest.raises(Exception, match="architecture"):
        (folder / "model.json").write_text("{}")
        load_pruned(folder)
    assert load_pruned(folder, model=tiny()).plan.to_json() == res.plan.to_json()


def _plan_json(res) -> dict:
    return json.loads(json.dumps(res.plan.to_json()))


@pytest.mark.parametrize("case", ["other_model", "wrong_shape", "id_out_of_range", "nonzero_outside",
                                  "dup_library", "kept_shape"])
def test_plan_rejects_bad_cases(pruned_vgg, tmp_path, case):
    _, _, res = pruned_vgg
    d = _plan_json(res)
    layer = d["layers"][1]
    name = layer["name"]
    state = res.model.state_dict()
    if case == "other_model":
        with pytest.raises(PlanError, match=d["layers"][0]["name"]):
            PatternPlan.from_json(d).check_state_dict(tiny("resnet18").state_dict())
        with pytest.raises(PlanError, match=d["layers"][0]["name"]):  # same names, other widths
            PatternPlan.from_json(d).check_state_dict(build("vgg_small", 10, 32, 0.5).state_dict())
        return
    if case == "wrong_shape":
        layer["weight_shape"][0] += 1
        with pytest.raises(PlanError, match=name):
            PatternPlan.from_json(d)
        return
    if case == "id_out_of_range":
        layer["pattern"][0][0] = len(layer["library"])
        with pytest.raises(PlanError, match=name):
            PatternPlan.from_json(d)
        return
    if case == "dup_library":
        layer["library"][1] = layer["library"][0]
        with pytest.raises(PlanError, match=name):
            PatternPlan.from_json(d)
        return
    if case == "kept_shape":
        layer["kept"] = layer["kept"][:-1]
        with pytest.raises(PlanError, match=name):
            PatternPlan.from_json(d)
        return
    state = {k: v.clone() for k, v in state.items()}
    lp = res.plan.layer(name)
    outside = np.argwhere(~lp.mask())[0]
    state[f"{name}.weight"][tuple(outside)] = 1.0
    with pytest.raises(PlanError, match=name):
        res.plan.check_state_dict(state)
    # the same through save/load: a tampered weight file is rejected on load
    from safetensors.torch import save_file

    folder = save_pruned(res, tmp_path / "bad", model_info={"zoo": "vgg_small", "num_classes": 10,
                                                            "image_size": 32, "width": 0.25})
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
    with pytest.raises(PlanError, match=name):
        load_pruned(folder)


def test_finetune_keeps_zeros(pruned_vgg):
    from spattern.data import Batches

    _, _, res = pruned_vgg
    import copy

    model = copy.deepcopy(res.model)
    x, y = torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    finetune(model, res.plan, Batches(x, y, batch=16), epochs=2, lr=0.05)
    _check_structure(model, res.plan)
    changed = [k for k, v in model.state_dict().items() if k.endswith("weight") and not torch.equal(v, before[k])]
    assert changed  # it did train


def test_select_library_and_validation():
    w = torch.zeros(4, 4, 3, 3)
    target = patterns.candidate_id([1, 3, 4, 5])
    w.view(4, 4, 9)[:, :, list(patterns.CANDIDATES[target])] = 1.0
    assert target in select_library(w, 1)
    lib = select_library(tiny(), 8)
    assert len(lib) == 8 and len(set(lib)) == 8 and all(0 <= c < 56 for c in lib)
    assert select_library(tiny(), 56) == list(range(56))
    assert validate_library([[1, 3, 4, 5], 0]) == [target, 0]
    for bad in ([], [56], [0, 0], [[0, 1, 2, 3]], ["x"]):
        with pytest.raises(ConfigError):
            validate_library(bad)
    with pytest.raises(ConfigError):
        select_library(tiny(), 0)


def test_projection_connectivity_and_blocks():
    w = torch.randn(10, 6, 3, 3)
    s = project(w, select_library(w, 8), filter_block=4, connectivity=0.5)
    assert s.pattern.shape == (3, 6) and int(s.kept.sum()) == 9
    assert s.mask.shape == (10, 6, 9)
    assert (s.mask.sum(-1)[s.kept.repeat_interleave(4, 0)[:10]] == 4).all()


def test_config_yaml_and_errors(tmp_path):
    p = tmp_path / "prune.yaml"
    p.write_text('default: {connectivity: 0.5, filter_block: 1, library_size: 16}\n'
                 'rules:\n  "features.2*": null\n  "features.1*": {connectivity: 0.25, library: [[1,3,4,5], 7]}\n'
                 'exclude: ["features.7"]\nnum_samples: 64\n')
    cfg = PruneConfig.from_yaml(p)
    assert cfg.default.connectivity == 0.5 and cfg.default.library_size == 16 and cfg.num_samples == 64
    assert cfg.rules["features.2*"] is None and cfg.rules["features.1*"].library == [
        patterns.candidate_id([1, 3, 4, 5]), 7]
    assert cfg.rule_for("features.21", 64, True) is None
    assert cfg.rule_for("features.7", 64, True) is None
    assert cfg.rule_for("features.14", 64, True).connectivity == 0.25
    assert cfg.rule_for("features.0", 3, True) is None  # first conv dense by default
    assert cfg.rule_for("features.3", 64, False) is None  # not a pattern-able conv
    for text in ("default: {connectivity: 1.5}", "default: {filter_block: 0}", "default: {library_size: 57}",
                 "default: {colour: 1}", "bogus: 1", "rules: [1]", "default: {library: [99]}", "method: sgd",
                 "default: [", "exclude: features.1", "precision: float16"):
        p.write_text(text)
        with pytest.raises(ConfigError):
            PruneConfig.from_yaml(p)
    with pytest.raises(ConfigError):
        PruneConfig.from_yaml(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="matches no module"):
        prune(tiny(), torch.randn(1, 3, 32, 32), PruneConfig(rules={"nope.*": None}, **FAST), progress=False)
    with pytest.raises(ConfigError, match="cannot be pattern-pruned"):
        prune(tiny("resnet18"), torch.randn(1, 3, 32, 32),
              PruneConfig(rules={"layer2.0.downsample.0": LayerRule()}, **FAST), progress=False)


def test_model_without_batchnorm_warns():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    with pytest.warns(UserWarning, match="no BatchNorm"):
        res = prune(model, torch.randn(1, 3, 16, 16), PruneConfig(**FAST), progress=False)
    assert [lp.name for lp in res.plan.layers] == ["2"]
    _check_structure(res.model, res.plan)


def test_gaussian_and_magnitude_methods():
    for kw in (dict(synthetic="gaussian"), dict(method="magnitude"), dict(method="refit")):
        res = prune(tiny(), torch.randn(1, 3, 32, 32), PruneConfig(**{**FAST, **kw}), progress=False)
        # Gaussian noise leaves many channels dead, whose kept weights refit to exactly zero
        _check_structure(res.model, res.plan, min_exact=0.0 if "synthetic" in kw else 0.85)


def _bn_mismatch(model: nn.Module, images: torch.Tensor) -> float:
    """Sum over BatchNorm layers of the relative distance between batch and running statistics (float32)."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    seen: list[float] = []
    hooks = [m.register_forward_hook(lambda mod, i, o: seen.append(
        float((i[0].mean((0, 2, 3)) - mod.running_mean).norm() / mod.running_mean.norm().clamp_min(1e-3)
              + (i[0].var((0, 2, 3), unbiased=False) - mod.running_var).norm() / mod.running_var.norm())))
             for m in bns]
    with torch.no_grad():
        model.eval()(images)
    for h in hooks:
        h.remove()
    return sum(seen)


@pytest.mark.skipif(not native_bfloat16(), reason="bfloat16 is emulated on this CPU (slow, never auto-selected)")
def test_bfloat16_network_passes():
    """bfloat16 synthesis and distillation: images as well matched to the BatchNorm statistics (measured in
    float32) as float32 ones, cached apart from them, and a pruned model that is float32 with its structure."""
    model = tiny()
    # BatchNorm statistics of a data distribution (smooth, biased images), not the identity ones of a fresh model
    recalibrate_bn(model, 0.5 * pink_noise((3, 32, 32), 64, seed=5) + torch.tensor([0.4, -0.2, 0.1])[:, None, None])
    imgs = {p: bn_matched_inputs(model, (3, 32, 32), n=32, steps=40, seed=0, precision=p)
            for p in ("float32", "bfloat16")}
    assert not torch.equal(imgs["float32"], imgs["bfloat16"])
    start = _bn_mismatch(model, gaussian_inputs((3, 32, 32), 32, 0))
    err = {p: _bn_mismatch(model, x) for p, x in imgs.items()}
    assert err["float32"] < 0.5 * start and err["bfloat16"] < 0.5 * start, (start, err)
    assert err["bfloat16"] < 1.5 * err["float32"] + 0.05 * start, err
    res = prune(model, torch.randn(1, 3, 32, 32), PruneConfig(precision="bfloat16", **FAST), progress=False)
    assert res.report["config"]["precision"] == "bfloat16"
    assert all(v.dtype == torch.float32 for v in res.model.state_dict().values() if v.is_floating_point())
    _check_structure(res.model, res.plan)
    assert resolve_precision("auto") == "bfloat16"
