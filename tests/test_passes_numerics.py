"""Numerics of the portable path: zoo models pruned with random plans, through the whole pass pipeline and
lower-to-linalg, compiled by IREE for the host, must match the pruned PyTorch model (max abs error <= 1e-4 of
max |output|). The quick matrix runs by default; SPATTERN_FULL=1 runs every model x block x connectivity."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch

iree_compiler = pytest.importorskip("iree.compiler")
iree_runtime = pytest.importorskip("iree.runtime")
from torch_mlir import fx  # noqa: E402
from torch_mlir.fx import OutputType  # noqa: E402

from spattern.models import build  # noqa: E402
from spattern.passes.pipeline import default_pipeline, run_passes  # noqa: E402
from spattern.testing import random_plan_for  # noqa: E402

FULL = os.environ.get("SPATTERN_FULL") == "1"
MODELS = ["vgg_small", "resnet18", "resnet50", "mobilenet_v2", "vgg16_bn"]
QUICK = {("vgg_small", 1, 0.0), ("vgg_small", 8, 0.5), ("vgg_small", 64, 0.0), ("vgg_small", 64, 0.5),
         ("resnet18", 64, 0.5), ("resnet18", 1, 0.0), ("mobilenet_v2", 8, 0.0), ("resnet50", 64, 0.5)}
CASES = [(m, fb, r) for m in MODELS for fb in (1, 8, 64) for r in (0.0, 0.5)]


def compile_and_run(module, x: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    module.operation.write_bytecode(buf)
    vmfb = iree_compiler.compile_str(buf.getvalue(), target_backends=["llvm-cpu"],
                                     extra_args=["--iree-llvmcpu-target-cpu=host"])
    config = iree_runtime.Config("local-task")
    ctx = iree_runtime.SystemContext(config=config)
    ctx.add_vm_module(iree_runtime.VmModule.copy_buffer(ctx.instance, vmfb))
    return np.asarray(ctx.modules.module.main(x))


@pytest.mark.parametrize("name,filter_block,connectivity", CASES)
def test_portable_path_matches_pruned_model(name: str, filter_block: int, connectivity: float) -> None:
    if not FULL and (name, filter_block, connectivity) not in QUICK:
        pytest.skip("full matrix: SPATTERN_FULL=1")
    width = 0.125 if name in ("resnet50", "vgg16_bn") else 0.25
    model = build(name, num_classes=10, image_size=32, width=width)
    pruned, plan = random_plan_for(model, filter_block, connectivity, seed=1)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    module = fx.export_and_import(pruned, x, output_type=OutputType.LINALG_ON_TENSORS, func_name="main")
    ctx = run_passes(module, plan, default_pipeline("linalg"))
    assert ctx.stats["import-patterns"]["imported"] == len(plan.layers)
    assert "sparse_pattern" not in module.operation.get_asm(large_elements_limit=1, large_resource_limit=1)
    out = compile_and_run(module, x.numpy())
    with torch.no_grad():
        ref = pruned(x).numpy()
    err = float(np.abs(out - ref).max())
    assert err <= 1e-4 * float(np.abs(ref).max()), f"max abs error {err} vs max |output| {np.abs(ref).max()}"
