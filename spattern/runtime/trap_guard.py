"""What a microkernel's trap means, told in one line.

A kernel that reads a table it does not understand (kernels/sp_check.h: a bad magic, tile, chunk, layout, pattern
id, ...) traps: x86 `ud2` (SIGILL), aarch64 `brk` (SIGTRAP). Inside an IREE worker thread that ends the whole
process, and no handler can turn it into an exception: a handler that returns runs the faulting instruction
again, and one written in Python runs only after the native handler has returned. So the trap is read where it
can be: from outside the process that died.
- `run_isolated` runs a call in a forked child and, if the child dies of SIGILL or SIGTRAP, raises
  ModelLoadError with `trap_message`; `spattern run` runs its module this way (the fork costs milliseconds; the
  child loads the module itself, so no IREE thread crosses the fork).
- the iree-run-module runners (arm64 under qemu, Vulkan) already run in a child; they name the trap the same way.
`CompiledModel.run` in a user's own process stays a plain call: a trap there ends that process.
"""

from __future__ import annotations

import os
import pickle
import signal
from typing import Callable, TypeVar

from spattern.errors import ModelLoadError

T = TypeVar("T")
TRAP_SIGNALS = (signal.SIGILL, signal.SIGTRAP)


def trap_message(module: str, sig: int) -> str:
    """The one line for a module whose run died of `sig`, one of TRAP_SIGNALS."""
    return (f"a spattern microkernel in {module} trapped ({signal.Signals(sig).name}) on a kernel table it does not "
            "understand: the module is corrupt or was compiled by another spattern version; recompile it with "
            "this one")


def is_trap(returncode: int) -> bool:
    """True for the return code of a child process that a microkernel's trap ended (subprocess: -signal)."""
    return returncode in tuple(-s for s in TRAP_SIGNALS)


def run_isolated(fn: Callable[[], T], module: str) -> T:
    """fn() in a forked child, its result (or exception) passed back pickled. A child ended by a trap raises
    ModelLoadError(trap_message); by another signal, ModelLoadError naming it. Without os.fork: fn() here."""
    if not hasattr(os, "fork"):
        return fn()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's stack
        try:
            os.close(read_end)
            try:
                payload = pickle.dumps((True, fn()))
            except BaseException as e:  # noqa: BLE001 (re-raised in the parent)
                try:
                    payload = pickle.dumps((False, e))
                except Exception:  # noqa: BLE001 (an exception that does not pickle)
                    payload = pickle.dumps((False, RuntimeError(f"{type(e).__name__}: {e}")))
            with os.fdopen(write_end, "wb") as f:
                f.write(payload)
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        payload = f.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig in TRAP_SIGNALS:
            raise ModelLoadError(trap_message(module, sig))
        raise ModelLoadError(f"running {module} ended the process with {signal.Signals(sig).name}")
    if not payload:
        raise ModelLoadError(f"running {module} ended without a result (exit status {os.WEXITSTATUS(status)})")
    ok, value = pickle.loads(payload)
    if ok:
        return value
    raise value
