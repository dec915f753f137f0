"""Crash-safe file writes: temp file in the same directory, fsync, atomic rename.

A reader never sees a half-written file under its final name: after a crash it finds
either the old version or the new one."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from .errors import DiskFullError
from .faults import crash_point


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_umask() -> int:
    mask = os.umask(0o022)  # the only way to read it; restored at once (at import, before any thread)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def disk_full(err: BaseException) -> bool:
    """An OSError with ENOSPC, or a library's wrapping of one (safetensors raises its own
    SafetensorError carrying the OS message)."""
    return (isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)) \
        or "No space left on device" in str(err)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` then fsync and rename onto ``path``.  A full disk is a
    :class:`~vaelab.errors.DiskFullError` naming the directory; the old file stays."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path: Path | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp's 0600 would make every written file private
        write(tmp_path)
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        crash_point("atomic_write:before_rename")
        os.replace(tmp_path, path)
    except BaseException as err:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)
        if isinstance(err, Exception) and disk_full(err):
            raise DiskFullError(f"no space left on the device holding {path.parent} while writing "
                                f"{path.name}; free some space and run the command again") from None
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write(path, lambda p: p.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
