"""Per-layer report: where a model's MACs and time go, and what pruning kept.

A user who compiled a model wants to know which layers the pattern kernels serve, how much work each layer still
does, and where the time goes. The table is computed from the torch model (forward hooks give each layer's
shapes and MACs) and the PatternPlan (pattern or dense, filter block, the fraction of MACs kept).

Time share is measured honestly but not inside IREE: per-layer timing inside an IREE module needs tracing builds
(Tracy), which the wheels lack. So the time column, when asked for, is the layer's share of the torch eager
forward pass of the same (dense-shaped) layer, labelled as such. It says where the dense model's time goes, which
is what decides how much pruning a layer can pay back; it is not the compiled module's per-layer time. It is
timed on one thread, because on a busy machine OpenMP's spinning barriers make multi-threaded layer times swing.

The `--plot` figure has three panels with a fixed pixel size (tests check it): this model's MACs per layer
(dense vs kept), the speedup per model against each peer (from `bench/peers.py --out` JSON), and accuracy vs
speedup across pruning settings (from `bench/accuracy.py` JSON, format in `read_accuracy`).
"""

from __future__ import annotations

import math

import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .errors import InputError, ModelLoadError, OutputPathError, PlanError, ToolUnavailableError

# The figure's size is fixed so that a PNG's pixel size is known in advance (the test checks it).
PLOT_SIZE_IN = (15.0, 4.5)
PLOT_DPI = 100
PLOT_SIZE_PX = (int(PLOT_SIZE_IN[0] * PLOT_DPI), int(PLOT_SIZE_IN[1] * PLOT_DPI))  # all three panels


def plot_size_px(n_panels: int) -> tuple[int, int]:
    """The PNG's size with n_panels of the three drawn (a panel is drawn only when there is data for it)."""
    return (int(PLOT_SIZE_IN[0] / 3 * max(1, n_panels) * PLOT_DPI), PLOT_SIZE_PX[1])

# Engines whose speedup over the peers the plot shows, best first; the first one measured is used.
SPATTERN_ENGINES = ("spattern_c0.5", "spattern_p", "iree")


@dataclass
class LayerRow:
    """One compute layer (conv or linear) of a model, as the report shows it."""

    name: str
    kind: str  # "conv3x3", "conv1x1", "dwconv3x3", "conv5x5", "linear", ...
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    mode: str  # "pattern" or "dense"
    filter_block: int | None  # None for dense layers
    macs: int  # dense MACs of the layer (batch included)
    macs_kept_fraction: float  # 1.0 for dense layers
    time_s: float | None = None  # measured seconds per call (torch eager, see module docstring)

    @property
    def macs_kept(self) -> int:
        return int(round(self.macs * self.macs_kept_fraction))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("in_shape", "out_shape", "weight_shape"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "LayerRow":
        try:
            return cls(name=str(d["name"]), kind=str(d["kind"]), in_shape=tuple(d["in_shape"]),
                       out_shape=tuple(d["out_shape"]), weight_shape=tuple(d["weight_shape"]), mode=str(d["mode"]),
                       filter_block=None if d.get("filter_block") is None else int(d["filter_block"]),
                       macs=int(d["macs"]), macs_kept_fraction=float(d["macs_kept_fraction"]),
                       time_s=None if d.get("time_s") is None else float(d["time_s"]))
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"malformed layer record {d!r}: {type(e).__name__}: {e}") from None


def _kind(module: Any) -> str:
    from torch import nn

    if isinstance(module, nn.Linear):
        return "linear"
    kh, kw = module.kernel_size
    size = f"{kh}x{kw}"
    if module.groups > 1 and module.groups == module.in_channels:
        return f"dwconv{size}"
    return f"gconv{size}" if module.groups > 1 else f"conv{size}"


def _macs(module: Any, out_shape: tuple[int, ...]) -> int:
    from torch import nn

    numel = 1
    for d in out_shape:
        numel *= int(d)
    if isinstance(module, nn.Linear):
        return numel * module.in_features
    kh, kw = module.kernel_size
    return numel * (module.in_channels // module.groups) * kh * kw


def layer_table(model: Any, example_input: Any, plan: Any = None, time_repeat: int = 0) -> list[LayerRow]:
    """One LayerRow per Conv2d / Linear call, in execution order.

    plan: a PatternPlan; its layers are "pattern" rows with the plan's filter block and MACs-kept fraction, every
    other layer is "dense". PlanError if the plan names a layer the model does not have or with another shape.
    time_repeat > 0 measures each layer's torch eager time, on one thread (median of that many forward passes, after
    one warmup).
    """
    import torch
    from torch import nn

    if not isinstance(model, nn.Module):
        raise InputError(f"layer_table needs a torch.nn.Module, got {type(model).__name__} (an ExportedProgram "
                         "has no modules to hook; pass the nn.Module it was exported from)")
    x = example_input[0] if isinstance(example_input, (list, tuple)) else example_input
    if not isinstance(x, torch.Tensor):
        raise InputError(f"example input must be a torch.Tensor, got {type(x).__name__}")
    planned = {layer.name: layer for layer in plan.layers} if plan is not None else {}
    modules = {name: m for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    for name in planned:
        if name not in modules:
            raise PlanError(f"the plan names layer {name!r}, which is not a Conv2d of this model; is this plan "
                            "for another model?")
        if tuple(modules[name].weight.shape) != tuple(planned[name].weight_shape):
            raise PlanError(f"layer {name!r}: the model's weight has shape {tuple(modules[name].weight.shape)}, "
                            f"the plan expects {tuple(planned[name].weight_shape)}")

    rows: dict[str, LayerRow] = {}
    starts: dict[str, float] = {}
    times: dict[str, list[float]] = {name: [] for name in modules}

    def pre(name: str):
        def hook(mod: Any, inputs: Any) -> None:
            starts[name] = time.perf_counter()
        return hook

    def post(name: str):
        def hook(mod: Any, inputs: Any, output: Any) -> None:
            times[name].append(time.perf_counter() - starts[name])
            if name in rows:
                return
            lp = planned.get(name)
            rows[name] = LayerRow(
                name=name, kind=_kind(mod), in_shape=tuple(inputs[0].shape), out_shape=tuple(output.shape),
                weight_shape=tuple(mod.weight.shape), mode="pattern" if lp is not None else "dense",
                filter_block=lp.filter_block if lp is not None else None,
                macs=_macs(mod, tuple(output.shape)),
                macs_kept_fraction=lp.macs_kept_fraction() if lp is not None else 1.0)
        return hook

    handles = []
    for name, m in modules.items():
        handles.append(m.register_forward_pre_hook(pre(name)))
        handles.append(m.register_forward_hook(post(name)))
    threads = torch.get_num_threads()
    try:
        with torch.no_grad():
            model(x)
            for ts in times.values():
                ts.clear()
            # one thread: shares stay meaningful on a busy machine, where OpenMP's spinning barriers make
            # multi-threaded layer times swing by 10x (measured here under load)
            torch.set_num_threads(1)
            for _ in range(max(0, time_repeat)):
                model(x)
    finally:
        torch.set_num_threads(threads)
        for h in handles:
            h.remove()
    out = list(rows.values())
    if time_repeat > 0:
        for row in out:
            ts = sorted(times[row.name])
            # a module called k times per forward (shared layers) is timed k times per pass: sum per pass
            per_pass = len(ts) // time_repeat or 1
            row.time_s = ts[len(ts) // 2] * per_pass if ts else None
    return out


@dataclass
class Totals:
    macs: int
    macs_kept: int
    pattern_layers: int
    dense_layers: int

    @property
    def mac_limit(self) -> float:
        """The speedup the kept MACs allow at best (dense MACs / kept MACs)."""
        return self.macs / self.macs_kept if self.macs_kept else float("inf")


def totals(rows: Sequence[LayerRow]) -> Totals:
    return Totals(macs=sum(r.macs for r in rows), macs_kept=sum(r.macs_kept for r in rows),
                  pattern_layers=sum(r.mode == "pattern" for r in rows),
                  dense_layers=sum(r.mode != "pattern" for r in rows))


def _shape(s: Sequence[int]) -> str:
    return "x".join(str(int(d)) for d in s)


def _mac_text(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= div:
            return f"{n / div:.2f}{unit}"
    return f"{int(n)}"


def rows_table(rows: Sequence[LayerRow], title: str | None = None):
    """A rich Table of the rows (time share only where the rows carry measured times)."""
    from rich import box
    from rich.table import Table

    timed = any(r.time_s is not None for r in rows)
    total_time = sum(r.time_s or 0.0 for r in rows)
    t = totals(rows)
    caption = (f"in>out: channels, HxW: output size; {t.pattern_layers} of {t.pattern_layers + t.dense_layers} "
               "layers pattern-pruned; "
               f"MAC limit {t.mac_limit:.2f}x (dense MACs / kept MACs)")
    if timed:
        caption += ("; time share: of the conv/linear time, torch eager (1 thread) on the dense layer shapes, not "
                    "measured inside the IREE module")
    # Short headers, one space between columns (the box's divider; no padding) and no vertical rules, so that a ResNet's rows fit 80 columns
    # (the boxed table with "in -> out (CxHxW)" collapsed MACs, kept and time to "…" there).
    table = Table(title=title, caption=caption, show_footer=True, box=box.SIMPLE_HEAD, padding=0,
                  pad_edge=False, show_edge=False)
    table.add_column("layer", footer="total", no_wrap=True, overflow="fold")
    table.add_column("kind", no_wrap=True)
    table.add_column("in>out", no_wrap=True, justify="right")
    table.add_column("HxW", no_wrap=True)
    table.add_column("mode", footer=f"{t.pattern_layers}/{t.pattern_layers + t.dense_layers}", no_wrap=True)
    table.add_column("blk", justify="right", no_wrap=True)
    table.add_column("MACs", justify="right", footer=_mac_text(t.macs), no_wrap=True)
    table.add_column("kept", justify="right", footer=f"{100 * t.macs_kept / max(t.macs, 1):.0f}%", no_wrap=True)
    if timed:
        table.add_column("time", justify="right", footer=f"{total_time * 1e3:.1f}ms", no_wrap=True)
    for r in rows:
        cells = [r.name, r.kind, f"{r.in_shape[1]}>{r.out_shape[1]}", _shape(r.out_shape[2:]) or "-",
                 "[green]pattern[/]" if r.mode == "pattern" else "dense",
                 str(r.filter_block) if r.filter_block is not None else "-", _mac_text(r.macs),
                 f"{100 * r.macs_kept_fraction:.0f}%"]
        if timed:
            cells.append(f"{100 * (r.time_s or 0.0) / total_time:.1f}%" if total_time > 0 else "-")
        table.add_row(*cells)
    return table


def render(renderables: Sequence[Any], width: int = 140) -> str:
    """Rich renderables as plain text (no colour codes), for `CompiledModel.report()` and logs."""
    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    for r in renderables:
        console.print(r)
    return console.file.getvalue()  # type: ignore[attr-defined]


def format_report(compiled: Any) -> str:
    """Text report of a CompiledModel: target, sizes, stage times, and the per-layer table when the compile
    recorded its layers in `info["layers"]` (LayerRow.to_json records; see `attach_layers`)."""
    info = dict(getattr(compiled, "info", {}) or {})
    target = getattr(getattr(compiled, "target", None), "name", "?")
    lines = [f"target {target}, module {len(getattr(compiled, 'vmfb', b'') or b'') / 1e6:.1f} MB, "
             f"lowering {info.get('lowering', 'dense (no plan)')}"]
    stages = getattr(compiled, "stages", {}) or {}
    if stages:
        lines.append("stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in stages.items()))
    if info.get("passes"):
        lines.append("passes: " + ", ".join(info["passes"]))
    out: list[Any] = ["\n".join(lines)]
    if "fallbacks" in info:
        out.append(fallback_table(info["fallbacks"]))
    layers = info.get("layers")
    if layers is None:
        out.append("no per-layer record in this module (it was loaded from a .vmfb, or compiled without one); "
                   "`spattern report MODEL [--plan ...]` builds the table from the model itself")
        return render(out)
    if not isinstance(layers, list):
        raise InputError("compiled.info['layers'] must be a list of layer records")
    rows = [r if isinstance(r, LayerRow) else LayerRow.from_json(r) for r in layers]
    out.append(rows_table(rows, title="layers"))
    return render(out)


def fallback_table(fallbacks: Sequence[Mapping[str, Any]]):
    """A rich Table of a compile's fallbacks (`info["fallbacks"]`, spattern.passes.fallbacks): per path and
    reason, how many layers and which; captioned with the one-line summary."""
    from rich.table import Table

    from .passes.fallbacks import fallback_counts, summary_line

    table = Table(title="fallbacks: what stayed off the fast path, and why", caption=summary_line(fallbacks))
    table.add_column("path", no_wrap=True)
    table.add_column("reason", overflow="fold")
    table.add_column("layers", justify="right")
    table.add_column("which", overflow="fold")
    for path, reasons in fallback_counts(fallbacks).items():
        for reason, count in reasons.items():
            names = [str(f["layer"]) for f in fallbacks if f["reason"] == reason and f.get("path", "dense") == path]
            which = ", ".join(names[:6]) + (f", ... ({len(names) - 6} more)" if len(names) > 6 else "")
            table.add_row(path, reason, str(count), which)
    return table


def passes_fallbacks(model: Any, example_input: Any, plan: Any, target: str, lowering: str = "auto"
                     ) -> list[dict[str, Any]]:
    """The fallbacks a compile for `target` records, from the export and the passes alone (no iree-compile: the
    passes decide what runs where)."""
    from .pipeline import new_state, run_pipeline

    state = new_state(model, [example_input], target, plan=plan, lowering=lowering)
    run_pipeline(state, stop_after="passes")
    return list(state.info.get("fallbacks", []))


def attach_layers(compiled: Any, model: Any, example_input: Any, plan: Any = None) -> Any:
    """Record the layer table in `compiled.info["layers"]` (what `spattern.compile` should do for nn.Modules)."""
    compiled.info["layers"] = [r.to_json() for r in layer_table(model, example_input, plan)]
    return compiled


# --- result files ----------------------------------------------------------------------------------------------
def _read_json(path: Path, what: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"no {what} file at {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path} is not valid JSON ({what}): {e}") from None


def read_peers(path: Path) -> dict[str, dict[str, float]]:
    """{model: {engine: median ms}} from a `bench/peers.py --out` file (format "spattern.peers", version 1:
    {"models": [{"model": str, "engines": {engine: {"status": "ok"|..., "median_ms": float, ...}}}]}).
    Only engines with status "ok" are returned."""
    data = _read_json(path, "peers results")
    if not isinstance(data, dict) or data.get("format") != "spattern.peers" or not isinstance(data.get("models"), list):
        raise InputError(f"{path} is not a bench/peers.py result (expected 'format': 'spattern.peers' and a "
                         "'models' list)")
    out: dict[str, dict[str, float]] = {}
    for m in data["models"]:
        if not isinstance(m, dict) or not isinstance(m.get("engines"), dict):
            raise InputError(f"{path}: malformed model entry {m!r}")
        out[str(m.get("model"))] = {e: float(r["median_ms"]) for e, r in m["engines"].items()
                                    if isinstance(r, dict) and r.get("status") == "ok" and r.get("median_ms")}
    return out


@dataclass
class AccuracyPoint:
    setting: str
    accuracy: float  # top-1, percent
    speedup: float | None  # over the dense model: measured, or the MAC limit (see `measured`)
    measured: bool = True  # False: `speedup` is the MAC limit of the setting, not a timing
    group: str = ""  # e.g. "vgg_small/digits": points of one group share a colour


def _mac_limit_of(record: Mapping[str, Any]) -> float | None:
    """Per-layer MAC limit of a pattern setting (4 of 9 taps per kept kernel): 9 / (4 (1 - connectivity))."""
    if record.get("stage") == "dense" or record.get("setting") == "dense":
        return 1.0
    c = record.get("connectivity")
    if c is None:
        return None
    return 9.0 / (4.0 * (1.0 - float(c)))


def read_accuracy(path: Path) -> list[AccuracyPoint]:
    """Accuracy records, from `bench/accuracy.py --out` or written by hand.

    Accepted: a JSON list of records, or an object holding it under "rows" (bench/accuracy.py) or "results".
    A record needs "accuracy" (or "acc", bench/accuracy.py's key); a value in [0, 1] is a fraction and becomes
    percent. Its label is "setting" plus, where present, "model", "task", "stage", "inputs". Its x position is
    "speedup" (measured over dense) when present, else the MAC limit of its "connectivity" (marked as such in
    the plot), else it is listed but not placed. Extra fields are ignored."""
    data = _read_json(path, "accuracy results")
    records = data if isinstance(data, list) else next(
        (data[k] for k in ("rows", "results") if isinstance(data, dict) and isinstance(data.get(k), list)), None)
    if not isinstance(records, list):
        raise InputError(f"{path}: expected a list of {{setting, accuracy, speedup?}} records, or an object with "
                         "them under 'rows' or 'results'")
    points = []
    for i, r in enumerate(records):
        acc_key = "accuracy" if isinstance(r, dict) and "accuracy" in r else "acc"
        if not isinstance(r, dict) or acc_key not in r or not ({"setting", "stage"} & set(r)):
            raise InputError(f"{path}: record {i} needs 'setting' (or 'stage') and 'accuracy', got {r!r}")
        try:
            acc = float(r[acc_key])
            speed = None if r.get("speedup") is None else float(r["speedup"])
            limit = _mac_limit_of(r) if speed is None else None
        except (TypeError, ValueError):
            raise InputError(f"{path}: record {i}: accuracy, speedup and connectivity must be numbers, "
                             f"got {r!r}") from None
        label = " ".join(str(r[k]) for k in ("stage", "setting", "inputs") if r.get(k) not in (None, ""))
        group = "/".join(str(r[k]) for k in ("model", "task") if r.get(k))
        points.append(AccuracyPoint(label, acc * 100 if acc <= 1.0 else acc, speed if speed is not None else limit,
                                    measured=speed is not None, group=group))
    return points


# --- plot ------------------------------------------------------------------------------------------------------
Speedups = dict[str, tuple[str, dict[str, tuple[float, float, float]]]]


def read_peer_ratios(path: Path) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """{model: {ours: {peer: {median, min, max}}}}: the per-round ratios bench/peers.py measured (peer time / our
    time in the same round), which are steadier on a noisy machine than a ratio of two medians."""
    read_peers(path)  # validates the format
    data = _read_json(path, "peers results")
    return {str(m.get("model")): m.get("ratios") or {} for m in data["models"]}


def speedups_vs_peers(peers: Mapping[str, Mapping[str, float]],
                      ratios: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]] | None = None
                      ) -> Speedups:
    """{model: (our engine, {peer: (median, min, max)})}, our engine being the best-pruned one measured.
    With `ratios` (read_peer_ratios) the per-round ratios are used; else the ratio of medians (min = max)."""
    out: Speedups = {}
    for model, engines in peers.items():
        ours = next((e for e in SPATTERN_ENGINES if e in engines), None)
        if ours is None:
            continue
        measured = (ratios or {}).get(model, {}).get(ours, {})
        row = {}
        for p, ms in engines.items():
            if p in SPATTERN_ENGINES or ms <= 0:
                continue
            r = measured.get(p)
            row[p] = (r["median"], r["min"], r["max"]) if r else (ms / engines[ours],) * 3
        out[model] = (ours, row)
    return out


def plot(out: Path, rows: Sequence[LayerRow] | None = None, peers: Speedups | None = None,
         accuracy: Sequence[AccuracyPoint] | None = None, title: str | None = None) -> Path:
    """Write the PNG (plot_size_px(panels) pixels): per-layer MACs, speedup vs peers, accuracy vs speed, each
    only where there is data for it (empty placeholder panels said nothing); with no data at all, one panel that
    says what to pass. peers: `speedups_vs_peers(read_peers(f), read_peer_ratios(f))`."""
    try:
        import matplotlib
    except ImportError:
        raise ToolUnavailableError("--plot needs matplotlib: pip install matplotlib (or pip install -e .[bench])") \
            from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    if out.suffix.lower() != ".png":
        raise OutputPathError(f"--plot writes a PNG; give a path ending in .png, got {out}")
    if not out.parent.is_dir():
        raise OutputPathError(f"cannot write {out}: the folder {out.parent} does not exist")
    panels = [(draw, data) for draw, data in ((_panel_layers, rows), (_panel_peers, peers),
                                              (_panel_accuracy, accuracy)) if data]
    panels = panels or [(_panel_layers, rows)]
    width_px, height_px = plot_size_px(len(panels))
    fig, axes = plt.subplots(1, len(panels), figsize=(width_px / PLOT_DPI, height_px / PLOT_DPI), dpi=PLOT_DPI,
                             squeeze=False)
    try:
        for ax, (draw, data) in zip(axes[0], panels):
            draw(ax, data)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        try:
            fig.savefig(out, dpi=PLOT_DPI, format="png")
        except OSError as e:
            raise OutputPathError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        plt.close(fig)
    return out


def _empty(ax: Any, title: str, hint: str) -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, hint, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _panel_layers(ax: Any, rows: Sequence[LayerRow] | None) -> None:
    if not rows:
        _empty(ax, "MACs per layer", "no model given")
        return
    idx = list(range(len(rows)))
    ax.bar(idx, [r.macs / 1e6 for r in rows], color="#cccccc", label="dense")
    ax.bar(idx, [r.macs_kept / 1e6 for r in rows], color="#2a7ab9", label="kept")
    # layer names under the bars (small and rotated; every k-th where there are many), not bare indices
    step = max(1, math.ceil(len(rows) / 40))
    ax.set_xticks(idx[::step])
    ax.set_xticklabels([r.name for r in rows][::step], rotation=90, fontsize=6 if len(rows) > 12 else 8)
    ax.set_ylabel("MMACs")
    t = totals(rows)
    ax.set_title(f"MACs per layer (limit {t.mac_limit:.2f}x)", pad=24)
    # above the axes, under the title: inside, it covered the last bars
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False, fontsize=8)


def _panel_peers(ax: Any, speed: Speedups | None) -> None:
    if not speed:
        _empty(ax, "speedup vs peers", "no peers results\n(bench/peers.py --out r.json, then --peers r.json)")
        return
    models = list(speed)
    peer_names = sorted({p for _, d in speed.values() for p in d})
    width = 0.8 / max(len(peer_names), 1)
    for j, p in enumerate(peer_names):
        xs = [i + j * width for i in range(len(models)) if p in speed[models[i]][1]]
        vals = [speed[m][1][p] for m in models if p in speed[m][1]]
        ax.bar(xs, [v[0] for v in vals], width=width, label=p,
               yerr=[[v[0] - v[1] for v in vals], [v[2] - v[0] for v in vals]], capsize=2)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")  # ratios: 0.5x and 2x are the same distance from 1; untuned TVM is off by 20x
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(models))])
    ax.set_xticklabels([f"{m}\n({speed[m][0]})" for m in models], fontsize=8)
    ax.set_ylabel("peer time / our time (median, min..max of rounds)")
    ax.set_title("speedup vs each peer (>1: we are faster)")
    ax.legend(fontsize=7)


def _panel_accuracy(ax: Any, points: Sequence[AccuracyPoint] | None) -> None:
    placed = [p for p in (points or []) if p.speedup is not None]
    if not placed:
        hint = "no accuracy results\n(bench/accuracy.py, then --accuracy r.json)" if not points else \
            "accuracy records carry no 'speedup' or 'connectivity'"
        _empty(ax, "accuracy vs speed", hint)
        return
    groups = sorted({p.group for p in placed})
    for g in groups:
        for measured, marker in ((True, "o"), (False, "x")):
            sel = [p for p in placed if p.group == g and p.measured == measured]
            if sel:
                ax.scatter([p.speedup for p in sel], [p.accuracy for p in sel], marker=marker,
                           label=f"{g or 'results'}" + ("" if measured else " (x = MAC limit)"))
    for p in placed:
        ax.annotate(p.setting, (p.speedup, p.accuracy), fontsize=6, xytext=(3, 3), textcoords="offset points")
    any_limit = any(not p.measured for p in placed)
    ax.set_xlabel("speedup over dense" + (" (x: MAC limit, not measured)" if any_limit else ""))
    ax.set_ylabel("top-1 (%)")
    ax.set_title("accuracy vs speed across pruning settings")
    ax.legend(fontsize=6)


# --- the CLI command ---------------------------------------------------------------------------------------------
def report_command(model: Path | None = None, zoo: str | None = None, plan: Path | None = None,
                   input_shape: tuple[int, ...] | None = None, num_classes: int = 1000, plot_path: Path | None = None,
                   accuracy: Path | None = None, peers: Path | Sequence[Path] | None = None, time_repeat: int = 3,
                   console: Any = None, target: str | None = None, lowering: str = "auto",
                   weights: Path | None = None) -> list[LayerRow]:
    """`spattern report MODEL [--plan ...] [--target T] [--plot out.png] [--accuracy r.json] [--peers r.json]`.

    MODEL is what `spattern compile` takes (a pruned folder carries its own plan; a state dict needs --zoo);
    `plan` overrides or adds a plan.json; `peers` is one or more `bench/peers.py --out` files. Prints the
    per-layer table and writes the plot; returns the rows. With `target`, it also runs the compiler up to its
    passes for that target (and `lowering`) and prints the fallbacks: which layers stayed off the fast path,
    and why (a .vmfb keeps no record of its compile, so the report recomputes it from the model). With an
    arm64 target, also each pattern layer's modelled time on an A76-class core beside the modelled dense time
    (arm_estimate.py; a model, not a measurement)."""
    import torch
    from rich.console import Console

    from .modelfile import load_model
    from .plan import PatternPlan

    console = console or Console()
    loaded = load_model(model, zoo=zoo, num_classes=num_classes,
                        image_size=input_shape[-1] if input_shape else None, weights=weights)
    if not isinstance(loaded.model, torch.nn.Module):
        raise InputError("the report needs the model's modules: give a pruned folder or a state dict with --zoo, "
                         "not an ExportedProgram")
    the_plan = PatternPlan.load(plan) if plan is not None else loaded.plan
    shape = input_shape or (1, 3, loaded.image_size or 224, loaded.image_size or 224)
    x = torch.randn(*shape)
    rows = layer_table(loaded.model, x, the_plan, time_repeat=time_repeat)
    name = loaded.zoo_name or (loaded.source.name if loaded.source else model.name if model else "model")
    console.print(rows_table(rows, title=f"{name} {_shape(shape)}" + (" (pruned)" if the_plan else " (dense)")))
    if target is not None:
        if the_plan is None:
            console.print(f"{target}: no plan, so every layer runs on IREE's dense path (prune it first)")
        else:
            console.print(fallback_table(passes_fallbacks(loaded.model, x, the_plan, target, lowering)))
        if target.startswith("arm64"):
            from .arm_estimate import arm_table

            console.print(arm_table(rows))
    peer_files = [] if peers is None else [peers] if isinstance(peers, (str, Path)) else list(peers)
    peer_data: Speedups = {}
    for f in peer_files:  # several bench/peers.py runs (e.g. one per model group); a later file wins per model
        peer_data.update(speedups_vs_peers(read_peers(Path(f)), read_peer_ratios(Path(f))))
    acc_data = read_accuracy(accuracy) if accuracy is not None else None
    if plot_path is not None:
        plot(plot_path, rows, peer_data or None, acc_data, title=name)
        console.print(f"wrote {plot_path}")
    elif peer_files or accuracy is not None:
        console.print("(--peers/--accuracy are drawn with --plot out.png)")
    return rows
