"""Anny's one-time model cache: built once into <cache_dir>/anny, pruned to the compact file it loads."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

CACHE_DIR_ENVIRONMENT_VARIABLE = "LWGAN_CACHE_DIR"
ANNY_SUBDIRECTORY = "anny"
COMPACT_FILE_PATTERN = "build_compact_model_data_*.safetensors"
READY_MARKER_NAME = "lwgan_ready.json"
LOCK_FILE_NAME = "anny.lock"


def default_cache_dir() -> Path:
    """The project's cache folder: $LWGAN_CACHE_DIR, else ~/.cache/lwgan."""
    configured = os.environ.get(CACHE_DIR_ENVIRONMENT_VARIABLE)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "lwgan"


@contextlib.contextmanager
def anny_cache_path(path: Path) -> Iterator[None]:
    """Point anny's (process-global) cache folder at `path` for the duration of the block."""
    import anny.paths

    previous = anny.paths.get_anny_cache_path()
    anny.paths.set_anny_cache_path(path)
    try:
        yield
    finally:
        anny.paths.set_anny_cache_path(previous)


def load_anny(anny_dir: Path, skinning_method: str):
    """anny.Anny() (rig "anny", topology "anny", pose parameterization "local-ref") read from `anny_dir`."""
    import anny

    with anny_cache_path(anny_dir):
        return anny.Anny(skinning_method=skinning_method)


def prepare_anny_cache(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return <cache_dir>/anny holding Anny's compact model file, building it first if needed.

    The first call runs anny's one-time build (about 2 minutes and 1.5 GB of memory), keeps only
    the compact file (~50 MB) and checks that anny loads from it. Concurrent first calls are safe:
    a lock file serialises the builders, and each builds in a private folder whose result is moved
    into place with an atomic rename, so a crash never leaves a half-written cache behind.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    anny_dir = root / ANNY_SUBDIRECTORY
    if _is_ready(anny_dir):
        return anny_dir
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(root / LOCK_FILE_NAME):
        if not _is_ready(anny_dir):  # another process may have built it while we waited
            _build(root, anny_dir)
    return anny_dir


def cache_size_bytes(anny_dir: Path) -> int:
    """Total size in bytes of the files under `anny_dir`."""
    return sum(path.stat().st_size for path in anny_dir.rglob("*") if path.is_file())


def _anny_version() -> str:
    return importlib.metadata.version("anny")


def _is_ready(anny_dir: Path) -> bool:
    """True when our marker names the current anny version and its compact file exists."""
    marker = anny_dir / READY_MARKER_NAME
    if not marker.is_file():
        return False
    try:
        content = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return content.get("anny_version") == _anny_version() and (anny_dir / content.get("compact_file", "")).is_file()


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `path` (POSIX flock; on other systems only the atomic rename protects)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _announce(message: str) -> None:
    """Log `message`; also write it to stderr when no logging handler would show it."""
    logger.info(message)
    if not (logger.isEnabledFor(logging.INFO) and logger.hasHandlers()):
        sys.stderr.write(f"lwgan: {message}\n")
        sys.stderr.flush()


def _build(root: Path, anny_dir: Path) -> None:
    """Build anny's cache in a private folder, prune it, verify it loads, move the compact file into place."""
    staging = Path(tempfile.mkdtemp(prefix="anny-build-", dir=root))
    try:
        _announce(
            f"Building the Anny body model cache in {anny_dir} (one time only: about 2 minutes and 1.5 GB of memory)..."
        )
        start = time.monotonic()
        load_anny(staging, skinning_method="lbs")  # the build writes the cache files; the model itself is discarded
        build_seconds = time.monotonic() - start
        compact_files = sorted(staging.rglob(COMPACT_FILE_PATTERN))
        if len(compact_files) != 1:
            raise RuntimeError(f"expected one {COMPACT_FILE_PATTERN} in {staging} after anny's build, found {compact_files}")
        compact = compact_files[0]
        for path in staging.rglob("*"):
            if path.is_file() and path != compact:
                path.unlink()
        _verify_loads_without_building(staging)
        relative = compact.relative_to(staging)
        target = anny_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(compact, target)
        _remove_other_files(anny_dir, keep=target)
        _write_marker(anny_dir, relative)
        _announce(
            f"Anny body model cache ready after {build_seconds:.0f} s: {target} "
            f"({cache_size_bytes(anny_dir) / 2**20:.0f} MiB)."
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _verify_loads_without_building(staging: Path) -> None:
    """Load anny from the pruned folder and fail if that made it rebuild anything."""
    files_before = {path for path in staging.rglob("*") if path.is_file()}
    load_anny(staging, skinning_method="lbs")
    files_after = {path for path in staging.rglob("*") if path.is_file()}
    if files_after != files_before:
        raise RuntimeError(
            f"anny rebuilt {sorted(str(p) for p in files_after - files_before)} from the pruned cache in {staging}; "
            "the compact file alone is not enough for this anny version"
        )


def _remove_other_files(anny_dir: Path, keep: Path) -> None:
    """Delete every file under `anny_dir` but `keep` (stale builds of other anny versions, leftovers)."""
    for path in anny_dir.rglob("*"):
        if path.is_file() and path != keep:
            path.unlink()


def _write_marker(anny_dir: Path, compact_relative: Path) -> None:
    """Write the ready marker through a temporary file and an atomic rename."""
    content = {"anny_version": _anny_version(), "compact_file": compact_relative.as_posix()}
    temporary = anny_dir / f".{READY_MARKER_NAME}.{os.getpid()}.tmp"
    temporary.write_text(json.dumps(content, indent=1))
    os.replace(temporary, anny_dir / READY_MARKER_NAME)
