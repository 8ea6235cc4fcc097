"""Atomic output files: write to a temporary file in the destination folder, then rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`, on error delete it.

    The temporary name keeps the suffix, so writers that pick a format from it still work.
    Raises PermissionError/FileNotFoundError naming `path` when its folder is not writable.
    """
    destination = Path(path)
    folder = destination.parent
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"cannot write {destination}: folder {folder} is not writable")
    handle, temporary = tempfile.mkstemp(prefix=f".{destination.stem}.", suffix=f".tmp{destination.suffix}", dir=folder)
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        if temporary_path.exists():  # mkstemp makes it private (0600); give it the permissions a plain open() would
            temporary_path.chmod(0o666 & ~umask())
        os.replace(temporary_path, destination)
    finally:
        temporary_path.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically; returns the path."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
