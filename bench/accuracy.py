"""Accuracy of data-free pattern pruning on real data nobody here wrote, and the time to prune VGG-16 at 224.

Rows: dense; magnitude projection; layer-wise refit (projection + least squares); ADMM; ADMM + recovery
(BN recalibration + distillation, each kept only if it helps on held-out synthetic data); after owner fine-tuning;
with --int8, int8 of the ADMM + recovery model (data-free, then after owner fine-tuning), run by the integer
reference.
Sweeps: Gaussian vs BN-matched inputs, library size k, filter_block, connectivity; tasks digits and shapes; models
vgg_small and resnet18 (narrow). Trained models and synthetic images are cached (~/.cache/spattern).

    python bench/accuracy.py --quick --out results.json          # digits + shapes, vgg_small, main rows
    python bench/accuracy.py --out results.json                   # everything (long)
    python bench/accuracy.py --vgg16-timing --out timing.json     # VGG-16 224 wall time per stage
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spattern import data  # noqa: E402
from spattern.fileio import atomic_write_text  # noqa: E402
from spattern.pruning import LayerRule, PruneConfig, finetune, prune  # noqa: E402
from spattern.pruning.precision import PRECISIONS  # noqa: E402
from spattern.pruning.qgraph import build_graph  # noqa: E402
from spattern.pruning.qreference import IntegerReference  # noqa: E402
from spattern.pruning.quantize import FakeQuantModel, finetune_int8, quantize  # noqa: E402
from spattern.pruning.synthetic import bn_matched_inputs, gaussian_inputs, synthesis_steps  # noqa: E402
from spattern.training import accuracy, trained_model  # noqa: E402


def run_setting(model: torch.nn.Module, images: torch.Tensor, test: tuple[torch.Tensor, torch.Tensor],
                rule: LayerRule, method: str, distill_steps: int, seed: int, extra: dict[str, Any]) -> dict[str, Any]:
    cfg = PruneConfig(default=rule, method=method, distill_steps=distill_steps, num_samples=images.shape[0],
                      recalibrate_bn=distill_steps > 0, **extra)
    t0 = time.perf_counter()
    res = prune(model, torch.zeros(1, 3, 32, 32), cfg, seed=seed, progress=False, images=images)
    wall = time.perf_counter() - t0
    return {"acc": accuracy(res.model, *test), "wall_s": wall, "report_times": res.report["times"],
            "recovery": {k: res.report.get(k) for k in ("bn_recalibration", "distillation")},
            "kl_after_layerwise": res.report.get("kl_after_layerwise"), "_result": res}


def parse_setting(text: str) -> LayerRule:
    """'k16-fb8-c0.5' (any subset, any order) -> LayerRule(library_size=16, filter_block=8, connectivity=0.5)."""
    kw: dict[str, Any] = {}
    for part in text.split("-"):
        if part.startswith("fb"):
            kw["filter_block"] = int(part[2:])
        elif part.startswith("k"):
            kw["library_size"] = int(part[1:])
        elif part.startswith("c"):
            kw["connectivity"] = float(part[1:])
        else:
            raise SystemExit(f"bad sweep setting {text!r}: use e.g. k16-fb8-c0.5")
    return LayerRule(**kw)


def bench_model(name: str, task: str, quick: bool, seed: int, ft_epochs: int, log: Any, ft_lr: float | None = None,
                stages: set[str] | None = None, sweeps_only: bool = False, gaussian_rows: bool = True,
                sweep_settings: list[str] | None = None, precision: str = "float32", int8_steps: int | None = None
                ) -> list[dict[str, Any]]:
    """stages: the main-row stages to run (None: all of magnitude, refit, admm, admm+distill; "finetuned" always
    follows admm+distill). sweeps_only: skip the main rows and run the k / filter_block sweeps only."""
    torch.manual_seed(seed)
    model = trained_model(name, task, seed=seed, progress=False)
    (xtr, ytr), test = data.load_task(task)
    dense = accuracy(model, *test)
    rows: list[dict[str, Any]] = []
    syn = {"n": PruneConfig().num_samples, "steps": PruneConfig().synth_steps}  # the defaults: steps is the cap
    ran: dict[str, int] = {}

    def count(done: int, total: int) -> None:
        ran["done"] = done  # the plateau stop shrinks total to done on the last call

    t0 = time.perf_counter()
    bn_imgs = bn_matched_inputs(model, (3, 32, 32), n=syn["n"], steps=syn["steps"], seed=seed, precision=precision,
                                on_step=count)
    t_syn = time.perf_counter() - t0
    inputs = {"bn": bn_imgs, "gaussian": gaussian_inputs((3, 32, 32), syn["n"], seed)}

    def add(**kw: Any) -> dict[str, Any]:
        row = {"model": name, "task": task, "dense": dense, **kw}
        row["drop"] = dense - row["acc"]
        rows.append(row)
        log(row)
        return row

    add(stage="dense", acc=dense, synthesis_s=t_syn, precision=precision, synthesis_steps_ran=ran.get("done"),
        synthesis_steps_cap=synthesis_steps(syn["n"], syn["steps"]))
    base = LayerRule()
    configs: list[tuple[str, LayerRule]] = [("patterns", base), ("conn0.5", LayerRule(connectivity=0.5))]
    for label, rule in (configs if not sweeps_only else []):
        for method, dsteps, stage in (("magnitude", 0, "magnitude"), ("refit", 0, "refit"), ("admm", 0, "admm"),
                                      ("admm", 200, "admm+distill")):
            if stages is not None and stage not in stages:
                continue
            for src in (["bn", "gaussian"] if stage in ("refit", "admm+distill") and label == "patterns"
                        and gaussian_rows else ["bn"]):
                r = run_setting(model, inputs[src], test, rule, method, dsteps, seed, {"precision": precision})
                res = r.pop("_result")
                add(stage=stage, setting=label, inputs=src, k=rule.library_size, filter_block=rule.filter_block,
                    connectivity=rule.connectivity, **r)
                if stage == "admm+distill" and src == "bn" and int8_steps is not None:
                    int8_rows(res, model, inputs["bn"], (xtr, ytr), test, task, seed, int8_steps, ft_epochs, add,
                              dict(setting=label, inputs=src, k=rule.library_size, filter_block=rule.filter_block,
                                   connectivity=rule.connectivity))
                if stage == "admm+distill" and src == "bn":
                    ft = copy.deepcopy(res.model)
                    t1 = time.perf_counter()
                    lr_kw = {} if ft_lr is None else {"lr": ft_lr}  # None: finetune's own default
                    finetune(ft, res.plan, data.Batches(xtr, ytr, batch=128, seed=seed, shift=2,
                                                        flip=task == "shapes"), epochs=ft_epochs, **lr_kw)
                    add(stage="finetuned", setting=label, inputs=src, k=rule.library_size,
                        filter_block=rule.filter_block, connectivity=rule.connectivity,
                        acc=accuracy(ft, *test), wall_s=time.perf_counter() - t1, epochs=ft_epochs,
                        lr=ft_lr if ft_lr is not None else "default")
    sweeps: list[LayerRule] = []
    if sweep_settings is not None:
        sweeps = [parse_setting(x) for x in sweep_settings]
    elif not quick or sweeps_only:
        sweeps += [LayerRule(library_size=k, connectivity=c) for k in (16, 56) for c in (0.0, 0.5)]
        sweeps += [LayerRule(filter_block=fb, connectivity=c) for fb in (8, 64) for c in (0.0, 0.5)]
    for rule in sweeps:
        r = run_setting(model, inputs["bn"], test, rule, "admm", 200, seed, {"precision": precision})
        r.pop("_result")
        add(stage="admm+distill", setting=f"k{rule.library_size}-fb{rule.filter_block}-c{rule.connectivity}",
            inputs="bn", k=rule.library_size, filter_block=rule.filter_block, connectivity=rule.connectivity, **r)
    return rows


def int8_rows(res: Any, dense: torch.nn.Module, images: torch.Tensor, train: tuple[torch.Tensor, torch.Tensor],
              test: tuple[torch.Tensor, torch.Tensor], task: str, seed: int, steps: int, ft_epochs: int, add: Any,
              tags: dict[str, Any]) -> None:
    """int8 rows for a pruned model: data-free (calibration + fake-quant distillation on the synthetic images),
    then after the owner's quantization-aware fine-tuning; accuracy of the integer reference (qreference.py)."""
    model, plan = copy.deepcopy(res.model), copy.deepcopy(res.plan)
    t0 = time.perf_counter()
    plan.quant, rep = quantize(model, dense, images, plan, steps=steps, seed=seed)
    wall = time.perf_counter() - t0
    add(stage="int8", acc=accuracy(IntegerReference(model, plan.quant), *test), wall_s=wall, int8_steps=steps,
        fake_quant_acc=accuracy(FakeQuantModel(build_graph(model, images[:1]),
                                               {n.name: n.out for n in plan.quant.nodes}), *test),
        recovery=rep.get("distillation"), fallbacks=len(rep["fallbacks"]), **tags)
    if ft_epochs > 0:
        t1 = time.perf_counter()
        finetune_int8(model, plan, data.Batches(*train, batch=128, seed=seed, shift=2, flip=task == "shapes"),
                      epochs=ft_epochs)
        add(stage="int8+finetuned", acc=accuracy(IntegerReference(model, plan.quant), *test),
            wall_s=time.perf_counter() - t1, epochs=ft_epochs, **tags)


def vgg16_timing(log: Any, samples: int, steps: int, resolution: int | None, precision: str) -> dict[str, Any]:
    """Wall time of each stage of prune() for VGG-16-BN at 224 with random weights."""
    from spattern.models import build

    model = build("vgg16_bn", num_classes=1000, image_size=224, seed=0)
    cfg = PruneConfig(num_samples=samples, synth_steps=steps, synth_resolution=resolution, positions=8192,
                      admm_iters=24, distill_steps=50, precision=precision)
    t0 = time.perf_counter()
    res = prune(model, torch.randn(1, 3, 224, 224), cfg, progress=True)
    total = time.perf_counter() - t0
    est = res.report.get("estimate", {})
    # each stage's measured time beside the estimate prune() printed before it ran
    log({"stage_s_measured_vs_estimated": {k: (round(v, 1), round(est[k], 1) if k in est else None)
                                          for k, v in {**res.report["times"], "total": total}.items()}})
    out = {"model": "vgg16_bn@224", "total_s": total, "times": res.report["times"], "estimate": est,
           "samples": samples, "synth_steps": steps, "synth_resolution": resolution, "precision": precision,
           "layers": {k: {kk: round(vv, 4) for kk, vv in v.items()} for k, v in res.report["layers"].items()}}
    log(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="main rows only (no k / filter_block sweeps), fewer "
                    "synthetic images")
    ap.add_argument("--models", default="vgg_small,resnet18")
    ap.add_argument("--tasks", default="digits,shapes")
    ap.add_argument("--ft-epochs", type=int, default=8)
    ap.add_argument("--ft-lr", type=float, default=None, help="fine-tuning learning rate (default: finetune's)")
    ap.add_argument("--stages", default=None, help="comma list of main-row stages to run (magnitude, refit, admm, "
                    "admm+distill); default all")
    ap.add_argument("--no-gaussian", action="store_true", help="skip the Gaussian-input baseline rows")
    ap.add_argument("--sweeps-only", action="store_true", help="only the library-size / filter_block sweeps "
                    "(k 16, 56 and filter_block 8, 64, each at connectivity 0 and 0.5; k8-fb1 is the main row)")
    ap.add_argument("--sweeps", default=None, help="comma list of sweep settings replacing the default sweep, "
                    "e.g. k16-c0,k56-c0,fb8-c0.5 (k library size, fb filter_block, c connectivity)")
    ap.add_argument("--precision", default="float32", choices=PRECISIONS,
                    help="network passes of synthesis and distillation (PruneConfig.precision)")
    ap.add_argument("--int8", type=int, default=None, metavar="STEPS",
                    help="add int8 rows after ADMM + distillation (patterns setting): data-free int8 (STEPS of "
                    "fake-quant distillation on the synthetic images) and after owner fine-tuning (--ft-epochs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vgg16-timing", action="store_true", help="only time pruning VGG-16-BN at 224")
    ap.add_argument("--vgg16-samples", type=int, default=64)
    ap.add_argument("--vgg16-steps", type=int, default=40)
    ap.add_argument("--vgg16-resolution", type=int, default=112)
    ap.add_argument("--out", type=Path, default=Path("bench/accuracy_results.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {"rows": [], "args": {k: str(v) for k, v in vars(args).items()}}

    def log(row: dict[str, Any]) -> None:
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()
                          if k not in ("layers", "report_times")}), flush=True)

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps(results, indent=1, default=str))

    if args.vgg16_timing:
        results["vgg16"] = vgg16_timing(log, args.vgg16_samples, args.vgg16_steps, args.vgg16_resolution,
                                        args.precision)
        save()
        return
    for task in args.tasks.split(","):
        for name in args.models.split(","):
            results["rows"] += bench_model(name, task, args.quick, args.seed, args.ft_epochs, log, ft_lr=args.ft_lr,
                                           stages=set(args.stages.split(",")) if args.stages else None,
                                           sweeps_only=args.sweeps_only, gaussian_rows=not args.no_gaussian,
                                           sweep_settings=args.sweeps.split(",") if args.sweeps else None,
                                           precision=args.precision, int8_steps=args.int8)
            save()
    save()


if __name__ == "__main__":
    main()
