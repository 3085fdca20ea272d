"""Device targets run here and match PyTorch: arm64 under qemu, Vulkan on lavapipe (in-process and through
iree-run-module); phone-tuned Vulkan targets compile; RUN.md's local commands run; missing tools are explained.

A target is skipped only when its tool is really missing on this machine (the reason is the ToolUnavailableError
message). Under CI (the CI environment variable set) a missing tool is a failure, because CI installs everything.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import spattern
from spattern.errors import ToolUnavailableError
from spattern.models import build
from spattern.runtime import runners
from spattern.runtime.artifacts import local_commands, write_device_folder
from spattern.runtime.module import CompiledModel, load
from spattern.runtime.runners import IreeRunModuleRunner, VulkanRunner, external_runner, target_availability
from spattern.runtime.targets import get_target

REL_TOL = 1e-4  # max abs error <= REL_TOL * max |output|

# Dense zoo models at 32x32, narrow so that compiling and running under qemu stays fast.
MODELS = {
    "vgg_small": dict(width=0.25),
    "resnet18": dict(width=0.125),
    "mobilenet_v2": dict(width=0.25),
}


def require(target: str) -> None:
    """Skip (or, under CI, fail) when the target's tool is truly missing here."""
    a = target_availability(target)
    if a.runs_here:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must be able to run {target}: {a.reason}")
    pytest.skip(a.reason)


def max_err(got: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    return float(np.abs(got - ref).max()), REL_TOL * float(np.abs(ref).max())


@pytest.fixture(scope="module")
def zoo() -> dict[str, tuple[torch.nn.Module, np.ndarray, np.ndarray]]:
    """name -> (model, input, PyTorch output)."""
    out = {}
    for i, (name, kw) in enumerate(MODELS.items()):
        model = build(name, num_classes=10, image_size=32, seed=i, **kw)
        x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(100 + i))
        with torch.no_grad():
            ref = model(x).numpy()
        out[name] = (model, x.numpy(), ref)
    return out


_COMPILED: dict[tuple[str, str], CompiledModel] = {}


def compiled_for(zoo, name: str, target: str) -> CompiledModel:
    key = (name, target)
    if key not in _COMPILED:
        model, x, _ = zoo[name]
        _COMPILED[key] = spattern.compile(model, torch.from_numpy(x), target=target)
    return _COMPILED[key]


# --- numerics on each target ---------------------------------------------------------------------------------
# arm64-android is checked on two models, arm64-linux on all three (keeps the file fast under qemu).
ARM64_CASES = [("arm64-linux", n) for n in MODELS] + [("arm64-android", "vgg_small"), ("arm64-android", "resnet18")]


@pytest.mark.parametrize("target,name", ARM64_CASES)
def test_arm64_under_qemu_matches_pytorch(zoo, tmp_path, target, name):
    require(target)
    compiled = compiled_for(zoo, name, target)
    # Through the file, as a user would: save, load for the target, run.
    path = compiled.save(tmp_path / "m.vmfb")
    module = load(path, target=target)
    _, x, ref = zoo[name]
    (got,) = module.run(x)
    err, tol = max_err(got, ref)
    print(f"{target} {name}: max abs err {err:.3g} (tolerance {tol:.3g})")
    assert got.shape == ref.shape
    assert err <= tol


# mobilenet_v2's depthwise convs are right on Vulkan through the target's depthwise-conv-to-generic pre-pass
# (issue 7; the depthwise tests below show the upstream race it works around).
VULKAN_MODELS = ["vgg_small", "resnet18", "mobilenet_v2"]


@pytest.mark.parametrize("name", VULKAN_MODELS)
def test_vulkan_in_process_matches_pytorch(zoo, name):
    require("vulkan")
    compiled = compiled_for(zoo, name, "vulkan")
    _, x, ref = zoo[name]
    (got,) = compiled.run(x)  # the in-process runner: device buffers we map ourselves, no host-pointer import
    err, tol = max_err(got, ref)
    print(f"vulkan (python) {name}: max abs err {err:.3g} (tolerance {tol:.3g})")
    assert err <= tol
    (again,) = compiled.run(x)  # a second call reuses the context and gives the same numbers
    np.testing.assert_array_equal(again, got)


@pytest.mark.parametrize("name", VULKAN_MODELS)
def test_vulkan_through_iree_run_module_matches_pytorch(zoo, name):
    require("vulkan")
    compiled = compiled_for(zoo, name, "vulkan")
    _, x, ref = zoo[name]
    runner = external_runner(compiled, via="iree-run-module")
    assert isinstance(runner, IreeRunModuleRunner) and runner.device == "vulkan"
    (got,) = runner.run([x])
    err, tol = max_err(got, ref)
    print(f"vulkan (iree-run-module) {name}: max abs err {err:.3g} (tolerance {tol:.3g})")
    assert err <= tol


# (in channels, size, stride, dilation, bias): MobileNet's 3x3 stride 1 and 2, odd sizes, dilation, a bias init.
DEPTHWISE_CASES = [(8, 16, 1, 1, False), (8, 16, 2, 1, False), (32, 7, 1, 1, False), (24, 9, 2, 1, True),
                   (16, 12, 1, 2, False)]


def _depthwise(c: int, size: int, stride: int, dilation: int, bias: bool):
    """(model, input, PyTorch output) of one 3x3 depthwise conv."""
    torch.manual_seed(0)
    model = torch.nn.Conv2d(c, c, 3, stride, dilation, dilation=dilation, groups=c, bias=bias).eval()
    x = torch.randn(1, c, size, size)
    with torch.no_grad():
        ref = model(x).numpy()
    return model, x, ref


@pytest.mark.parametrize("case", DEPTHWISE_CASES, ids=lambda c: "c{}-{}x{}-s{}-d{}{}".format(c[0], c[1], c[1], *c[2:4],
                                                                                             "-bias" * c[4]))
def test_depthwise_conv_on_vulkan_matches_pytorch(case):
    require("vulkan")
    model, x, ref = _depthwise(*case)
    compiled = spattern.compile(model, x, target="vulkan")
    assert compiled.info["pass_stats"]["depthwise-conv-to-generic"] == {"rewritten": 1, "skipped": 0}
    (got,) = compiled.run(x)
    err, tol = max_err(got, ref)
    print(f"vulkan depthwise {case}: max abs err {err:.3g} (tolerance {tol:.3g})")
    assert err <= tol


def _conv_dispatch_output_maps(bytecode: bytes, target, tmp_path: Path) -> list[str]:
    """The output indexing map of each reduction linalg.generic IREE configured for the target's dispatches."""
    import re

    from spattern.runtime.compiler import compile_bytecode

    dump = tmp_path / "configs"
    compile_bytecode(bytecode, target, extra_flags=[f"--iree-hal-dump-executable-configurations-to={dump}"])
    maps = []
    for f in sorted(dump.glob("configured_*.mlir")):
        for line in f.read_text().splitlines():
            if "linalg.generic" in line and '"reduction"' in line:
                maps.append(re.search(r"(affine_map<\([^)]*\) -> \([^)]*\)>)\], iterator_types", line).group(1))
    return maps


@pytest.mark.parametrize("stride", [1, 2])
def test_upstream_iree_depthwise_conv_on_vulkan_races_without_the_rewrite(stride, tmp_path):
    """The upstream behaviour, kept visible (issue 7). IREE 3.13 generalizes `linalg.depthwise_conv_2d_nchw_chw`
    with loops (oh, ow, c, kh, kw) once the unit batch is folded, so the output map is a permutation; its SPIR-V
    BaseDistribute pipeline then distributes the output's zero fill over the threads differently from the
    reduction, with no barrier between them, and late zero stores wipe other threads' sums. The first part needs
    no device: it checks that permuted map in IREE's own dispatch, and the identity map after
    depthwise-conv-to-generic. The second part runs the raw module (the pre-pass removed from the target): on
    lavapipe about a third of the outputs come back 0. It xfails while that is so; if it passes here, IREE's race
    may be gone and the pre-pass could go (check a real GPU too: a race need not show on every device)."""
    import dataclasses

    from spattern.passes.export import export_to_linalg, module_to_bytecode
    from spattern.passes.registry import run_passes

    model, x, ref = _depthwise(8, 16, stride, 1, False)
    raw = dataclasses.replace(get_target("vulkan"), pre_passes=(), post_passes=())
    module = export_to_linalg(model, [x])
    assert _conv_dispatch_output_maps(module_to_bytecode(module), raw, tmp_path / "raw") == [
        "affine_map<(d0, d1, d2, d3, d4) -> (d2, d0, d1)>"]
    run_passes(module, None, ["depthwise-conv-to-generic"])
    assert _conv_dispatch_output_maps(module_to_bytecode(module), raw, tmp_path / "rewritten") == [
        "affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2)>"]

    require("vulkan")
    compiled = spattern.compile(model, x, target=raw)
    assert "passes" not in compiled.info
    (got,) = compiled.run(x)
    err, tol = max_err(got, ref)
    print(f"raw IREE vulkan depthwise stride {stride}: max abs err {err:.3g} (tolerance {tol:.3g})")
    if err > tol:
        pytest.xfail(f"upstream IREE race on the NCHW depthwise conv: max abs err {err:.3g} > {tol:.3g}")


class _ScaledReluPad(torch.nn.Module):
    """An elementwise op whose output is padded: IREE fuses the pad into the op's dispatch (issue 19)."""

    def __init__(self, pad: tuple[int, ...]):
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(torch.relu(x) * 1.5, self.pad)


# (input width, pad (left, right, top, bottom), whether pad-source-barrier isolates it): a low width pad of 2, 6,
# 10 ... into rows that are whole vec4s is stored misaligned by IREE's SPIR-V codegen; odd pads, rows that are
# not whole vec4s and pads of the height alone are stored right and are left alone.
PAD_CASES = [(16, (2, 2, 2, 2), True), (16, (6, 2, 1, 1), True), (12, (2, 2, 0, 0), True), (16, (1, 1, 1, 1), False),
             (14, (1, 1, 1, 1), False), (16, (3, 3, 3, 3), False), (14, (2, 2, 2, 2), False),
             (16, (0, 0, 2, 2), False)]


def _pad_case(width: int, pad: tuple[int, ...]):
    torch.manual_seed(0)
    model, x = _ScaledReluPad(pad).eval(), torch.randn(1, 6, 16, width)
    with torch.no_grad():
        return model, x, model(x).numpy()


@pytest.mark.parametrize("case", PAD_CASES, ids=lambda c: f"w{c[0]}-pad{'-'.join(map(str, c[1]))}")
def test_padded_elementwise_output_on_vulkan_matches_pytorch(case):
    require("vulkan")
    width, pad, isolated = case
    model, x, ref = _pad_case(width, pad)
    compiled = spattern.compile(model, x, target="vulkan")
    assert compiled.info["pass_stats"]["pad-source-barrier"] == ({"rewritten": 1, "skipped": 0} if isolated else
                                                                 {"rewritten": 0, "skipped": 0})
    (got,) = compiled.run(x)
    err, tol = max_err(got, ref)
    print(f"vulkan pad {case}: max abs err {err:.3g} (tolerance {tol:.3g})")
    assert err <= tol


def test_pattern_conv_before_a_dilated_conv_on_vulkan_matches_pytorch():
    """Generated models 1055 and 2007, reduced: a pattern conv with a bias (IREE moves the bias add into a
    dispatch of its own, which takes the next conv's pad) before a dilated conv (pad 2)."""
    from spattern.testing import random_plan_for

    require("vulkan")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(16, 16, 3, padding=1),
                                torch.nn.Conv2d(16, 16, 3, padding=2, dilation=2)).eval()
    x = torch.randn(1, 16, 16, 16)
    pruned, plan = random_plan_for(model, 1, 0.0, example_input=x)
    assert [layer.name for layer in plan.layers] == ["0"]
    with torch.no_grad():
        ref = pruned(x).numpy()
    compiled = spattern.compile(pruned, x, target="vulkan", plan=plan)
    assert compiled.info["pass_stats"]["pad-source-barrier"]["rewritten"] == 1
    (got,) = compiled.run(x)
    err, tol = max_err(got, ref)
    assert err <= tol, f"max abs err {err:.3g} > {tol:.3g}"


def test_upstream_iree_vulkan_stores_a_pad_2_interior_misaligned_without_the_barrier():
    """The upstream behaviour, kept visible (issue 19): without the post-pass, the interior of a width pad of 2
    comes back shifted 2 columns left. It xfails while that is so; if it passes, IREE may have fixed the
    store and the post-pass could go (check the other cases of PAD_CASES and a real GPU first)."""
    import dataclasses

    require("vulkan")
    model, x, ref = _pad_case(16, (2, 2, 2, 2))
    raw = dataclasses.replace(get_target("vulkan"), post_passes=())
    (got,) = spattern.compile(model, x, target=raw).run(x)
    err, tol = max_err(got, ref)
    print(f"raw IREE vulkan pad 2: max abs err {err:.3g} (tolerance {tol:.3g})")
    if err > tol:
        np.testing.assert_allclose(got[..., 2:-2, 2:-4], ref[..., 2:-2, 4:-2], atol=tol)  # the 2-column shift
        pytest.xfail(f"upstream IREE misaligned vec4 store into a pad's interior: max abs err {err:.3g} > {tol:.3g}")


@pytest.mark.parametrize("target", ["vulkan-adreno", "vulkan-mali"])
def test_depthwise_conv_on_phone_tuned_vulkan_targets_matches_pytorch_on_lavapipe(target):
    """The phone-tuned targets have the same race on the raw depthwise conv. Their whole models are not run on
    lavapipe (wrong numbers, subgroup size 8: see the test below), but a lone depthwise conv uses no subgroup
    operation, so its module runs here through VulkanRunner directly, past the phone-only check."""
    require("vulkan")
    model, x, ref = _depthwise(32, 16, 2, 1, False)
    compiled = spattern.compile(model, x, target=target)
    assert compiled.info["pass_stats"]["depthwise-conv-to-generic"]["rewritten"] == 1
    (got,) = VulkanRunner(compiled.vmfb, "vulkan").run([x.numpy()])
    err, tol = max_err(got, ref)
    print(f"{target} depthwise on lavapipe: max abs err {err:.3g} (tolerance {tol:.3g})")
    assert err <= tol


def test_vulkan_plain_iree_runtime_still_refuses_host_buffers(zoo):
    """Documents why VulkanRunner exists: iree.runtime's own call path imports numpy memory, which lavapipe
    refuses. If a future IREE fixes this, this test says so and the workaround can go."""
    require("vulkan")
    import iree.runtime as rt

    compiled = compiled_for(zoo, "vgg_small", "vulkan")
    runner = VulkanRunner(compiled.vmfb)
    with pytest.raises((ValueError, RuntimeError), match="minImportedHostPointerAlignment"):
        runner._fn(zoo["vgg_small"][1]).to_host()
    assert rt is not None


@pytest.mark.parametrize("target", ["vulkan-adreno", "vulkan-mali"])
def test_phone_tuned_vulkan_targets_compile_but_are_not_run_on_lavapipe(zoo, target):
    compiled = compiled_for(zoo, "vgg_small", target)
    assert len(compiled.vmfb) > 1000
    mobilenet = compiled_for(zoo, "mobilenet_v2", target)  # its 17 depthwise convs through the pre-pass
    assert mobilenet.info["pass_stats"]["depthwise-conv-to-generic"] == {"rewritten": 17, "skipped": 0}
    assert [s.shape for s in compiled.input_specs] == [(1, 3, 32, 32)]  # metadata readable without a device
    devices = runners.vulkan_devices()
    if devices and all(runners.is_software_vulkan(d) for d in devices):
        with pytest.raises(ToolUnavailableError, match="wrong numbers"):
            compiled.run(zoo["vgg_small"][1])


# --- RUN.md ----------------------------------------------------------------------------------------------------
def _run_lines(folder: Path) -> list[subprocess.CompletedProcess]:
    cmds = local_commands((folder / "RUN.md").read_text())
    assert cmds, "RUN.md has no local command block"
    return [subprocess.run(c, shell=True, cwd=folder, capture_output=True, text=True, timeout=600) for c in cmds]


@pytest.mark.parametrize("target", ["arm64-android", "vulkan"])
def test_run_md_local_commands_run_and_check_the_output(zoo, tmp_path, target):
    require(target)
    compiled = compiled_for(zoo, "vgg_small", target)
    _, x, ref = zoo["vgg_small"]
    folder = write_device_folder(compiled, tmp_path / "out", [x], expected=[ref])
    text = (folder / "RUN.md").read_text()
    assert {p.name for p in folder.iterdir()} == {"model.vmfb", "input0.npy", "expected_output0.npy", "RUN.md"}
    np.testing.assert_array_equal(np.load(folder / "input0.npy"), x)
    # The device lines name this module's function, inputs and shapes, and the target's device.
    device = "vulkan" if target == "vulkan" else "local-task"
    assert "adb push model.vmfb input0.npy expected_output0.npy" in text
    assert f"iree-run-module --module=model.vmfb --device={device} --function=main --input=@input0.npy" in text
    assert "iree-benchmark-module --module=model.vmfb" in text
    assert "1x3x32x32xf32" in text and "1x10xf32" in text
    for proc in _run_lines(folder):
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "[SUCCESS]" in proc.stdout
    # The check is real: a wrong expected output makes the same command fail.
    np.save(folder / "expected_output0.npy", ref + np.abs(ref).max())
    assert all(p.returncode != 0 for p in _run_lines(folder))


def test_run_md_without_expected_writes_outputs_that_match(zoo, tmp_path):
    require("arm64-linux")
    compiled = compiled_for(zoo, "vgg_small", "arm64-linux")
    _, x, ref = zoo["vgg_small"]
    folder = write_device_folder(compiled, tmp_path / "board", [x])
    text = (folder / "RUN.md").read_text()
    assert "scp model.vmfb input0.npy board:spattern/" in text
    for proc in _run_lines(folder):
        assert proc.returncode == 0, proc.stderr[-2000:]
    err, tol = max_err(np.load(folder / "output0.npy"), ref)
    assert err <= tol


def test_run_md_for_phone_tuned_vulkan_says_it_cannot_be_checked_here(zoo, tmp_path):
    compiled = compiled_for(zoo, "vgg_small", "vulkan-adreno")
    folder = write_device_folder(compiled, tmp_path / "adreno", [zoo["vgg_small"][1]])
    text = (folder / "RUN.md").read_text()
    assert "--device=vulkan" in text and "adb shell" in text
    assert local_commands(text) == [] and "Not checkable here" in text


def test_cli_compile_to_a_folder_writes_device_artifacts(tmp_path):
    out = tmp_path / "phone"
    proc = subprocess.run([sys.executable, "-m", "spattern", "compile", "--zoo", "vgg_small", "--num-classes", "10",
                           "--input-shape", "1,3,32,32", "--target", "arm64-android", "-o", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {"model.vmfb", "input0.npy", "RUN.md"} <= {p.name for p in out.iterdir()}
    assert "aarch64-linux-android34" not in (out / "RUN.md").read_text()  # commands, not compiler flags
    assert np.load(out / "input0.npy").shape == (1, 3, 32, 32)


# --- missing tools are explained -------------------------------------------------------------------------------
def _vmfb(zoo, target: str) -> CompiledModel:
    c = compiled_for(zoo, "vgg_small", target)
    return CompiledModel(vmfb=c.vmfb, target=target)  # a fresh object: no cached runner


def test_missing_qemu_names_the_package(zoo, monkeypatch):
    monkeypatch.setattr(runners.shutil, "which", lambda name: None)
    module = _vmfb(zoo, "arm64-linux")
    with pytest.raises(ToolUnavailableError, match="qemu-user-static"):
        module.run(zoo["vgg_small"][1])
    assert not target_availability("arm64-android").runs_here


def test_missing_cross_libc_names_the_package(zoo, monkeypatch, tmp_path):
    monkeypatch.setattr(runners, "AARCH64_SYSROOT", tmp_path)
    if runners.shutil.which("qemu-aarch64-static") is None:
        pytest.skip("qemu is missing, so the sysroot check is never reached")
    with pytest.raises(ToolUnavailableError, match="libc6-arm64-cross"):
        runners.qemu()


def test_missing_aarch64_runtime_names_the_setup_script(zoo, monkeypatch, tmp_path):
    monkeypatch.setenv("SPATTERN_AARCH64_RUNTIME", str(tmp_path))
    with pytest.raises(ToolUnavailableError, match="setup_aarch64_runtime.sh"):
        runners.aarch64_tool()
    assert "setup_aarch64_runtime.sh" in target_availability("arm64-linux").reason or \
        not target_availability("arm64-linux").runs_here


def test_missing_vulkan_driver_names_the_package(zoo, monkeypatch):
    monkeypatch.setattr(runners, "vulkan_devices", lambda: ())
    module = _vmfb(zoo, "vulkan")
    assert [s.shape for s in module.input_specs] == [(1, 3, 32, 32)]  # the signature needs no driver
    with pytest.raises(ToolUnavailableError, match="mesa-vulkan-drivers"):
        module.run(zoo["vgg_small"][1])
    with pytest.raises(ToolUnavailableError, match="mesa-vulkan-drivers"):
        external_runner(module, via="iree-run-module")
    assert not target_availability("vulkan").runs_here


def test_device_folder_needs_no_runtime_tools(zoo, monkeypatch, tmp_path):
    """Writing the folder for a phone must work on a machine without qemu or Vulkan."""
    monkeypatch.setattr(runners.shutil, "which", lambda name: None)
    monkeypatch.setattr(runners, "vulkan_devices", lambda: ())
    for target in ("arm64-android", "vulkan"):
        folder = write_device_folder(_vmfb(zoo, target), tmp_path / target, [zoo["vgg_small"][1]])
        assert (folder / "model.vmfb").stat().st_size > 1000
