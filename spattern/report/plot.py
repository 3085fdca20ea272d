"""The `--plot` figure: up to three panels of a fixed pixel size (tests check it): this model's MACs per layer
(dense vs kept), the speedup per model against each peer, and accuracy vs speedup across pruning settings."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from ..errors import OutputPathError, ToolUnavailableError
from .layers import LayerRow, totals
from .results import AccuracyPoint, Speedups

# The figure's size is fixed so that a PNG's pixel size is known in advance (the test checks it).
PLOT_SIZE_IN = (15.0, 4.5)
PLOT_DPI = 100
PLOT_SIZE_PX = (int(PLOT_SIZE_IN[0] * PLOT_DPI), int(PLOT_SIZE_IN[1] * PLOT_DPI))  # all three panels


def plot_size_px(n_panels: int) -> tuple[int, int]:
    """The PNG's size with n_panels of the three drawn (a panel is drawn only when there is data for it)."""
    return (int(PLOT_SIZE_IN[0] / 3 * max(1, n_panels) * PLOT_DPI), PLOT_SIZE_PX[1])


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
