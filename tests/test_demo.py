"""The README's first command runs `spattern demo`: here with --fast settings, end to end."""

from rich.console import Console

from spattern.demo import run_demo


def test_demo_prunes_compiles_runs_and_reports(tmp_path):
    console = Console(file=open(tmp_path / "out.txt", "w"), width=120)
    result = run_demo(fast=True, connectivity=0.5, console=console)
    text = (tmp_path / "out.txt").read_text()
    assert "[5/6]" in text and "[6/6]" in text and "MAC limit" in text
    # the headline speedup is over the fastest dense engine measured, torch channels-last among them, and named
    assert "dense torch channels-last" in text and "speedup over the fastest dense engine here" in " ".join(
        text.lower().split())
    for key in ("fastest_dense", "phone_size_fastest_dense"):
        assert result[key].startswith("dense ") and result[key] in " ".join(text.split())
    assert result["acc_dense"] > 0.9  # the cached digits model
    assert result["max_error"] < 1e-3
    # the compiled module scores what the pruned PyTorch model scores on the same images
    assert abs(result["acc_module"] - result["acc_pruned"]) <= 1 / 64 + 1e-9
    assert 3.0 < result["mac_limit"] < 4.6
