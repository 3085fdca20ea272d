"""bench/peers.py's bookkeeping (no engine is run): per-round ratios and a JSON the report can read."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from spattern import report

PEERS = Path(__file__).resolve().parents[1] / "bench" / "peers.py"


@pytest.fixture(scope="module")
def peers():
    spec = importlib.util.spec_from_file_location("bench_peers", PEERS)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_ratios_are_per_round(peers):
    R = peers.EngineResult
    results = {"iree": R("ok", rounds_ms=[10.0, 20.0, 10.0]), "onnxruntime": R("ok", rounds_ms=[5.0, 5.0, 10.0]),
               "tvm": R("skipped", reason="slow"), "spattern_p": R("ok", rounds_ms=[4.0, 5.0, 5.0])}
    r = peers.ratios(results)
    assert set(r) == {"iree", "spattern_p"}
    assert r["iree"]["onnxruntime"] == {"median": 0.5, "min": 0.25, "max": 1.0}
    assert "tvm" not in r["iree"] and "iree" not in r["iree"]
    assert r["spattern_p"]["iree"]["median"] == pytest.approx(2.5)


def test_json_is_what_report_reads(peers, tmp_path):
    R = peers.EngineResult
    engines = {"iree": R("ok", rounds_ms=[10.0], median_ms=10.0),
               "onnxruntime": R("ok", rounds_ms=[5.0], median_ms=5.0), "tvm": R("skipped", reason="slow")}
    doc = {"format": "spattern.peers", "version": 1, "models": [
        {"model": "m", "gmacs": 1.0, "engines": {n: asdict(e) for n, e in engines.items()},
         "ratios": peers.ratios(engines)}]}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    assert report.read_peers(path) == {"m": {"iree": 10.0, "onnxruntime": 5.0}}
    assert report.speedups_vs_peers(report.read_peers(path)) == {"m": ("iree", {"onnxruntime": (0.5, 0.5, 0.5)})}
    per_round = report.speedups_vs_peers(report.read_peers(path), report.read_peer_ratios(path))
    assert per_round == {"m": ("iree", {"onnxruntime": (0.5, 0.5, 0.5)})}
    report.plot(tmp_path / "p.png", None, per_round)


def test_unknown_engine_is_refused(peers, capsys):
    assert peers.main(["--models", "resnet18", "--engines", "nope"]) == 2
    assert "unknown model or engine 'nope'" in capsys.readouterr().err
