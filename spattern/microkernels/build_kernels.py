"""Builds the pattern microkernels with CMake + clang and installs the objects into spattern/_kernels/.

`python -m spattern.microkernels.build_kernels [--quiet]`. Idempotent and fast when up to date (CMake's own
dependency check), so scripts/setup.sh runs it every time. The objects are freestanding (no libc), one per ISA;
the package ships them, so a user of a built wheel never needs clang. A manifest (manifest.json) records what
was built from which sources, so `spattern.microkernels.kernels` can tell a stale or missing build from a good one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from spattern.errors import CompileError, ToolUnavailableError
from spattern.microkernels.kernels import KERNELS, kernel_isas

ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = ROOT / "build" / "kernels"
INSTALL_DIR = ROOT / "spattern" / "_kernels"
SOURCES = ("kernels/pattern_conv.c", "kernels/pattern_conv.h", "kernels/patterns.h", "kernels/conv1x1.c",
           "kernels/conv1x1.h", "kernels/maxpool2x2.c", "kernels/maxpool2x2.h", "kernels/pattern_conv_s8.c",
           "kernels/pattern_conv_s8.h", "kernels/padded_plane.h",
           "kernels/simd.h", "kernels/sp_check.h", "kernels/abi_slots.h",
           "CMakeLists.txt")


@dataclass(frozen=True)
class BuildResult:
    """Where the installed objects are, keyed by `<kernel>_<isa>`."""

    objects: dict[str, Path]
    manifest: Path


def sources_digest(root: Path = ROOT) -> str:
    """sha256 over the kernel sources, so a manifest names exactly what its objects were built from."""
    h = hashlib.sha256()
    for rel in SOURCES:
        h.update(rel.encode())
        h.update((root / rel).read_bytes())
    return h.hexdigest()


def _require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ToolUnavailableError(
            f"`{tool}` is needed to build the pattern microkernels; run `bash scripts/setup.sh` "
            f"(or `apt-get install {package}`)")
    return path


def _run(cmd: list[str], quiet: bool) -> None:
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=quiet, text=True)
    if proc.returncode != 0:
        detail = (proc.stdout or "") + (proc.stderr or "") if quiet else ""
        raise CompileError(f"building the microkernels failed: `{' '.join(cmd)}` exited {proc.returncode}\n{detail}")


def build(quiet: bool = False) -> BuildResult:
    """Configure (once) and build with CMake, then copy the objects and a manifest into spattern/_kernels/."""
    if not (ROOT / "CMakeLists.txt").is_file():
        raise ToolUnavailableError(f"no CMakeLists.txt at {ROOT}: the kernel sources are not in this install")
    cmake = _require("cmake", "cmake")
    clang = _require("clang", "clang")
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    if not (BUILD_DIR / "CMakeCache.txt").is_file():
        _run([cmake, "-S", str(ROOT), "-B", str(BUILD_DIR), f"-DCMAKE_C_COMPILER={clang}"], quiet)
    _run([cmake, "--build", str(BUILD_DIR)], quiet)
    INSTALL_DIR.mkdir(parents=True, exist_ok=True)
    objects: dict[str, Path] = {}
    for kernel in KERNELS:
        for isa in kernel_isas(kernel):
            src = BUILD_DIR / f"{kernel}_{isa}.o"
            dst = INSTALL_DIR / src.name
            if not dst.exists() or dst.read_bytes() != src.read_bytes():
                shutil.copyfile(src, dst)
            objects[f"{kernel}_{isa}"] = dst
    manifest = INSTALL_DIR / "manifest.json"
    data = {
        "symbols": dict(KERNELS),
        "sources_sha256": sources_digest(),
        "objects": {name: p.name for name, p in objects.items()},
    }
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    if not manifest.exists() or manifest.read_text() != text:
        manifest.write_text(text)
    return BuildResult(objects, manifest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="print nothing unless the build fails")
    args = parser.parse_args(argv)
    result = build(quiet=args.quiet)
    if not args.quiet:
        for isa, path in result.objects.items():
            print(f"{isa}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
