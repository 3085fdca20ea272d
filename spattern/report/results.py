"""Reading benchmark result files: `bench/peers.py --out` (engine times and per-round ratios) and accuracy
records (`bench/accuracy.py --out`, or written by hand), and the speedups the plot draws from them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import InputError, ModelLoadError

# Engines whose speedup over the peers the plot shows, best first; the first one measured is used.
SPATTERN_ENGINES = ("spattern_c0.5", "spattern_p", "iree")


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
