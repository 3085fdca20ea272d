"""Wall time of `spattern.prune` with the DEFAULT PruneConfig, per stage, beside the estimate prune() prints first.

Issue 22: pruning with the defaults should take minutes. Targets (2 quiet cores, float32): vgg_small at 32 <= 30 s,
resnet18 at 32 <= 2 min, VGG-16-BN at 224 <= 8 min. Zoo models with seeded random weights and BatchNorm statistics
(spattern.models.build), 10 classes at 32, 1000 at 224; the synthetic-image cache is a fresh temporary folder, so
the synthesis is always timed.

    python bench/prune_defaults.py --models vgg_small@32,resnet18@32 --threads 2 --out results/prune-defaults.json
    python bench/prune_defaults.py --models vgg_small@32 --root /work/main --label before   # another checkout
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STAGES = ("synthesis", "layerwise", "recovery")


def time_one(spec: str, seed: int) -> dict[str, Any]:
    """Prune the zoo model `name@size` with PruneConfig() and return the measured and estimated stage seconds."""
    import torch

    from spattern.models import build
    from spattern.pruning import PruneConfig, prune
    from spattern.pruning.synthetic import synthesis_steps

    name, size = spec.split("@")
    classes = 1000 if int(size) >= 128 else 10
    model = build(name, num_classes=classes, image_size=int(size), seed=seed)
    cfg = PruneConfig()
    t0 = time.perf_counter()
    res = prune(model, torch.randn(1, 3, int(size), int(size)), cfg, seed=seed, progress=True)
    total = time.perf_counter() - t0
    est = res.report.get("estimate", {})
    return {"model": spec, "total_s": round(total, 1),
            "measured_s": {k: round(res.report["times"].get(k, 0.0), 1) for k in STAGES},
            "estimate_s": {k: round(est[k], 1) for k in (*STAGES, "total") if k in est},
            "synthesis_steps_ran": res.report.get("synthesis_steps"),
            "synthesis_steps_cap": synthesis_steps(cfg.num_samples, cfg.synth_steps),
            "precision": res.report["config"]["precision"],
            "synth_resolution": getattr(cfg, "synth_resolution", None)}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| label | model | synthesis s (est) | fit s (est) | distill s (est) | total s (est) | steps ran/cap |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        m, e = r["measured_s"], r["estimate_s"]
        cells = [f"{m[k]} ({e.get(k, '-')})" for k in STAGES]
        lines.append(f"| {r['label']} | {r['model']} | " + " | ".join(cells)
                     + f" | {r['total_s']} ({e.get('total', '-')}) | {r['synthesis_steps_ran']}/"
                       f"{r['synthesis_steps_cap']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="vgg_small@32,resnet18@32,vgg16_bn@224",
                    help="comma list of zoo-name@input-size")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[1]),
                    help="checkout whose spattern is timed (default: this one)")
    ap.add_argument("--label", default="after", help="the rows' label (e.g. before / after)")
    ap.add_argument("--out", default=None, help="JSON lines appended here (rows); a .txt table beside it")
    args = ap.parse_args()
    sys.path.insert(0, args.root)
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    for spec in args.models.split(","):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["SPATTERN_CACHE"] = cache  # a fresh cache: the synthesis is timed, never read back
            row = {"label": args.label, "threads": args.threads, **time_one(spec, args.seed)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    print(table(rows))
    if args.out:
        with open(args.out, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
