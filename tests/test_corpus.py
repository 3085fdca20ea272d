"""The generated-architecture corpus (spattern.testing.archgen): 40 random CNNs pruned, compiled for `host` (the
default lowering, microkernels), run and compared with the pruned PyTorch model; a dozen of them on arm64-linux
(qemu) and a dozen on vulkan (lavapipe). Every model must match within 1e-4 x max |output|, or be refused with a
spattern.errors exception that says why (judged by spattern.testing.corpus.judge; a CompileError or any other
exception is a failure). Models alternate patterns-only and connectivity 0.5 pruning; every fifth is pruned by
the real spattern.prune (a very short config), the others by random_plan_for in execution order; every sixth
shares each pattern across a block of 8 filters (spattern.testing.corpus.default_choice).

The longer sweep over the same generator is bench/fuzz.py. Seeds that once failed there are pinned below with the
bug they found, so each fix keeps a regression test.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spattern.testing import random_plan_for
from spattern.testing.archgen import generate
from spattern.testing.corpus import PrunedCase, prepare, run_case
from conftest import require_microkernels
from test_targets import require

# Seeds whose models found a bug, with the bug (fixed; these stay as its regression tests).
REGRESSION_SEEDS = {
    224: "cbr2(relu) -> res-1x1s1-add: a pattern conv's output read by the 1x1 skip kernel that fused the add, "
         "TypeError in lower-to-microkernels (fixed on branch passfix, c48b92f)",
    1020: "unet with its decoder declared first, pruned by spattern.prune: synthetic images matched BatchNorm "
          "statistics by module order, a size mismatch in bn_matched_inputs (tests/test_synthetic_bn_order.py)",
}
# The same, for bugs that only Vulkan showed.
VULKAN_REGRESSION_SEEDS = {
    1055: "res-1x1s1-actadd -> dil2: IREE's SPIR-V codegen stored the pattern conv's output 2 floats left into the "
          "dilated conv's pad-2 buffer (68 wide: vec4 rows); fixed by the pad-source-barrier post-pass",
    2007: "unet-s2-bilinear -> dil2: the same misaligned store, from the U-Net decoder's pattern conv",
}
HOST_SEEDS = list(range(40)) + sorted(REGRESSION_SEEDS)
ARM64_SEEDS = HOST_SEEDS[0::3][:12]
VULKAN_SEEDS = HOST_SEEDS[1::3][:12] + sorted(VULKAN_REGRESSION_SEEDS)

_CASES: dict[int, PrunedCase] = {}


def case_for(seed: int) -> PrunedCase:
    """Each model is generated and pruned once per test process."""
    if seed not in _CASES:
        _CASES[seed] = prepare(seed)
    return _CASES[seed]


def _ids(seeds: list[int]) -> list[str]:
    return [generate(s).test_id for s in seeds]


def check(seed: int, target: str) -> None:
    case = case_for(seed)
    outcome = run_case(case, target)
    where = f"model {seed} ({case.label}: {case.gen.description}) on {target}"
    if outcome.result == "refused":
        assert len(outcome.error) < 1000, f"{where}: a refusal must be one clear message: {outcome.error}"
        print(f"{where}: refused: {outcome.error}")
        return
    assert outcome.result == "pass", f"{where}: {outcome.error}"
    print(f"{where}: max abs err {outcome.max_err:.3g} (bound {outcome.bound:.3g}), {outcome.seconds:.1f} s")


@pytest.mark.parametrize("seed", HOST_SEEDS, ids=_ids(HOST_SEEDS))
def test_generated_model_on_host_matches_pytorch(seed):
    require_microkernels("host")
    check(seed, "host")


@pytest.mark.parametrize("seed", ARM64_SEEDS, ids=_ids(ARM64_SEEDS))
def test_generated_model_on_arm64_matches_pytorch(seed):
    require("arm64-linux")
    check(seed, "arm64-linux")


@pytest.mark.parametrize("seed", VULKAN_SEEDS, ids=_ids(VULKAN_SEEDS))
def test_generated_model_on_vulkan_matches_pytorch(seed):
    require("vulkan")
    check(seed, "vulkan")


# --- the generator itself --------------------------------------------------------------------------------------
def test_generator_is_deterministic_and_covers_the_blocks():
    a, b = generate(7), generate(7)
    assert a.description == b.description and a.input_shape == b.input_shape
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert torch.equal(a.example_input(), b.example_input())
    assert generate(8).description != a.description
    models = [generate(s) for s in range(100)]
    tags = " ".join(" ".join(g.blocks) for g in models)
    for block in ("res-id", "res-1x1s1", "res-1x1s2", "addact", "actadd", "incep", "dense", "fire", "fork-add",
                  "fork-cat", "twoadds", "g2", "g4", "dw", "dil2", "k1x3", "k3x1", "k5x5", "k7x7", "s2odd",
                  "nobias", "nobn", "actbn", "relu6", "leaky", "silu", "gelu", "hswish", "se(", "pool-max",
                  "pool-avg", "pool-adaptive", "unet", "nearest", "bilinear", "gap-fc", "flat-fc", "flat-mlp",
                  "conv-gap", "map", "flatten", "-add", "skipfirst"):
        assert block in tags, block
    shapes = {g.input_shape for g in models}
    assert {s[0] for s in shapes} == {1, 2} and {s[1] for s in shapes} == {1, 3}
    assert any(h % 2 for _, _, h, _ in shapes) and any(h != w for _, _, h, w in shapes)
    assert all(24 <= h <= 64 and 24 <= w <= 64 for _, _, h, w in shapes)


def test_generated_batchnorm_statistics_are_not_the_defaults():
    bns = [m for m in generate(3).model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns
    for bn in bns:
        assert not torch.allclose(bn.running_mean, torch.zeros_like(bn.running_mean))
        assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))


class _DefinedOutOfOrder(nn.Module):
    """`late` is created first but runs last, as in many hand-written models (and the generator's Fork)."""

    def __init__(self) -> None:
        super().__init__()
        self.late = nn.Conv2d(16, 8, 3, padding=1)
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.early = nn.Conv2d(16, 16, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.late(torch.relu(self.early(torch.relu(self.stem(x)))))


def test_random_plan_lists_layers_in_execution_order_given_an_input():
    """import-patterns matches plan layers in execution order; module order would leave `early` unmatched."""
    model = _DefinedOutOfOrder().eval()
    x = torch.randn(1, 3, 16, 16)
    _, plan = random_plan_for(model, 1, 0.5, seed=0, example_input=x)
    assert [lp.name for lp in plan.layers] == ["early", "late"]
    import spattern
    from spattern.errors import PlanError

    pruned_by_module, by_module = random_plan_for(model, 1, 0.5, seed=0)
    assert [lp.name for lp in by_module.layers] == ["late", "early"]
    with pytest.raises(PlanError, match="execution order"):  # what the corpus met before the fix
        spattern.compile(pruned_by_module, x, target="host", plan=by_module)

    pruned, plan = random_plan_for(model, 1, 0.5, seed=0, example_input=x)
    compiled = spattern.compile(pruned, x, target="host", plan=plan)
    with torch.no_grad():
        ref = pruned(x).numpy()
    (got,) = compiled.run(x.numpy())
    assert compiled.info["pass_stats"]["import-patterns"]["imported"] == 2
    assert abs(got - ref).max() <= 1e-4 * abs(ref).max()
