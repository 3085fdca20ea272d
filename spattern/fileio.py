"""Atomic writes: a failed or interrupted write leaves nothing half-written at the destination."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import OutputPathError


def check_output_path(path: str | os.PathLike[str], folder: bool = False, suffix: str | None = None) -> Path:
    """Refuse, before any work, an output that cannot be written: its parent folder must exist (spattern never
    creates parents, in any command), be a folder and be writable, and nothing of the other kind may be in the
    way (a folder where a file goes, a file where a folder goes), and a file that must be of one kind (`suffix`,
    e.g. ".png") must say so in its name. Every command checks its outputs with this
    before it prunes, compiles or runs, so a bad path costs nothing; the atomic writers below check again."""
    path = Path(path)
    what = "the folder" if folder else ""
    name = f"{what} {path}".strip()
    if str(path) in ("", "."):
        raise OutputPathError(f"cannot write {name}: give a file or folder name")
    if suffix is not None and path.suffix.lower() != suffix:
        raise OutputPathError(f"cannot write {path}: give a path ending in {suffix}")
    parent = path.parent
    if not parent.exists():
        raise OutputPathError(f"cannot write {name}: the folder {parent} does not exist; create it first")
    if not parent.is_dir():
        raise OutputPathError(f"cannot write {name}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write {name}: no permission to write in {parent}")
    if folder and path.exists() and not path.is_dir():
        raise OutputPathError(f"cannot write {name}: a file of that name is in the way")
    if not folder and path.is_dir():
        raise OutputPathError(f"cannot write {path}: a folder of that name is in the way")
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and an atomic rename."""
    path = check_output_path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


@contextmanager
def atomic_directory(path: str | os.PathLike[str], overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it replaces `path` whole, on failure it is removed."""
    path = check_output_path(path, folder=True)
    if path.exists() and not overwrite:
        raise OutputPathError(f"{path} exists already; remove it or choose another output folder")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=tmp.parent))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
