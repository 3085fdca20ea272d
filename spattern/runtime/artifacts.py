"""A folder a user copies to a device: the module, sample inputs, and RUN.md with the exact commands.

`spattern compile ... --target arm64-android -o out/` ends here. RUN.md holds the `adb push` / `adb shell
iree-run-module` / `iree-benchmark-module` lines for this very module (function, input files and shapes, device
flag of the target), and the commands that run the same module on this machine (qemu for arm64, lavapipe for
Vulkan). The test suite parses the "Run it here" block and runs it, so the file cannot drift from what works.
"""

from __future__ import annotations

import io
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..fileio import atomic_directory
from .runners import (AARCH64_SYSROOT, FUNCTION, PHONE_ONLY_VULKAN, aarch64_runtime_dir, host_tool,
                      module_declaration)
from .targets import Target

MODULE_NAME = "model.vmfb"
ANDROID_DIR = "/data/local/tmp/spattern"
LOCAL_HEADING = "## Run it here"  # tests parse the ```sh block under this heading


@dataclass(frozen=True)
class ModuleFiles:
    """The file names a RUN.md refers to, relative to the folder."""

    module: str
    inputs: tuple[str, ...]
    expected: tuple[str, ...]  # reference outputs (may be empty)
    input_types: tuple[str, ...]  # IREE's shape-type spelling, e.g. 1x3x32x32xf32
    output_types: tuple[str, ...]


def _iree_types(declaration: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    import re

    m = re.search(r"\((.*?)\)\s*->\s*\((.*)\)", declaration)
    if not m:
        return (), ()
    return tuple(re.findall(r"tensor<([^>]*)>", m.group(1))), tuple(re.findall(r"tensor<([^>]*)>", m.group(2)))


def run_module_args(files: ModuleFiles, device: str, threshold: float | None = None) -> list[str]:
    """The iree-run-module arguments for this module (paths relative to the folder)."""
    args = [f"--module={files.module}", f"--device={device}", f"--function={FUNCTION}"]
    args += [f"--input=@{p}" for p in files.inputs]
    if files.expected:
        args += [f"--expected_output=@{p}" for p in files.expected]
        if threshold is not None:
            args.append(f"--expected_f32_threshold={threshold:.3g}")
    else:
        args += [f"--output=@output{i}.npy" for i in range(len(files.output_types))]
    return args


def benchmark_args(files: ModuleFiles, device: str) -> list[str]:
    args = [f"--module={files.module}", f"--device={device}", f"--function={FUNCTION}"]
    return args + [f"--input=@{p}" for p in files.inputs] + ["--benchmark_repetitions=10"]


def _sh(args: Sequence[str]) -> str:
    return shlex.join(list(args))


def _device_section(target: Target, files: ModuleFiles, device: str, threshold: float | None) -> list[str]:
    push = [files.module, *files.inputs, *files.expected]
    run = _sh(["./iree-run-module", *run_module_args(files, device, threshold)])
    bench = _sh(["./iree-benchmark-module", *benchmark_args(files, device)])
    if target.name == "arm64-linux":
        return [
            "## On the device (an ARM64 Linux board)",
            "",
            "The board's own `pip install iree-base-runtime==3.13.0` provides `iree-run-module` and",
            "`iree-benchmark-module` (the same aarch64 binaries this machine runs under qemu; they live in the",
            "package's `iree/_runtime_libs/`).",
            "",
            "```sh",
            f"scp {' '.join(push)} board:spattern/",
            f"ssh board 'cd spattern && {run.replace('./iree-run-module', 'iree-run-module')}'",
            f"ssh board 'cd spattern && {bench.replace('./iree-benchmark-module', 'iree-benchmark-module')}'",
            "```",
            "",
        ]
    where = "the phone's GPU through Vulkan" if target.driver == "vulkan" else "the phone's CPU (local-task)"
    return [
        f"## On an Android phone ({where})",
        "",
        "`iree-run-module` and `iree-benchmark-module` for Android are built from the IREE 3.13 runtime with the",
        "NDK (`cmake -DCMAKE_TOOLCHAIN_FILE=$NDK/build/cmake/android.toolchain.cmake -DANDROID_ABI=arm64-v8a",
        "-DANDROID_PLATFORM=android-34 -DIREE_BUILD_COMPILER=OFF`); the module format must match IREE 3.13.",
        "",
        "```sh",
        f"adb shell mkdir -p {ANDROID_DIR}",
        f"adb push iree-run-module iree-benchmark-module {ANDROID_DIR}/",
        f"adb push {' '.join(push)} {ANDROID_DIR}/",
        f"adb shell 'cd {ANDROID_DIR} && {run}'",
        f"adb shell 'cd {ANDROID_DIR} && {bench}'",
        *([] if files.expected else [f"adb pull {ANDROID_DIR}/output0.npy ."]),
        "```",
        "",
        "Threads: add `--task_topology_max_group_count=4` (CPU only) to pin the worker count, e.g. to the big"
        " cores." if target.driver != "vulkan" else "",
        "",
    ]


def _local_commands(target: Target, files: ModuleFiles, device: str, threshold: float | None) -> list[str]:
    """Commands that run the module on this machine from inside the folder, or [] if it cannot be checked here."""
    args = run_module_args(files, device, threshold)
    if target.runner == "qemu-aarch64":
        tool = aarch64_runtime_dir() / "iree-run-module"
        return [_sh(["qemu-aarch64-static", "-L", str(AARCH64_SYSROOT), str(tool), *args])]
    if target.name in PHONE_ONLY_VULKAN:
        return []
    return [_sh([str(host_tool("iree-run-module")), *args])]


def _local_section(target: Target, files: ModuleFiles, device: str, threshold: float | None) -> list[str]:
    cmds = _local_commands(target, files, device, threshold)
    if not cmds:
        return [LOCAL_HEADING, "",
                f"Not checkable here: {target.name} is tuned for a phone GPU and gives wrong numbers on lavapipe",
                "(CPU Vulkan, subgroup size 8). Compile for target `vulkan` to check the model on this machine.", ""]
    how = {"qemu-aarch64": "the aarch64 `iree-run-module` under qemu (set up by `bash "
                           "scripts/setup_aarch64_runtime.sh`)",
           }.get(target.runner, "the host `iree-run-module`" + (" on lavapipe or a local GPU"
                                                                  if target.driver == "vulkan" else ""))
    check = (" It compares the result with the expected output and exits non-zero if they differ."
             if files.expected else "")
    return [LOCAL_HEADING, "", f"From this folder, with {how}.{check}", "", "```sh", *cmds, "```", ""]


def render_run_md(target: Target, declaration: str, files: ModuleFiles, threshold: float | None = None) -> str:
    device = "vulkan" if target.driver == "vulkan" else "local-task"
    ins = ", ".join(f"`{p}` ({t})" for p, t in zip(files.inputs, files.input_types))
    outs = ", ".join(files.output_types)
    lines = [
        f"# Running {files.module} ({target.name})",
        "",
        f"Target: {target.name} ({target.description}).",
        f"Function: `@{FUNCTION}`, `{declaration}`.",
        f"Inputs: {ins}. Outputs: {outs}.",
        f"IREE runtime: 3.13.0, `--device={device}`.",
        "",
        *_device_section(target, files, device, threshold),
        *_local_section(target, files, device, threshold),
    ]
    return "\n".join(lines).rstrip() + "\n"


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def write_device_folder(compiled: Any, folder: str | Path, samples: Sequence[Any],
                        expected: Sequence[Any] | None = None) -> Path:
    """Write `model.vmfb`, `input0.npy`... and RUN.md into `folder` (replaced whole, atomically).

    `samples` are the inputs (checked against the module's signature). `expected`, if given (e.g. the PyTorch
    model's outputs on the samples), is written as `expected_output0.npy`... and the commands then check the
    result on the device with iree-run-module's `--expected_output` at 1e-4 x max|expected|."""
    target = compiled.target
    declaration = module_declaration(compiled.vmfb)
    arrays = compiled.check_inputs(list(samples))
    in_types, out_types = _iree_types(declaration)
    ref = [np.asarray(e.detach().cpu().numpy() if hasattr(e, "detach") else e) for e in (expected or [])]
    if ref and len(ref) != len(out_types):
        raise InputError(f"expected has {len(ref)} array(s), the module returns {len(out_types)}")
    files = ModuleFiles(MODULE_NAME, tuple(f"input{i}.npy" for i in range(len(arrays))),
                        tuple(f"expected_output{i}.npy" for i in range(len(ref))), in_types, out_types)
    threshold = max(1e-4 * max(float(np.abs(r).max()) for r in ref), 1e-7) if ref else None
    text = render_run_md(target, declaration, files, threshold)
    folder = Path(folder)
    with atomic_directory(folder) as tmp:
        (tmp / files.module).write_bytes(compiled.vmfb)
        for name, a in zip(files.inputs, arrays):
            (tmp / name).write_bytes(_npy_bytes(a))
        for name, r in zip(files.expected, ref):
            (tmp / name).write_bytes(_npy_bytes(r.astype(np.float32) if r.dtype == np.float64 else r))
        (tmp / "RUN.md").write_text(text)
    return folder


def local_commands(run_md: str) -> list[str]:
    """The shell lines of RUN.md's "Run it here" block (what the tests execute)."""
    section = run_md.split(LOCAL_HEADING, 1)
    if len(section) < 2 or "```sh" not in section[1]:
        return []
    block = section[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line for line in block.strip().splitlines() if line.strip()]
