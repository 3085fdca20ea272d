"""The run stage: a compiled .vmfb, its target, and a typed way to call it.

The function signature (input shapes and dtypes) is read from the module's own reflection metadata, so a module
loaded from disk checks its inputs exactly as a freshly compiled one does.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError, ModelLoadError
from ..fileio import atomic_write_bytes
from .targets import TARGETS, Target, get_target

FUNCTION = "main"

_DTYPES = {"f32": np.float32, "f16": np.float16, "f64": np.float64, "i64": np.int64, "i32": np.int32,
           "i8": np.int8, "i1": np.bool_}


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: np.dtype

    def __str__(self) -> str:
        return f"{'x'.join(map(str, self.shape))} {np.dtype(self.dtype).name}"


def parse_signature(declaration: str) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Inputs and outputs from IREE's `iree.abi.declaration` reflection string."""
    m = re.search(r"\((.*?)\)\s*->\s*\((.*)\)", declaration)
    if not m:
        return [], []

    def specs(text: str) -> list[TensorSpec]:
        out = []
        for dims, elem in re.findall(r"tensor<((?:\d+x)*)(\w+)>", text):
            shape = tuple(int(d) for d in dims.split("x") if d)
            out.append(TensorSpec(shape, np.dtype(_DTYPES.get(elem, np.float32))))
        return out

    return specs(m.group(1)), specs(m.group(2))


_DEVICES: dict[tuple[str, int], Any] = {}


def _device(driver: str, threads: int | None):
    """One HAL device per (driver, thread count) per process. IREE reads the task topology flag when a driver
    is first created, so the first call decides the thread count of the local-task driver in this process."""
    import iree.runtime as rt

    key = (driver, threads or 0)
    if key not in _DEVICES:
        if driver == "local-task" and threads:
            rt.flags.parse_flags(f"--task_topology_max_group_count={threads}")
        _DEVICES[key] = rt.get_driver(driver).create_default_device()
    return _DEVICES[key]


@dataclass
class CompiledModel:
    """A compiled module for one target. `run` takes and returns numpy arrays."""

    vmfb: bytes
    target: Target
    threads: int | None = None
    stages: dict[str, float] = field(default_factory=dict)  # wall seconds per pipeline stage
    info: dict[str, Any] = field(default_factory=dict)  # what was compiled (layers, plan summary)
    _ctx: Any = field(default=None, repr=False)
    _fn: Any = field(default=None, repr=False)
    _runner: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.target = get_target(self.target)

    # --- signature -------------------------------------------------------------------------------------------
    def _load_python(self) -> None:
        import iree.runtime as rt

        if self._fn is not None:
            return
        try:
            config = rt.Config(device=_device(self.target.driver, self.threads))
            ctx = rt.SystemContext(config=config)
            vm_module = rt.VmModule.copy_buffer(ctx.instance, self.vmfb)
            ctx.add_vm_module(vm_module)
        except (RuntimeError, ValueError) as e:
            raise ModelLoadError(f"IREE could not load this module for target {self.target.name!r}: "
                                 f"{_one_line(e)}") from None
        self._ctx = ctx
        self._fn = ctx.modules.module[FUNCTION]
        self._declaration = vm_module.lookup_function(FUNCTION).reflection.get("iree.abi.declaration", "")

    def signature(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        if self.target.runner == "python" and self.target.driver == "local-task":
            self._load_python()
            return parse_signature(self._declaration)
        # Other targets: read the metadata with the host runtime, so that checking inputs or writing a device
        # folder needs no qemu or Vulkan driver (those are needed only to run).
        if getattr(self, "_declaration", None) is None:
            from .runners import module_declaration

            self._declaration = module_declaration(self.vmfb)
        return parse_signature(self._declaration)

    @property
    def input_specs(self) -> list[TensorSpec]:
        return self.signature()[0]

    def check_inputs(self, arrays: Sequence[Any]) -> list[np.ndarray]:
        specs = self.input_specs
        if len(arrays) != len(specs):
            raise InputError(f"the model takes {len(specs)} input(s) ({', '.join(map(str, specs))}), "
                             f"got {len(arrays)}")
        out = []
        for i, (a, spec) in enumerate(zip(arrays, specs)):
            a = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
            if tuple(a.shape) != spec.shape:
                raise InputError(f"input {i} has shape {tuple(a.shape)}, the compiled model expects {spec.shape} "
                                 f"(to change it, compile again with --input-shape {','.join(map(str, a.shape))}; "
                                 "a .pt2 ExportedProgram must first be exported again at that shape)")
            if a.dtype != spec.dtype:
                raise InputError(f"input {i} has dtype {a.dtype}, the compiled model expects "
                                 f"{np.dtype(spec.dtype).name}; convert it with .astype(np.{np.dtype(spec.dtype).name})")
            out.append(np.ascontiguousarray(a))
        return out

    # --- running ---------------------------------------------------------------------------------------------
    def _external_runner(self):
        if self._runner is None:
            from .runners import external_runner

            self._runner = external_runner(self)
        return self._runner

    def run(self, *arrays: Any) -> list[np.ndarray]:
        """Run the module's @main on numpy arrays (or torch tensors); returns a list of numpy arrays."""
        inputs = self.check_inputs(arrays)
        if self.target.runner != "python" or self.target.driver != "local-task":
            return self._external_runner().run(inputs)
        result = self._fn(*inputs)
        results = result if isinstance(result, (list, tuple)) else [result]
        return [np.asarray(r.to_host()) for r in results]

    def time(self, *arrays: Any, repeat: int = 10, warmup: int = 2) -> list[float]:
        """Wall seconds of `repeat` calls (after `warmup`)."""
        inputs = self.check_inputs(arrays)
        for _ in range(warmup):
            self.run(*inputs)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            self.run(*inputs)
            times.append(time.perf_counter() - t0)
        return times

    # --- files -----------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the .vmfb atomically."""
        return atomic_write_bytes(path, self.vmfb)


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())


# The executable format IREE records for each kind of target, and the targets that write it.
_FORMAT_OF_ARCH = {"x86_64": "embedded-elf-x86_64", "aarch64": "embedded-elf-arm_64"}
_VULKAN_FORMAT = "vulkan-spirv-fb"
_EXECUTABLE_TARGET = re.compile(rb'#hal\.executable\.target<"[\w-]+", "([\w-]+)", \{([^}]{0,4000})')


def _format_of(target: Target) -> str | None:
    if target.driver == "vulkan":
        return _VULKAN_FORMAT
    return _FORMAT_OF_ARCH.get(target.cpu_arch or "")


def compiled_for(vmfb: bytes) -> tuple[str, list[str]] | None:
    """(executable format, the targets that write it, likeliest first) of a module, read from the device
    target descriptions IREE stores in the .vmfb; None for a module without executables."""
    start = vmfb.find(b"#hal.executable.target<")  # a plain find first: a .vmfb can be hundreds of MB
    found = _EXECUTABLE_TARGET.match(vmfb, start) if start >= 0 else None
    if found is None:
        return None
    fmt, attrs = found.group(1).decode(), found.group(2)
    if fmt == _FORMAT_OF_ARCH["aarch64"]:
        names = ["arm64-android", "arm64-linux"] if b'cpu = "cortex-a76"' in attrs else ["arm64-linux",
                                                                                         "arm64-android"]
    elif fmt == _VULKAN_FORMAT:
        names = (["vulkan-adreno"] if b'"adreno"' in attrs else ["vulkan-mali"] if b'"valhall' in attrs
                 else ["vulkan"])
    else:
        names = [t.name for t in TARGETS.values() if _format_of(t) == fmt]
    return fmt, names


def check_module_bytes(vmfb: bytes, target: Target, name: str) -> None:
    """Refuse a module that is incomplete (IREE's verifier rejects it) or compiled for another target, naming
    the target to use; IREE's own errors for these are a traceback or an unnamed 'device not found'."""
    import iree.runtime as rt

    try:
        rt.VmModule.copy_buffer(rt.VmInstance(), vmfb)
    except (RuntimeError, ValueError) as e:
        raise ModelLoadError(f"{name} is not a complete IREE module (IREE: {_one_line(e)}); the file may be "
                             "truncated or damaged (an interrupted copy?): compile it again with `spattern compile`"
                             ) from None
    made = compiled_for(vmfb)
    if made is None or _format_of(target) is None:
        return
    fmt, names = made
    if _format_of(target) != fmt:
        use = names[0] if names else None
        advice = (f"run it with --target {use}" + (f" (or {', '.join(names[1:])})" if len(names) > 1 else "")
                  if use else "compile it again for this target")
        raise ModelLoadError(f"{name} was compiled for {' / '.join(names) or fmt} ({fmt}), not for target "
                             f"{target.name!r}: {advice}")


def load(path: str | Path, target: str | Target = "host", threads: int | None = None) -> CompiledModel:
    """Load a .vmfb written by `CompiledModel.save` (or `spattern compile`) for the target it was compiled for."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"no compiled module at {path}")
    data = path.read_bytes()
    if len(data) < 8 or b"IREE" not in data[:4096]:
        raise ModelLoadError(f"{path} is not an IREE module (.vmfb); compile one with `spattern compile`")
    target = get_target(target)
    check_module_bytes(data, target, str(path))
    return CompiledModel(vmfb=data, target=target, threads=threads)
