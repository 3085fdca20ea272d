"""prune(): data-free pattern + connectivity pruning of a trained CNN, stage by stage.

Stages: (1) synthetic images (BatchNorm-matched, cached per model); (2) per layer, in execution order: record the
conv's input on the pruned-so-far network and its target on the dense network at sampled positions, ADMM for the
structure, exact refit of the kept weights; (3) BatchNorm recalibration and distillation towards the dense model
on synthetic images, each kept only if it helps on held-out synthetic images; (4) with `quantize: int8`, int8
calibration and recovery on the same images (quantize.py). No dataset is taken, no file read (except the
synthetic-image cache).
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from ..errors import ConfigError, ModelLoadError, PlanError
from ..fileio import atomic_write_bytes, atomic_write_text
from .admm import LayerStats, StatsAccumulator, _full_weight, _importance, admm, patches, refit, sample_positions, \
    structure_of
from .apply import Target, layer_plan, select_targets
from .config import PruneConfig
from .distill import distill, divergence, enforce_masks, keep_if_better, logits_of, recalibrate_bn
from .library import select_library
from ..plan import PatternPlan
from .precision import channels_last, resolve_precision
from .progress import Progress, estimate_prune_seconds, format_seconds, layerwise_flops, matmul_flops_per_second
from .synthetic import SYNTH_BATCH, bn_matched_inputs, gaussian_inputs, synthesis_steps

MODEL_FILE = "model.safetensors"
INFO_FILE = "model.json"


@dataclass
class PruneResult:
    """model: pruned copy (zeros in place); plan: its PatternPlan; report: stage times, per-layer errors, ..."""

    model: nn.Module
    plan: PatternPlan
    report: dict[str, Any] = field(default_factory=dict)


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the layer of interest has been seen."""


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for a in range(0, n, size):
        yield a, min(n, a + size)


def _batch_size(images: torch.Tensor) -> int:
    return max(1, int(64 * (32 * 32) / (images.shape[-1] * images.shape[-2])))


def _example_tensor(example_input: Any) -> torch.Tensor:
    if isinstance(example_input, (tuple, list)) and len(example_input) == 1:
        example_input = example_input[0]
    if not isinstance(example_input, torch.Tensor) or example_input.dim() != 4:
        raise ConfigError("example_input must be one image batch tensor [N, C, H, W] (e.g. torch.randn(1, 3, 32, 32))")
    return example_input


def check_finite_weights(model: nn.Module) -> None:
    """Refuse a model with a NaN or infinite weight (or BatchNorm statistic) before any work: it would reach
    the layer-wise solver as a Gram matrix that is not positive definite, and fail there with no name."""
    bad = []
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            n_nan, n_inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
            what = " and ".join(f"{n} {kind}" for n, kind in ((n_nan, "NaN"), (n_inf, "inf")) if n)
            bad.append(f"{name} ({what} of {t.numel()} values)")
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise ModelLoadError(f"the model has non-finite weights: {', '.join(bad[:3])}{more}; pruning needs a model "
                             "with finite weights (check the checkpoint, or the training run that wrote it)")


def _dense_targets(dense: nn.Module, targets: list[Target], images: torch.Tensor, positions: dict[str, torch.Tensor]
                   ) -> dict[str, torch.Tensor]:
    """Dense conv outputs [P, F] at each layer's sampled positions, in one pass over the images."""
    modules = dict(dense.named_modules())
    store: dict[str, list[torch.Tensor]] = {t.name: [] for t in targets}
    offset = [0]
    bounds = [0]

    def hook(name: str):
        def fn(mod: nn.Module, inp: Any, out: torch.Tensor) -> None:
            pos = positions[name]
            sel = (pos[:, 0] >= offset[0]) & (pos[:, 0] < bounds[0])
            p = pos[sel]
            store[name].append(out[p[:, 0] - offset[0], :, p[:, 1], p[:, 2]].detach())
        return fn

    handles = [modules[t.name].register_forward_hook(hook(t.name)) for t in targets]
    try:
        with torch.no_grad():
            for a, b in _chunks(images.shape[0], _batch_size(images)):
                offset[0], bounds[0] = a, b
                dense(channels_last(images[a:b]))
    finally:
        for h in handles:
            h.remove()
    return {k: torch.cat(v) for k, v in store.items()}


def _layer_stats(pruned: nn.Module, conv: nn.Conv2d, images: torch.Tensor, pos: torch.Tensor, y: torch.Tensor
                 ) -> LayerStats:
    """H and B of `conv` with its input taken from the pruned-so-far network."""
    acc = StatsAccumulator(conv.in_channels * 9, conv.out_channels, conv.bias is not None)
    state = {"a": 0, "b": 0}

    def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...]) -> None:
        sel = (pos[:, 0] >= state["a"]) & (pos[:, 0] < state["b"])
        p = pos[sel].clone()
        p[:, 0] -= state["a"]
        acc.add(patches(inp[0].detach(), conv, p), y[sel])
        raise _Stop

    h = conv.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            for a, b in _chunks(images.shape[0], _batch_size(images)):
                state["a"], state["b"] = a, b
                try:
                    pruned(channels_last(images[a:b]))
                except _Stop:
                    pass
    finally:
        h.remove()
    return acc.finish()


def _set_weight(conv: nn.Conv2d, w: torch.Tensor, mask: torch.Tensor) -> None:
    c = conv.in_channels
    with torch.no_grad():
        conv.weight.copy_((w[:, : c * 9] * mask.reshape(w.shape[0], -1)).reshape(conv.weight.shape).to(conv.weight.dtype))
        if conv.bias is not None:
            conv.bias.copy_(w[:, c * 9].to(conv.bias.dtype))


def _drop_zero_kernels(conv: nn.Conv2d, s: Any, filter_block: int) -> None:
    """Mark (block, channel) kernel sets whose refitted weights are all exactly zero (dead input channels) as
    removed: the plan then says what the weights say, and the compiler skips them."""
    w = conv.weight.detach().reshape(conv.out_channels, conv.in_channels, 9)
    nz = (w != 0).any(-1)  # [F, C]
    nb = s.kept.shape[0]
    pad = nb * filter_block - nz.shape[0]
    if pad:
        nz = torch.cat([nz, nz.new_zeros(pad, nz.shape[1])])
    alive = nz.reshape(nb, filter_block, -1).any(1)
    s.kept &= alive
    s.mask &= s.kept.repeat_interleave(filter_block, 0)[: conv.out_channels, :, None]


def _synthesise(dense: nn.Module, shape: tuple[int, int, int], cfg: PruneConfig, seed: int, on_step: Any
                ) -> torch.Tensor:
    if cfg.synthetic == "gaussian":
        return gaussian_inputs(shape, cfg.num_samples, seed)
    return bn_matched_inputs(dense, shape, n=cfg.num_samples, steps=cfg.synth_steps, seed=seed,
                             precision=cfg.precision, on_step=on_step)


def _probe_step_seconds(dense: nn.Module, shape: tuple[int, int, int], batch: int) -> float:
    """One forward and backward pass over a batch, timed (the unit of the estimate when synthesis is cached)."""
    x = torch.randn(batch, *shape, requires_grad=True)
    t0 = time.perf_counter()
    dense(channels_last(x)).float().sum().backward()
    return time.perf_counter() - t0


class _Estimate:
    """Times the first synthesis steps, then prints (once) the estimate of every stage and the total."""

    first_steps = 3

    def __init__(self, prog: Progress, dense: nn.Module, targets: list[Target], cfg: PruneConfig,
                 report: dict[str, Any]):
        self.prog, self.dense, self.targets, self.cfg, self.report = prog, dense, targets, cfg, report
        self.t0 = time.perf_counter()
        self.done = False

    def wrap(self, on_step: Any) -> Any:
        started: dict[int, float] = {}

        def step(done: int, total: int) -> None:
            on_step(done, total)
            self.report["synthesis_steps"] = done  # what ran: the plateau stop usually ends before the cap
            if self.done or done >= total:
                return
            if done == 1:  # the first step carries warm-up (allocations, kernels chosen): time the ones after it
                started[1] = time.perf_counter()
            elif 1 in started and done >= 1 + self.first_steps:
                self.emit((time.perf_counter() - started[1]) / (done - 1))
        return step

    def emit(self, step_s: float) -> None:
        self.done = True
        cfg = self.cfg
        layers = [(t.conv.in_channels, t.conv.out_channels) for t in self.targets]
        est = estimate_prune_seconds(
            step_s, synthesis_steps(cfg.num_samples, cfg.synth_steps) if cfg.synthetic == "bn" else 0,
            cfg.distill_steps, len(layers), math.ceil(cfg.num_samples / SYNTH_BATCH),
            layerwise_flops(layers, cfg.positions, cfg.admm_iters), matmul_flops_per_second())
        est["total"] = sum(est.values())
        self.report["estimate"] = est
        # the synthesis figure is its cap: the plateau stop usually ends each batch earlier
        self.prog.note(f"estimate (from {step_s:.2f} s per synthesis step): synthesis at most "
                       f"{format_seconds(est['synthesis'])}, layer-wise {format_seconds(est['layerwise'])}, "
                       f"recovery {format_seconds(est['recovery'])}; total about {format_seconds(est['total'])} "
                       "(--quick is shorter)")


def prune(model: nn.Module, example_input: Any, config: PruneConfig | None = None, seed: int = 0,
          progress: bool = True, images: torch.Tensor | None = None) -> PruneResult:
    """Data-free pattern + connectivity pruning. The input model is not modified.

    model: a trained CNN (eval-mode BatchNorm statistics are what the synthetic images match).
    example_input: one input batch [N, C, H, W] (only its shape is used, plus one forward pass to find layers).
    config: which layers and how (PruneConfig); default: every 3x3 groups=1 conv except the first, per-kernel
      patterns from an 8-pattern library per layer, no connectivity pruning.
    images: precomputed synthetic images (benchmarks reuse them); None synthesises (cached per model).
    Returns PruneResult(model=pruned copy, plan=PatternPlan, report=dict)."""
    cfg = config if config is not None else PruneConfig()
    if not isinstance(cfg, PruneConfig):
        raise ConfigError(f"config must be a PruneConfig (or None), got {type(cfg).__name__}")
    example = _example_tensor(example_input)
    check_finite_weights(model)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dense = copy.deepcopy(model).eval()
    for p in dense.parameters():
        p.requires_grad_(False)
    pruned = copy.deepcopy(model).eval()
    targets = select_targets(dense, example, cfg)
    pruned_modules = dict(pruned.named_modules())
    report: dict[str, Any] = {"times": {}, "layers": {}, "config": {"method": cfg.method, "synthetic": cfg.synthetic,
                                                                  "precision": resolve_precision(cfg.precision)}}
    layers = []
    _, c_in, h_in, w_in = example.shape
    h_in, w_in = cfg.synthesis_size(h_in, w_in)
    with Progress(progress) as prog:
        t0 = time.perf_counter()
        need_data = cfg.method != "magnitude" or cfg.distill_steps > 0 or cfg.quantize is not None
        estimate = _Estimate(prog, dense, targets, cfg, report)
        if images is None and need_data and (targets or cfg.quantize is not None):
            steps = synthesis_steps(cfg.num_samples, cfg.synth_steps)
            images = _synthesise(dense, (c_in, h_in, w_in), cfg, seed,
                                 estimate.wrap(prog.task("synthetic images", steps)))
        report["times"]["synthesis"] = time.perf_counter() - t0
        if progress and not estimate.done and targets and images is not None and cfg.method != "magnitude":
            # synthesis was cached or given: one timed step of the same size stands in for its first steps
            estimate.emit(_probe_step_seconds(dense, (c_in, h_in, w_in), min(SYNTH_BATCH, cfg.num_samples)))

        t0 = time.perf_counter()
        positions: dict[str, torch.Tensor] = {}
        ys: dict[str, torch.Tensor] = {}
        if images is not None and targets:
            shapes: dict[str, tuple[int, int]] = {}
            hs = [dense_mod.register_forward_hook(lambda m, i, o, n=t.name: shapes.__setitem__(n, tuple(o.shape[2:])))
                  for t in targets for dense_mod in [dict(dense.named_modules())[t.name]]]
            with torch.no_grad():
                dense(images[:1])
            for h in hs:
                h.remove()
            for t in targets:
                positions[t.name] = sample_positions(images.shape[0], *shapes[t.name], cfg.positions, gen)
            ys = _dense_targets(dense, targets, images, positions)
        layer_task = prog.task(f"layer-wise {cfg.method}", len(targets), unit="layers")
        for i, t in enumerate(targets):
            conv = pruned_modules[t.name]
            library = t.rule.library or select_library(t.conv.weight, t.rule.library_size)
            w0 = _full_weight(t.conv)
            c = conv.in_channels
            entry: dict[str, Any] = {}
            if cfg.method == "magnitude" or images is None:
                s = structure_of(w0, c, library, t.rule.filter_block, t.rule.connectivity, None)
                w = w0 * torch.cat([s.mask.reshape(w0.shape[0], -1),
                                    torch.ones(w0.shape[0], w0.shape[1] - c * 9, dtype=torch.bool)], 1)
            else:
                stats = _layer_stats(pruned, conv, images, positions[t.name], ys[t.name])
                imp = _importance(stats, c)
                smag = structure_of(w0, c, library, t.rule.filter_block, t.rule.connectivity, None)
                wmag = w0.clone()
                wmag[:, : c * 9] *= smag.mask.reshape(w0.shape[0], -1)
                entry["dense_error"] = stats.error(w0)
                entry["magnitude_error"] = stats.error(wmag)
                if cfg.method == "admm":
                    s = admm(stats, w0, c, library, t.rule.filter_block, t.rule.connectivity, iters=cfg.admm_iters)
                else:
                    s = structure_of(w0, c, library, t.rule.filter_block, t.rule.connectivity, imp)
                w = refit(stats, s.mask, w0)
                entry["error"] = stats.error(w)
            _set_weight(conv, w, s.mask)
            _drop_zero_kernels(conv, s, t.rule.filter_block)
            layers.append(layer_plan(t.name, conv, t.rule.filter_block, library, s))
            entry["kept_fraction"] = float(s.kept.float().mean())
            report["layers"][t.name] = entry
            layer_task(i + 1)
        report["times"]["layerwise"] = time.perf_counter() - t0

        plan = PatternPlan(layers=layers, model_name=getattr(model, "spattern_info", {}).get("zoo"))
        t0 = time.perf_counter()
        if images is not None and targets and cfg.method != "magnitude":
            n_hold = max(1, images.shape[0] // 8)
            train_imgs, hold = images[:-n_hold], images[-n_hold:]
            hold_logits = logits_of(dense, hold)
            masks = {pruned_modules[lp.name]: torch.from_numpy(lp.mask()).to(pruned_modules[lp.name].weight.dtype)
                     for lp in plan.layers}
            score = lambda: divergence(pruned, hold_logits, hold)  # noqa: E731
            report["kl_after_layerwise"] = score()
            if cfg.recalibrate_bn:
                kept, before, after = keep_if_better(pruned, lambda: recalibrate_bn(pruned, train_imgs), score)
                report["bn_recalibration"] = {"kept": kept, "kl_before": before, "kl_after": after}
            if cfg.distill_steps > 0 and train_imgs.shape[0] > 0:
                task = prog.task("distillation", cfg.distill_steps)
                kept, before, after = keep_if_better(
                    pruned, lambda: distill(pruned, dense, train_imgs, masks, steps=cfg.distill_steps, seed=seed,
                                            precision=cfg.precision,
                                            on_step=task), score)
                report["distillation"] = {"kept": kept, "kl_before": before, "kl_after": after}
            enforce_masks(masks)
        report["times"]["recovery"] = time.perf_counter() - t0
        if cfg.quantize is not None and images is not None:
            from .quantize import quantize

            t0 = time.perf_counter()
            task = prog.task(f"{cfg.quantize} recovery", max(1, cfg.quantize_distill_steps))
            plan.quant, report["quantization"] = quantize(pruned, dense, images, plan,
                                                          steps=cfg.quantize_distill_steps, seed=seed,
                                                          precision=cfg.precision, on_step=task)
            report["times"]["quantization"] = time.perf_counter() - t0
    pruned.eval()
    plan.check_state_dict(pruned.state_dict())
    return PruneResult(model=pruned, plan=plan, report=report)


def save_pruned(result: PruneResult, folder: str | Path, model_info: dict[str, Any] | None = None) -> Path:
    """Write plan.json, model.safetensors and model.json (zoo name, num_classes, image_size, width if known) into
    `folder`, atomically (a failure leaves no half-written folder)."""
    from safetensors.torch import save

    from ..fileio import atomic_directory

    info = dict(getattr(result.model, "spattern_info", {}) or {})
    info.update(model_info or {})
    folder = Path(folder)
    state = {k: v.detach().cpu().contiguous() for k, v in result.model.state_dict().items()}
    with atomic_directory(folder) as tmp:
        result.plan.save(tmp)
        atomic_write_bytes(tmp / MODEL_FILE, save(state))
        atomic_write_text(tmp / INFO_FILE, json.dumps({"format": "spattern.PrunedModel", "version": 1, **info},
                                                      indent=1))
    return folder


def _model_from_source(folder: Path, source_text: str) -> nn.Module:
    """The architecture a pruned folder names as `/abs/path/model.py:Name` (the user's own file, imported again)."""
    from ..usermodel import ModelSource, build_model_from_source

    file, _, name = source_text.rpartition(":")
    source = ModelSource(Path(file), name)
    if not source.file.is_file():
        raise ModelLoadError(f"{folder} was pruned from {source}, and that file is gone; pass the model: "
                             "load_pruned(folder, model=...), or put the file back")
    return build_model_from_source(source)


def load_pruned(folder: str | Path, model: nn.Module | None = None) -> PruneResult:
    """Load a folder written by save_pruned. The architecture comes from `model` (weights are replaced, in a copy),
    from model.json's zoo entry, or from its source entry (the user's `model.py:Name`, imported again); the
    weights are checked against the plan (PlanError on any mismatch)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    plan = PatternPlan.load(folder)
    wpath = folder / MODEL_FILE
    if not wpath.is_file():
        raise ModelLoadError(f"no {MODEL_FILE} in {folder}; was it written by spattern.pruning.save_pruned?")
    try:
        state = load_file(str(wpath))
    except Exception as e:
        raise ModelLoadError(f"{wpath} is not a readable safetensors file: {e}") from None
    plan.check_state_dict(state)
    info: dict[str, Any] = {}
    if (folder / INFO_FILE).is_file():
        try:
            info = json.loads((folder / INFO_FILE).read_text())
        except json.JSONDecodeError as e:
            raise ModelLoadError(f"{folder / INFO_FILE} is not valid JSON: {e}") from None
    if model is None and "source" in info:
        model = _model_from_source(folder, str(info["source"]))
    elif model is None:
        if "zoo" not in info:
            raise ModelLoadError(f"{folder} does not say which architecture it holds (no 'zoo' or 'source' in "
                                 f"{INFO_FILE}); pass the model: load_pruned(folder, model=...)")
        from ..models import build

        model = build(info["zoo"], num_classes=int(info.get("num_classes", 1000)),
                      image_size=int(info.get("image_size", 224)), width=float(info.get("width", 1.0)), seed=None)
    else:
        model = copy.deepcopy(model)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise PlanError(f"the saved weights do not fit the model: {e}") from None
    model.spattern_info = {k: v for k, v in info.items() if k not in ("format", "version")}  # type: ignore[assignment]
    return PruneResult(model=model.eval(), plan=plan, report={"loaded_from": str(folder)})
