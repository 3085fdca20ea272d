"""Whatever a fast path does not take stays on a slower path, never a crash, and the pipeline says which layers
fell back and why (spattern.passes.fallbacks)."""

from __future__ import annotations

import torch
from torch import nn

import spattern
from spattern.passes.fallbacks import summary_line
from spattern.passes.lower_linear_to_microkernels import NOT_BATCH1
from spattern.passes.lower_pool_to_microkernels import NOT_2X2
from spattern.passes.lower_to_microkernels import BEYOND_KERNEL, UNFUSED_RESIDUAL
from spattern.pipeline import new_state, run_pipeline
from spattern.testing import random_plan_for
from conftest import assert_close_to_torch, require_microkernels


class BeyondKernel(nn.Module):
    """Pattern convs the microkernel cannot run (stride 3; padding 2) between two it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(4, 8, 3, padding=1)
        self.stride3 = nn.Conv2d(8, 16, 3, stride=3, padding=1)
        self.pad2 = nn.Conv2d(16, 16, 3, padding=2)
        self.last = nn.Conv2d(16, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.stride3(torch.relu(self.stem(x))))
        return self.last(torch.relu(self.pad2(y)))


def test_pattern_convs_beyond_the_microkernel_run_on_the_portable_path():
    """They used to reach iree-compile as sparse_pattern ops (the microkernel pipeline had no lower-to-linalg),
    which crashed inside IREE."""
    require_microkernels("host")
    torch.manual_seed(0)
    pruned, plan = random_plan_for(BeyondKernel().eval(), filter_block=1, connectivity=0.3, seed=1)
    x = torch.randn(1, 4, 24, 24)
    compiled = spattern.compile(pruned, x, target="host", plan=plan, lowering="microkernels")
    stats = compiled.info["pass_stats"]
    assert (stats["lower-to-microkernels"]["convs"], stats["lower-to-microkernels"]["left_for_linalg"]) == (2, 2)
    assert stats["lower-to-linalg"]["convs"] == 2
    assert_close_to_torch(compiled.run(x.numpy())[0], pruned(x).detach().numpy())


class ManyFallbacks(nn.Module):
    """One layer per reason: an RGB conv, a 5x5, a grouped, a depthwise and a dilated conv, a pattern conv whose
    residual comes from a 5x5 conv (IREE's own), a 3x3 max pool with stride 1, a pattern layer with strides
    (1, 2), a stride-3 pattern conv, a 1x1 conv and a Linear (modules in execution order, as random_plan_for
    needs)."""

    def __init__(self) -> None:
        super().__init__()
        self.rgb = nn.Conv2d(3, 8, 3, padding=1)
        self.c5 = nn.Conv2d(8, 8, 5, padding=2)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.dilated = nn.Conv2d(8, 8, 3, padding=2, dilation=2)
        self.p1 = nn.Conv2d(8, 16, 3, padding=1)
        self.p2 = nn.Conv2d(16, 16, 3, padding=1)
        self.skip5 = nn.Conv2d(16, 16, 5, padding=2)
        self.wide = nn.Conv2d(16, 16, 3, stride=(1, 2), padding=1)
        self.stride3 = nn.Conv2d(16, 16, 3, stride=3, padding=1)
        self.pw = nn.Conv2d(16, 8, 1)
        self.fc = nn.Linear(8 * 6 * 3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.rgb(x))
        y = self.dilated(self.dw(self.grouped(self.c5(y))))
        y = torch.relu(self.p1(y))
        y = torch.relu(self.p2(y) + self.skip5(y))
        y = torch.nn.functional.max_pool2d(y, 3, stride=1, padding=1)
        y = torch.relu(self.stride3(torch.relu(self.wide(y))))  # pw next to a pattern conv: the 1x1 kernel's
        return self.fc(self.pw(y).flatten(1))


DENSE_SHAPES = {("c5", "5x5 conv: not a pattern shape"), ("grouped", "grouped conv: no pattern kernel"),
                ("dw", "depthwise conv: no pattern kernel"), ("dilated", "dilated conv: no pattern kernel"),
                ("skip5", "5x5 conv: not a pattern shape")}
WIDE = ("wide", "pattern layer kept dense: unequal strides")


def _fallbacks(batch: int, lowering: str) -> tuple[set[tuple[str, str, str]], dict]:
    torch.manual_seed(0)
    pruned, plan = random_plan_for(ManyFallbacks().eval(), filter_block=1, connectivity=0.3, seed=2)
    assert [layer.name for layer in plan.layers] == ["p1", "p2", "wide", "stride3"]
    state = new_state(pruned, [torch.randn(batch, 3, 18, 18)], "host", plan=plan, lowering=lowering)
    run_pipeline(state, stop_after="passes")
    found = {(f["layer"], f["reason"], f["path"]) for f in state.info["fallbacks"]}
    assert len(found) == len(state.info["fallbacks"])  # one record per (layer, reason, path)
    return found, state.info["fallback_counts"]


def test_microkernel_path_records_exactly_the_known_fallbacks():
    found, counts = _fallbacks(batch=1, lowering="microkernels")
    dense = {(layer, reason, "dense") for layer, reason in {*DENSE_SHAPES, WIDE}}
    assert found == dense | {
        ("linalg.pooling_nchw_max -> 1x16x18x18", NOT_2X2, "dense"),
        ("stride3", BEYOND_KERNEL, "portable"),
        ("p2", UNFUSED_RESIDUAL, "unfused"),
    }  # rgb (dense-3x3-to-patterns), pw (the 1x1 kernel) and fc (the GEMV kernel) took the rest
    assert counts == {"dense": {"5x5 conv: not a pattern shape": 2, NOT_2X2: 1, "depthwise conv: no pattern kernel": 1,
                                "dilated conv: no pattern kernel": 1, "grouped conv: no pattern kernel": 1,
                                WIDE[1]: 1},
                      "portable": {BEYOND_KERNEL: 1}, "unfused": {UNFUSED_RESIDUAL: 1}}


def test_microkernel_path_over_a_batch_leaves_the_1x1_conv_and_the_linear_to_iree():
    found, _ = _fallbacks(batch=2, lowering="microkernels")
    assert {f for f in found if f[0] in ("pw", "fc")} == {
        ("pw", "1x1 conv over a batch: IREE's conv", "dense"), ("fc", NOT_BATCH1, "dense")}


def test_portable_path_lists_every_dense_layer():
    found, _ = _fallbacks(batch=1, lowering="linalg")
    dense = {(layer, reason, "dense") for layer, reason in {*DENSE_SHAPES, WIDE}}
    assert found == dense | {("rgb", "3x3 conv not in the plan", "dense"), ("pw", "1x1 conv: IREE's conv", "dense"),
                             ("fc", "Linear: IREE's matmul", "dense")}


def test_a_model_with_every_fallback_compiles_and_matches_torch():
    require_microkernels("host")
    torch.manual_seed(0)
    pruned, plan = random_plan_for(ManyFallbacks().eval(), filter_block=1, connectivity=0.3, seed=2)
    x = torch.randn(1, 3, 18, 18)
    compiled = spattern.compile(pruned, x, target="host", plan=plan)
    assert compiled.info["fallback_counts"]["portable"] == {BEYOND_KERNEL: 1}
    assert_close_to_torch(compiled.run(x.numpy())[0], pruned(x).detach().numpy())
    text = compiled.report()
    assert "fallbacks: what stayed off the fast path" in text and "7 layers on the dense path" in text
    assert "2 x 5x5 conv: not a pattern shape" in text


def test_summary_line_counts_per_path_and_reason():
    records = [{"pass": "census", "layer": "a", "reason": "5x5 conv: not a pattern shape", "path": "dense"},
               {"pass": "census", "layer": "b", "reason": "grouped conv: no pattern kernel", "path": "dense"},
               {"pass": "census", "layer": "c", "reason": "5x5 conv: not a pattern shape", "path": "dense"},
               {"pass": "lower-to-microkernels", "layer": "d", "reason": UNFUSED_RESIDUAL, "path": "unfused"}]
    assert summary_line(records) == ("3 layers on the dense path: 2 x 5x5 conv: not a pattern shape, 1 x grouped "
                                     f"conv: no pattern kernel; 1 epilogue not fused: 1 x {UNFUSED_RESIDUAL}")
    assert summary_line([]) == "every layer on the fast path (no fallbacks)"


def test_report_command_with_a_target_shows_the_fallbacks(tmp_path):
    import io

    from rich.console import Console

    from spattern import models, report

    torch.manual_seed(0)
    pruned, plan = random_plan_for(models.build("vgg_small", num_classes=10, image_size=32), 1, 0.3)
    weights = tmp_path / "w.pt"
    torch.save(pruned.state_dict(), weights)
    plan.save(tmp_path / "plan")
    console = Console(file=io.StringIO(), width=200)
    report.report_command(weights, zoo="vgg_small", plan=tmp_path / "plan", num_classes=10,
                          input_shape=(1, 3, 32, 32), time_repeat=0, console=console, target="host",
                          lowering="linalg")
    text = " ".join(console.file.getvalue().split())  # the caption wraps
    assert "fallbacks: what stayed off the fast path" in text
    # The RGB conv: dense-3x3-to-patterns runs on the microkernel path only.
    assert "│ dense │ 3x3 conv not in the plan │ 1 │ features.0 │" in text
    assert "│ dense │ Linear: IREE's matmul │ 1 │ classifier.0 │" in text
    assert "2 layers on the dense path: 1 x 3x3 conv not in the plan, 1 x Linear: IREE's matmul" in text


def test_cli_compile_prints_the_fallback_summary(tmp_path):
    import subprocess
    import sys

    from spattern import models
    from spattern.pruning import PruneConfig, prune, save_pruned

    model = models.build("vgg_small", num_classes=10, image_size=32, width=0.25)
    result = prune(model, torch.randn(1, 3, 32, 32), PruneConfig(method="magnitude", distill_steps=0,
                                                                 recalibrate_bn=False), progress=False)
    folder = save_pruned(result, tmp_path / "pruned", model_info={"zoo": "vgg_small", "num_classes": 10,
                                                                   "image_size": 32, "width": 0.25})
    r = subprocess.run([sys.executable, "-m", "spattern", "compile", str(folder), "--lowering", "linalg", "-o",
                        str(tmp_path / "m.vmfb")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "2 layers on the dense path: 1 x 3x3 conv not in the plan, 1 x Linear: IREE's matmul" in r.stderr
