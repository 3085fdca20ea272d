"""The report as text: the per-layer table, the fallbacks table, and `CompiledModel.report()`'s text (rich
tables rendered without colour)."""

from __future__ import annotations

import io
from typing import Any, Mapping, Sequence

from ..errors import InputError
from .layers import LayerRow, layer_table, totals


def shape_text(s: Sequence[int]) -> str:
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
        cells = [r.name, r.kind, f"{r.in_shape[1]}>{r.out_shape[1]}", shape_text(r.out_shape[2:]) or "-",
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

    from ..passes.fallbacks import fallback_counts, summary_line

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
    from ..pipeline import new_state, run_pipeline

    state = new_state(model, [example_input], target, plan=plan, lowering=lowering)
    run_pipeline(state, stop_after="passes")
    return list(state.info.get("fallbacks", []))


def attach_layers(compiled: Any, model: Any, example_input: Any, plan: Any = None) -> Any:
    """Record the layer table in `compiled.info["layers"]` (what `spattern.compile` should do for nn.Modules)."""
    compiled.info["layers"] = [r.to_json() for r in layer_table(model, example_input, plan)]
    return compiled
