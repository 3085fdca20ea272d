"""Finds a microkernel object for a target: the pattern conv (kernels/pattern_conv.c), the 1x1 conv
(kernels/conv1x1.c) or the 2x2 max pool (kernels/maxpool2x2.c), one object per kernel and ISA.

Host x86-64 gets the AVX-512 object when the CPU has AVX-512F, else AVX2 (`SPATTERN_KERNEL_ISA=avx2` forces the
AVX2 one, so tests cover both on one machine); arm64 targets (any triple or name starting with aarch64/arm64, and
the android/arm64 target names) get the NEON object.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from spattern.errors import ConfigError, ToolUnavailableError, UnknownTargetError

KERNEL_DIR = Path(__file__).resolve().parents[1] / "_kernels"
SYMBOL = "spattern_pattern_conv"
KERNELS = {"pattern_conv": SYMBOL, "conv1x1": "spattern_conv1x1",
           "maxpool2x2": "spattern_maxpool2x2",
           "pattern_conv_s8": "spattern_pattern_conv_s8"}  # kernel name -> C entry point
FP32_ISAS = ("x86_64_avx512", "x86_64_avx2", "aarch64_neon")
# The int8 kernel's objects (CMakeLists.txt SPK_NAMES_pattern_conv_s8): its dot products need AVX-512 VNNI and
# ARMv8.2 dotprod; the AVX2 object is portable C (correct, slow). An fp32 ISA name maps onto these.
KERNEL_ISAS = {"pattern_conv_s8": ("x86_64_avx512vnni", "x86_64_avx2", "aarch64_dotprod")}
_S8_ISA = {"x86_64_avx512": "x86_64_avx512vnni", "x86_64_avx2": "x86_64_avx2", "aarch64_neon": "aarch64_dotprod"}
ISA_ENV = "SPATTERN_KERNEL_ISA"


@dataclass(frozen=True)
class KernelObject:
    """One built object: its ISA, file, the IREE executable format it links into and its C entry point."""

    isa: str
    path: Path
    iree_format: str  # the key of hal.executable.objects: embedded-elf-x86_64 / embedded-elf-arm_64
    symbol: str = SYMBOL


_FORMATS = {"x86_64_avx512": "embedded-elf-x86_64", "x86_64_avx2": "embedded-elf-x86_64",
            "aarch64_neon": "embedded-elf-arm_64", "x86_64_avx512vnni": "embedded-elf-x86_64",
            "aarch64_dotprod": "embedded-elf-arm_64"}


def kernel_isas(kernel: str) -> tuple[str, ...]:
    """The ISAs `kernel` is built for (one object each)."""
    return KERNEL_ISAS.get(kernel, FP32_ISAS)


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split())
    except OSError:
        pass
    return set()


def host_has_avx512() -> bool:
    """True when this CPU has AVX-512F (read from /proc/cpuinfo; False where that file is absent)."""
    return "avx512f" in _cpu_flags()


def host_has_vnni() -> bool:
    """True when this CPU has AVX-512 VNNI and BW (what the int8 kernel's x86 object needs)."""
    return {"avx512f", "avx512bw", "avx512_vnni"} <= _cpu_flags()


def isa_for_target(target: str = "host") -> str:
    """The object's ISA name for a target: 'host', 'x86_64', an LLVM triple, or an arm64 target name."""
    t = target.lower()
    if t.startswith(("aarch64", "arm64")) or "android" in t or t in {"arm64-linux", "arm64-android"}:
        return "aarch64_neon"
    if t == "host":
        machine = platform.machine().lower()
        if machine in {"aarch64", "arm64"}:
            return "aarch64_neon"
        if machine not in {"x86_64", "amd64"}:
            raise UnknownTargetError(f"no pattern microkernel for host CPU {machine!r} (have x86_64 and aarch64)")
        t = "x86_64"
    if t.startswith(("x86_64", "x86-64", "amd64")):
        forced = os.environ.get(ISA_ENV, "").strip().lower()
        if forced in {"avx2", "x86_64_avx2"}:
            return "x86_64_avx2"
        if forced in {"avx512", "x86_64_avx512"}:
            return "x86_64_avx512"
        if forced:
            raise UnknownTargetError(f"{ISA_ENV}={forced!r}: use avx2 or avx512")
        return "x86_64_avx512" if host_has_avx512() else "x86_64_avx2"
    raise UnknownTargetError(
        f"no pattern microkernel for target {target!r}; CPU targets are host, x86_64*, aarch64*/arm64*")


def kernel_object(target: str = "host", kernel: str = "pattern_conv") -> KernelObject:
    """The built object of `kernel` (a KERNELS name) for a target; ToolUnavailableError (with the command to
    build it) when it is missing or older than the sources' ABI."""
    if kernel not in KERNELS:
        raise ConfigError(f"no microkernel named {kernel!r} (have {', '.join(KERNELS)})")
    isa = isa_for_target(target)
    if kernel in KERNEL_ISAS:
        isa = _S8_ISA[isa]
        if isa == "x86_64_avx512vnni" and target.lower() == "host" and not host_has_vnni():
            isa = "x86_64_avx2"
    path = KERNEL_DIR / f"{kernel}_{isa}.o"
    manifest = KERNEL_DIR / "manifest.json"
    symbols = json.loads(manifest.read_text()).get("symbols", {}) if manifest.is_file() else {}
    if not path.is_file() or kernel not in symbols:
        raise ToolUnavailableError(
            f"the microkernel object {path.name} is not built; run `bash scripts/setup.sh` "
            "(needs the Debian packages clang and cmake) or `python -m spattern.microkernels.build_kernels`")
    return KernelObject(isa, path, _FORMATS[isa], symbols[kernel])
