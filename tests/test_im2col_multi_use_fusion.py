"""IREE 3.13 miscompiles a multi-use elementwise op whose consumer reads it through a strided map, which
`--iree-global-opt-use-im2col-for-convs` creates for 1x1 stride-2 convs (bench/results/im2col-investigation.txt).

The bug (IREE's, not the microkernels'): `iree-dispatch-creation-fuse-multi-use-elementwise-producer` fuses an
elementwise op `y = f(x)` that has two users into the user that reads it with the map (c, 2h, 2w) (the im2col copy of
a 1x1 stride-2 conv's input), and keeps `y` as a second result of the fused op with that same strided map. The
fused op iterates over the subsampled grid only, so 3/4 of `y` is never written; `y`'s other user (in spattern the
`tensor.pad` that feeds a pattern microkernel) reads garbage. `--iree-dispatch-creation-fuse-multi-use=false`
avoids it. spattern's `strided-1x1-to-slice` pre-pass (host and arm64 targets) turns strided 1x1 convs into a
subsampling plus a stride-1 conv before IREE sees them, which also takes away the strided im2col copy, so
pattern models compiled with the im2col flag are right; the test below keeps that so.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from spattern.runtime.targets import get_target
from conftest import require_microkernels  # noqa: E402

iree_compiler = pytest.importorskip("iree.compiler")
iree_runtime = pytest.importorskip("iree.runtime")

IM2COL = "--iree-global-opt-use-im2col-for-convs"

# relu(2x+1) used by a zero pad and by the stride-2 NCHW -> HWC subsampling copy that im2col makes of a 1x1 stride-2
# conv's input: plain linalg, no spattern op in it.
REPRO = """
func.func @main(%x: tensor<4x8x8xf32>) -> (tensor<4x10x10xf32>, tensor<4x4x4xf32>) {
  %c0 = arith.constant 0.0 : f32
  %c1 = arith.constant 1.0 : f32
  %c2 = arith.constant 2.0 : f32
  %e = tensor.empty() : tensor<4x8x8xf32>
  %y = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>,
                                        affine_map<(d0, d1, d2) -> (d0, d1, d2)>],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x : tensor<4x8x8xf32>) outs(%e : tensor<4x8x8xf32>) {
  ^bb0(%in: f32, %out: f32):
    %a = arith.mulf %in, %c2 : f32
    %b = arith.addf %a, %c1 : f32
    %r = arith.maximumf %b, %c0 : f32
    linalg.yield %r : f32
  } -> tensor<4x8x8xf32>
  %es = tensor.empty() : tensor<4x4x4xf32>
  %s = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d2, d0 * 2, d1 * 2)>,
                                        affine_map<(d0, d1, d2) -> (d0, d1, d2)>],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%y : tensor<4x8x8xf32>) outs(%es : tensor<4x4x4xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<4x4x4xf32>
  %ep = tensor.empty() : tensor<4x10x10xf32>
  %f = linalg.fill ins(%c0 : f32) outs(%ep : tensor<4x10x10xf32>) -> tensor<4x10x10xf32>
  %p = tensor.insert_slice %y into %f[0, 1, 1] [4, 8, 8] [1, 1, 1] : tensor<4x8x8xf32> into tensor<4x10x10xf32>
  return %p, %s : tensor<4x10x10xf32>, tensor<4x4x4xf32>
}
"""


def _run(vmfb: bytes, x: np.ndarray) -> list[np.ndarray]:
    ctx = iree_runtime.SystemContext(config=iree_runtime.Config("local-task"))
    ctx.add_vm_module(iree_runtime.VmModule.copy_buffer(ctx.instance, vmfb))
    out = ctx.modules.module.main(x)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def _repro_errors(extra: list[str]) -> tuple[float, float]:
    vmfb = iree_compiler.compile_str(REPRO, target_backends=["llvm-cpu"],
                                     extra_args=["--iree-llvmcpu-target-cpu=host", *extra])
    x = np.random.default_rng(0).standard_normal((4, 8, 8)).astype(np.float32)
    y = np.maximum(2 * x + 1, 0)
    p, s = _run(vmfb, x)
    return (float(np.abs(p - np.pad(y, ((0, 0), (1, 1), (1, 1)))).max()),
            float(np.abs(s - y[:, ::2, ::2].transpose(1, 2, 0)).max()))


@pytest.mark.xfail(strict=True, reason="IREE 3.13 bug: multi-use elementwise fusion into a strided-map consumer "
                   "leaves 3/4 of the other use's input unwritten. XPASS = IREE fixed it: re-check "
                   "bench/results/im2col-investigation.txt and the README's note on the im2col flag.")
def test_iree_multi_use_fusion_into_strided_consumer():
    assert _repro_errors([]) == (0.0, 0.0)


def test_iree_repro_is_right_without_multi_use_fusion():
    assert _repro_errors(["--iree-dispatch-creation-fuse-multi-use=false"]) == (0.0, 0.0)


class _Block(nn.Module):
    """An elementwise op, then a ResNet basic block with a 1x1 stride-2 downsample: the shape of ResNet-18's
    layer2[0] that came out wrong (the elementwise output feeds both the stride-2 pattern conv's pad and the 1x1
    stride-2 conv). The downsample comes first, as in spattern.models.resnet: IREE fuses the elementwise op into
    the strided copy only when that copy precedes the op's other use."""

    def __init__(self, c: int = 16, f: int = 32):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, f, 3, 2, 1, bias=False), nn.BatchNorm2d(f)
        self.conv2, self.bn2 = nn.Conv2d(f, f, 3, 1, 1, bias=False), nn.BatchNorm2d(f)
        self.downsample = nn.Sequential(nn.Conv2d(c, f, 1, 2, bias=False), nn.BatchNorm2d(f))

    def forward(self, x):
        x = torch.relu(x * 2 + 1)
        identity = self.downsample(x)
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + identity)


@pytest.mark.parametrize("pre_passes", [True, False], ids=["host-pre-passes", "no-pre-passes"])
def test_pattern_block_with_im2col_flag(pre_passes):
    require_microkernels("x86_64")
    from spattern.pipeline import new_state, run_pipeline
    from spattern.runtime.compiler import compile_bytecode
    from spattern.runtime.module import CompiledModel
    from spattern.testing import random_plan_for

    torch.manual_seed(0)
    model = _Block().eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    pruned, plan = random_plan_for(model, filter_block=1, connectivity=0.0, seed=0)
    x = torch.randn(1, 16, 16, 16)
    with torch.no_grad():
        ref = pruned(x).numpy()
    target = get_target("host")
    if not pre_passes:
        target = dataclasses.replace(target, pre_passes=())
    state = new_state(pruned, [x], target, plan=plan, passes=None, lowering="auto", dump_dir=None)
    run_pipeline(state, stop_after="finalize")
    vmfb = compile_bytecode(state.bytecode, target, extra_flags=[IM2COL])
    (got,) = CompiledModel(vmfb=vmfb, target=target, threads=2).run(x.numpy())
    err = float(np.abs(got - ref).max() / np.abs(ref).max())
    if pre_passes:
        assert err <= 1e-4, f"relative error {err:.2e} with {IM2COL} and the host pre-passes"
    else:  # documents the IREE bug on the path spattern no longer takes (see the module docstring)
        assert err > 1e-2, f"relative error {err:.2e}: IREE may have fixed the multi-use fusion bug"
