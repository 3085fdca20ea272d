"""The compile stage: MLIR bytecode -> .vmfb bytes with iree-compile.

On failure the failing IR is kept on disk (bytecode, plus a text copy with large constants elided) and the error
message carries the exact iree-compile command that reproduces it.
"""

from __future__ import annotations

import shlex
import subprocess
import tempfile
from pathlib import Path

from ..errors import CompileError
from .targets import Target, get_target


def iree_compile_path() -> str:
    from iree.compiler.tools.binaries import find_tool

    return str(find_tool("iree-compile"))


def compile_bytecode(bytecode: bytes, target: str | Target, extra_flags: list[str] | None = None,
                     dense_best: bool = True, failure_dir: str | Path | None = None,
                     input_text: str | None = None) -> bytes:
    """Compile MLIR bytecode for a target. `input_text` (optional, elided) is saved beside a failing input."""
    target = get_target(target)
    flags = [*target.flags(dense_best=dense_best), *(extra_flags or [])]
    with tempfile.TemporaryDirectory(prefix="spattern-compile-") as tmp:
        src = Path(tmp) / "input.mlirbc"
        out = Path(tmp) / "out.vmfb"
        src.write_bytes(bytecode)
        cmd = [iree_compile_path(), str(src), *flags, "-o", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode == 0:
            return out.read_bytes()
        keep = Path(failure_dir) if failure_dir else Path(tempfile.mkdtemp(prefix="spattern-failure-"))
        keep.mkdir(parents=True, exist_ok=True)
        failing = keep / "failing-input.mlirbc"
        failing.write_bytes(bytecode)
        if input_text is not None:
            (keep / "failing-input.mlir").write_text(input_text)
        repro = shlex.join(["iree-compile", str(failing), *flags, "-o", str(keep / "out.vmfb")])
        diag = "\n".join(proc.stderr.strip().splitlines()[:40])
        raise CompileError(
            f"iree-compile failed for target {target.name!r}.\n{diag}\n\n"
            f"The failing IR is in {failing}; reproduce with:\n  {repro}"
        )
