"""Running modules the way a phone would, on this machine: ARM64 under qemu, Vulkan on lavapipe.

`CompiledModel.run` hands every target that is not in-process local-task to `external_runner`, which returns one
of the runners below. Each has `run(list of numpy) -> list of numpy` and `declaration() -> str` (the module's
`iree.abi.declaration` of @main, read from the .vmfb itself, so no device is needed to know the signature).

- ARM64 (`arm64-android`, `arm64-linux`): the aarch64 `iree-run-module` from the official `iree-base-runtime`
  wheel (fetched by `scripts/setup_aarch64_runtime.sh`) runs under `qemu-aarch64-static -L /usr/aarch64-linux-gnu`;
  that is the same binary and the same command a user runs on the device (see `artifacts.py` / RUN.md).
- Vulkan: in-process `iree.runtime` with the `vulkan` driver. Its Python wrapper imports host numpy buffers,
  which lavapipe (and several phone drivers) refuse (minImportedHostPointerAlignment 4096), so inputs are copied
  into device buffers that we allocate and map ourselves, and outputs come back through a mapped staging buffer.
  `IreeRunModuleRunner.vulkan(...)` is the second path, through the host `iree-run-module --device=vulkan`.

Tools that are missing raise ToolUnavailableError naming the package or set-up command, never a crash deep
inside a subprocess; `target_availability` says ahead of time whether a target can run here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ModelLoadError, ToolUnavailableError
from .targets import TARGETS, Target, get_target
from .trap_guard import is_trap, trap_message

FUNCTION = "main"
AARCH64_SYSROOT = Path("/usr/aarch64-linux-gnu")
QEMU_NAMES = ("qemu-aarch64-static", "qemu-aarch64")
# Targets whose tuned SPIR-V gives wrong numbers on lavapipe (subgroup size 8): compile them, run them on a phone.
PHONE_ONLY_VULKAN = {"vulkan-adreno", "vulkan-mali"}
SOFTWARE_VULKAN_MARKERS = ("llvmpipe", "lavapipe", "swiftshader")

_SETUP_AARCH64 = "bash scripts/setup_aarch64_runtime.sh"
_APT_QEMU = "apt-get install qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross"
_APT_VULKAN = "apt-get install mesa-vulkan-drivers libvulkan1"


# --- where the tools are -------------------------------------------------------------------------------------
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def aarch64_runtime_dir() -> Path:
    """Folder holding the aarch64 iree-run-module; `SPATTERN_AARCH64_RUNTIME` overrides the set-up's location
    (for an installed package, whose repository .cache/ is not beside it)."""
    env = os.environ.get("SPATTERN_AARCH64_RUNTIME")
    if env:
        return Path(env)
    return repo_root() / ".cache" / "aarch64" / "iree" / "_runtime_libs"


def aarch64_tool(name: str = "iree-run-module") -> Path:
    path = aarch64_runtime_dir() / name
    if not path.is_file():
        raise ToolUnavailableError(
            f"the aarch64 IREE runtime ({name}) is not at {path}; fetch it with `{_SETUP_AARCH64}` "
            f"(downloads the iree-base-runtime 3.13.0 manylinux aarch64 wheel), or point SPATTERN_AARCH64_RUNTIME "
            f"at a folder holding an aarch64 {name}")
    return path


def qemu() -> Path:
    """qemu user-mode for aarch64 plus the cross glibc/libstdc++ that the aarch64 iree-run-module links."""
    found = next((shutil.which(n) for n in QEMU_NAMES if shutil.which(n)), None)
    if found is None:
        raise ToolUnavailableError(f"qemu-aarch64-static is not installed; arm64 modules run here under qemu: "
                                   f"`{_APT_QEMU}` (Debian package qemu-user-static)")
    for lib in ("lib/ld-linux-aarch64.so.1", "lib/libstdc++.so.6"):
        if not (AARCH64_SYSROOT / lib).exists():
            pkg = "libstdc++6-arm64-cross" if "stdc++" in lib else "libc6-arm64-cross"
            raise ToolUnavailableError(f"{AARCH64_SYSROOT / lib} is missing (Debian package {pkg}); the aarch64 "
                                       f"iree-run-module needs it under qemu: `{_APT_QEMU}`")
    return Path(found)


def host_tool(name: str = "iree-run-module") -> Path:
    """A tool of the host iree-base-runtime wheel (iree-run-module, iree-benchmark-module, iree-dump-module)."""
    import iree.runtime

    path = Path(iree.runtime.__file__).resolve().parents[1] / "_runtime_libs" / name
    if not path.is_file():
        found = shutil.which(name)
        if found:
            return Path(found)
        raise ToolUnavailableError(f"{name} is not in the iree-base-runtime wheel at {path.parent}; reinstall it "
                                   f"with `pip install iree-base-runtime==3.13.0`")
    return path


@lru_cache(maxsize=1)
def vulkan_devices() -> tuple[str, ...]:
    """Names of the Vulkan devices IREE sees (empty when there is no driver or no ICD)."""
    try:
        import iree.runtime as rt

        return tuple(d.get("name", "").split(" (")[0] or d.get("path", "?")
                     for d in rt.get_driver("vulkan").query_available_devices())
    except (RuntimeError, ValueError):
        return ()


def is_software_vulkan(name: str) -> bool:
    return any(m in name.lower() for m in SOFTWARE_VULKAN_MARKERS)


def require_vulkan(target: Target) -> str:
    """The device name a Vulkan target runs on here, or ToolUnavailableError saying why it cannot."""
    devices = vulkan_devices()
    if not devices:
        raise ToolUnavailableError(f"no Vulkan device found; install a Vulkan driver (on a machine without a GPU, "
                                   f"lavapipe: `{_APT_VULKAN}`)")
    if target.name in PHONE_ONLY_VULKAN and all(is_software_vulkan(d) for d in devices):
        raise ToolUnavailableError(
            f"target {target.name!r} is tuned for a phone GPU and gives wrong numbers on {devices[0]} (a CPU "
            f"Vulkan emulation with subgroup size 8); run it on the phone with the commands in RUN.md "
            f"(`spattern compile ... -o folder/`), or compile for target 'vulkan' to check the model here")
    return devices[0]


# --- what can run here ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Availability:
    """Whether a target's modules can run on this machine, through what, and if not, what to install."""

    target: str
    runs_here: bool
    how: str  # how it runs here (or would)
    reason: str = ""  # why not, with the package or command that fixes it


def target_availability(target: str | Target) -> Availability:
    target = get_target(target)
    if target.runner == "python" and target.driver == "local-task":
        return Availability(target.name, True, "iree.runtime in this process (local-task)")
    if target.runner == "qemu-aarch64":
        how = "aarch64 iree-run-module under qemu-aarch64-static"
        try:
            qemu()
            aarch64_tool()
        except ToolUnavailableError as e:
            return Availability(target.name, False, how, str(e))
        return Availability(target.name, True, how)
    if target.driver == "vulkan":
        try:
            dev = require_vulkan(target)
        except ToolUnavailableError as e:
            return Availability(target.name, False, "compile only here (run on the phone)", str(e))
        label = " (CPU-emulated GPU)" if is_software_vulkan(dev) else ""
        return Availability(target.name, True, f"Vulkan on {dev}{label}, in-process or iree-run-module")
    return Availability(target.name, False, "unknown runner", f"runner {target.runner!r} is not supported here")


def all_availability() -> list[Availability]:
    return [target_availability(t) for t in TARGETS.values()]


# --- module metadata -----------------------------------------------------------------------------------------
def module_declaration(vmfb: bytes, function: str = FUNCTION) -> str:
    """@main's `iree.abi.declaration`, read with the host runtime (loading a module needs no device, so this works
    for arm64 and Vulkan modules alike)."""
    import iree.runtime as rt

    try:
        module = rt.VmModule.copy_buffer(rt.VmInstance(), vmfb)
    except RuntimeError as e:
        raise ModelLoadError(f"this is not a module the IREE 3.13 runtime can read: {e}") from None
    fn = module.lookup_function(function)
    if fn is None:
        raise ModelLoadError(f"the module has no function @{function}")
    return fn.reflection.get("iree.abi.declaration", "")


def _output_count(declaration: str) -> int:
    from .module import parse_signature

    return len(parse_signature(declaration)[1])


def _save_npy(path: Path, array: np.ndarray) -> None:
    np.save(path, np.ascontiguousarray(array), allow_pickle=False)


# --- iree-run-module (qemu for arm64, or the host binary for Vulkan) -----------------------------------------
@dataclass
class IreeRunModuleRunner:
    """Runs @main through an `iree-run-module` process: inputs and outputs pass as .npy files, exactly as on a
    device. `prefix` is what runs the binary (qemu and its sysroot for aarch64; nothing for a host binary)."""

    vmfb: bytes
    tool: Path
    device: str  # --device= value: local-task or vulkan
    prefix: tuple[str, ...] = ()
    threads: int | None = None
    timeout_s: float = 600.0

    @classmethod
    def qemu_aarch64(cls, vmfb: bytes, threads: int | None = None) -> "IreeRunModuleRunner":
        prefix = (str(qemu()), "-L", str(AARCH64_SYSROOT))
        return cls(vmfb, aarch64_tool(), "local-task", prefix, threads)

    @classmethod
    def vulkan(cls, vmfb: bytes, target: str | Target = "vulkan") -> "IreeRunModuleRunner":
        require_vulkan(get_target(target))
        return cls(vmfb, host_tool(), "vulkan")

    def declaration(self) -> str:
        return module_declaration(self.vmfb)

    def command(self, module: Path, inputs: Sequence[Path], outputs: Sequence[Path]) -> list[str]:
        cmd = [*self.prefix, str(self.tool), f"--module={module}", f"--device={self.device}",
               f"--function={FUNCTION}"]
        if self.threads and self.device == "local-task":
            cmd.append(f"--task_topology_max_group_count={self.threads}")
        cmd += [f"--input=@{p}" for p in inputs]
        cmd += [f"--output=@{p}" for p in outputs]
        return cmd

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        n_out = _output_count(self.declaration())
        with tempfile.TemporaryDirectory(prefix="spattern-run-") as tmp:
            d = Path(tmp)
            module = d / "model.vmfb"
            module.write_bytes(self.vmfb)
            in_paths = [d / f"input{i}.npy" for i in range(len(inputs))]
            for p, a in zip(in_paths, inputs):
                _save_npy(p, a)
            out_paths = [d / f"output{i}.npy" for i in range(n_out)]
            cmd = self.command(module, in_paths, out_paths)
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                raise ToolUnavailableError(f"iree-run-module did not finish in {self.timeout_s:.0f} s: "
                                           f"{' '.join(cmd)}") from None
            if is_trap(proc.returncode):
                where = f"the module (iree-run-module --device={self.device})"
                raise ModelLoadError(trap_message(where, -proc.returncode))
            if proc.returncode != 0:
                err = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
                raise ModelLoadError(f"iree-run-module --device={self.device} failed (exit {proc.returncode}):\n"
                                     f"{err}\ncommand: {' '.join(cmd)}")
            return [np.load(p, allow_pickle=False) for p in out_paths]


def QemuAarch64Runner(compiled: Any) -> IreeRunModuleRunner:  # noqa: N802 (a named constructor)
    """The arm64 runner: the aarch64 iree-run-module under qemu-aarch64-static."""
    return IreeRunModuleRunner.qemu_aarch64(compiled.vmfb, compiled.threads)


# --- Vulkan in process ---------------------------------------------------------------------------------------
class VulkanRunner:
    """@main on the Vulkan driver inside this process, without host-pointer import.

    iree.runtime's defaults import numpy memory into the device (inputs) and import a numpy array as the copy
    target (outputs); Vulkan needs such pointers 4096-aligned and refuses them. We allocate a host-visible device
    buffer, write the input through a mapping, and read each result back through a mapped staging buffer."""

    def __init__(self, vmfb: bytes, target: str | Target = "vulkan") -> None:
        import iree.runtime as rt

        from .module import _device

        self.target = get_target(target)
        self.device_name = require_vulkan(self.target)
        self._rt = rt
        self.vmfb = vmfb
        self.device = _device("vulkan", None)
        try:
            self._ctx = rt.SystemContext(config=rt.Config(device=self.device))
            module = rt.VmModule.copy_buffer(self._ctx.instance, vmfb)
            self._ctx.add_vm_module(module)
        except RuntimeError as e:
            raise ModelLoadError(f"IREE could not load this module on Vulkan ({self.device_name}): {e}") from None
        self._declaration = module.lookup_function(FUNCTION).reflection.get("iree.abi.declaration", "")
        self._fn = self._ctx.modules.module[FUNCTION]

    def declaration(self) -> str:
        return self._declaration

    def _to_device(self, array: np.ndarray) -> Any:
        rt = self._rt
        mt = int(rt.MemoryType.DEVICE_LOCAL) | int(rt.MemoryType.HOST_VISIBLE) | int(rt.MemoryType.HOST_COHERENT)
        usage = int(rt.BufferUsage.DEFAULT) | int(rt.BufferUsage.MAPPING)
        array = np.ascontiguousarray(array)
        buf = self.device.allocator.allocate_buffer(memory_type=mt, allowed_usage=usage,
                                                    allocation_size=max(array.nbytes, 4))
        mapped = buf.map()
        mapped.asarray(array.shape, array.dtype)[...] = array
        del mapped
        from iree.runtime.array_interop import map_dtype_to_element_type

        element_type = map_dtype_to_element_type(array.dtype)
        if element_type is None:
            raise ModelLoadError(f"IREE has no element type for numpy dtype {array.dtype}")
        return rt.HalBufferView(buf, array.shape, element_type)

    def _to_host(self, result: Any) -> np.ndarray:
        rt = self._rt
        view = result._buffer_view if hasattr(result, "_buffer_view") else result
        src = view.get_buffer()
        staging = self.device.allocator.allocate_buffer(
            memory_type=int(rt.MemoryType.HOST_LOCAL) | int(rt.MemoryType.DEVICE_VISIBLE),
            allowed_usage=int(rt.BufferUsage.TRANSFER_TARGET) | int(rt.BufferUsage.MAPPING_SCOPED),
            allocation_size=src.byte_length())
        sem = self.device.create_semaphore(0)
        self.device.queue_copy(src, staging, wait_semaphores=rt.HalFence.create_at(sem, 0),
                               signal_semaphores=rt.HalFence.create_at(sem, 1))
        rt.HalFence.create_at(sem, 1).wait()
        dtype = rt.HalElementType.map_to_dtype(view.element_type)
        return np.array(staging.map().asarray(tuple(view.shape), dtype))  # a copy that outlives the mapping

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        result = self._fn(*[self._to_device(a) for a in inputs])
        results = result if isinstance(result, (list, tuple)) else [result]
        return [self._to_host(r) for r in results]


# --- the entry point CompiledModel uses ----------------------------------------------------------------------
VIA = ("auto", "python", "iree-run-module")


def external_runner(compiled: Any, via: str | None = None) -> Any:
    """The runner for a compiled module whose target is not in-process local-task. `via` (or the environment
    variable SPATTERN_VULKAN_VIA) picks the Vulkan path: "python" (default) or "iree-run-module"."""
    target = get_target(compiled.target)
    via = via or os.environ.get("SPATTERN_VULKAN_VIA", "auto")
    if via not in VIA:
        raise ValueError(f"via must be one of {VIA}, got {via!r}")
    if target.runner == "qemu-aarch64":
        return QemuAarch64Runner(compiled)
    if target.driver == "vulkan":
        if via == "iree-run-module":
            return IreeRunModuleRunner.vulkan(compiled.vmfb, target)
        return VulkanRunner(compiled.vmfb, target)
    raise ToolUnavailableError(f"target {target.name!r} (runner {target.runner!r}, driver {target.driver!r}) has "
                               f"no runner on this machine")
