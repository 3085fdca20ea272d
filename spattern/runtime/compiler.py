"""The compile stage: MLIR bytecode -> .vmfb bytes with iree-compile.

On failure the failing IR is kept on disk (bytecode, plus a text copy with large constants elided) and the error
message carries the exact iree-compile command that reproduces it.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tempfile
from pathlib import Path

from ..errors import CompileError, ToolUnavailableError
from .targets import Target, get_target


def iree_compile_path() -> str:
    """The iree-compile binary of the installed iree-base-compiler wheel; ToolUnavailableError if there is none."""
    try:
        from iree.compiler.tools.binaries import find_tool

        return str(find_tool("iree-compile"))
    except (ImportError, OSError, ValueError) as e:
        raise ToolUnavailableError(f"iree-compile is not available ({type(e).__name__}: {e}); install the "
                                   "compiler with: pip install iree-base-compiler") from None


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
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True)
        except OSError as e:  # the binary vanished or cannot be executed
            raise ToolUnavailableError(f"cannot run {cmd[0]}: {e.strerror or e}; reinstall the compiler with: "
                                       "pip install --force-reinstall iree-base-compiler") from None
        if proc.returncode == 0 and out.is_file():
            return out.read_bytes()
        keep = Path(failure_dir) if failure_dir else Path(tempfile.mkdtemp(prefix="spattern-failure-"))
        keep.mkdir(parents=True, exist_ok=True)
        failing = keep / "failing-input.mlirbc"
        failing.write_bytes(bytecode)
        if input_text is not None:
            (keep / "failing-input.mlir").write_text(input_text)
        repro = shlex.join(["iree-compile", str(failing), *flags, "-o", str(keep / "out.vmfb")])
        raise CompileError(
            f"iree-compile failed for target {target.name!r}.\n{_diagnostic(proc)}\n\n"
            f"The failing IR is in {failing}; reproduce with:\n  {repro}"
        )


def _diagnostic(proc: subprocess.CompletedProcess) -> str:
    """iree-compile's first 40 lines of errors; a crash's stack frames (` #12 0x... symbol`) are dropped, since
    they say nothing a user can act on, and the crash is named as such."""
    lines = proc.stderr.strip().splitlines()
    frames = [ln for ln in lines if re.match(r"\s*#\d+ 0x[0-9a-f]+", ln)]
    kept = [ln for ln in lines if ln not in frames and "PrintStackTrace" not in ln][:40]
    if frames or proc.returncode < 0:
        kept.append(f"(iree-compile crashed, exit status {proc.returncode}; {len(frames)} stack frames omitted: "
                    "this is a compiler bug, not an input error)")
    return "\n".join(kept)
