"""`spattern demo`: the main job end to end on a small built-in example."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from . import api, models


def _median_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def run_demo(fast: bool = False, console: Console | None = None) -> dict[str, float]:
    console = console or Console()
    torch.manual_seed(0)
    model = models.build("vgg_small", num_classes=10, image_size=32, width=0.5 if fast else 1.0)
    x = torch.randn(1, 3, 32, 32)
    with console.status("export + compile (dense, host)..."):
        compiled = api.compile(model, x, target="host")
    got = compiled.run(x.numpy())[0]
    with torch.no_grad():
        ref = model(x).numpy()
    err = float(np.abs(got - ref).max())
    repeat = 5 if fast else 30
    t_iree = _median_ms(lambda: compiled.run(x.numpy()), repeat)
    with torch.no_grad():
        t_torch = _median_ms(lambda: model(x), repeat)
    table = Table("model", "stage times", "max |error| vs torch", "IREE ms", "torch eager ms", "speedup")
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in compiled.stages.items())
    table.add_row("vgg_small 32x32 (dense)", stages, f"{err:.2e} (max |out| {np.abs(ref).max():.2f})",
                  f"{t_iree:.2f}", f"{t_torch:.2f}", f"{t_torch / t_iree:.2f}x")
    console.print(table)
    return {"max_error": err, "iree_ms": t_iree, "torch_ms": t_torch}
