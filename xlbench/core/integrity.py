"""Checksums that bind files on disk to what xlbench wrote, so damage is detected, never trusted.

A folder (a training checkpoint) or a group of files (an embedding-cache shard) gets a small JSON
manifest holding each file's size and sha256. :func:`verify` re-hashes the files and raises
:class:`Damaged` naming the first file that is missing, truncated, extended or altered; a file
without a manifest is treated as damaged (it was not written whole by this xlbench).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from xlbench.errors import XlbenchError


class Damaged(XlbenchError):
    """A file on disk does not match the checksum written beside it."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path}: {reason}")


def sha256_file(path: Path, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def manifest_for(paths: list[Path], kind: str, **extra) -> dict:
    return {"format": kind, "files": {p.name: {"size": p.stat().st_size, "sha256": sha256_file(p)} for p in paths},
            **extra}


DISK_FULL_BYTES = 1 << 20  # less free space than this after a failed write: the disk is full


def disk_full(exc: BaseException, path: Path) -> bool:
    """Whether a failed write failed for want of space. Libraries say it in their own words
    (torch: ``enforce fail at inline_container.cc … unexpected pos``; numpy: ``N requested and M
    written``), so the file system is asked too."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    if "No space left on device" in str(exc):
        return True
    try:
        stat = os.statvfs(Path(path).parent if not Path(path).is_dir() else path)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < DISK_FULL_BYTES


def _disk_full_error(exc: BaseException, path: Path) -> BaseException:
    """``exc`` itself, or for a full disk one ``OSError(ENOSPC)`` naming the file being written."""
    if isinstance(exc, Exception) and not (isinstance(exc, OSError) and exc.errno == errno.ENOSPC and exc.filename) \
            and disk_full(exc, path):
        return OSError(errno.ENOSPC, "No space left on device", str(path))
    return exc


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """``write(fh)`` into a temporary name, fsync, rename over ``path``: readers see the old file or
    the new one, never half of one; a failure removes the temporary file, and a full disk is one
    ``OSError(ENOSPC)`` naming the file, whatever the library that wrote it said."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        error = _disk_full_error(exc, tmp)
        if error is exc:
            raise
        raise error from exc


def write_json_atomic(path: Path, data: dict, **dump) -> None:
    atomic_write(path, lambda fh: fh.write(json.dumps(data, **dump).encode("utf-8")))


def write_text_atomic(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def atomic_dir(final: Path, write: Callable[[Path], None]) -> Path:
    """The folder version of :func:`atomic_write`: ``write(tmp)`` fills a temporary sibling, which
    then takes ``final``'s place (an existing ``final`` is moved aside first, then removed), so a
    reader never sees half a folder; a failure removes the temporary one."""
    final = Path(final)
    tmp = final.with_name(final.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write(tmp)
    except BaseException as exc:
        newest = max(tmp.iterdir(), key=lambda p: p.stat().st_mtime_ns, default=None) if tmp.exists() else None
        written = final / newest.name if newest is not None else final  # the file it was writing, by its real name
        shutil.rmtree(tmp, ignore_errors=True)
        error = _disk_full_error(exc, written)
        if error is exc:
            raise
        raise error from exc
    old = final.with_name(final.name + f".old{os.getpid()}")
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def read_manifest(path: Path, kind: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Damaged(path, "no checksum manifest (incomplete, or not written by this xlbench)") from None
    except (OSError, ValueError) as exc:
        raise Damaged(path, f"unreadable checksum manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != kind or not isinstance(data.get("files"), dict):
        raise Damaged(path, f"not a {kind} manifest")
    return data


def verify(folder: Path, manifest: dict) -> None:
    """Raise :class:`Damaged` unless every file listed in ``manifest`` is in ``folder`` unchanged."""
    for name, want in manifest["files"].items():
        path = Path(folder) / name
        if Path(name).name != name:
            raise Damaged(path, "manifest names a file outside its folder")
        try:
            size = path.stat().st_size
        except OSError:
            raise Damaged(path, "missing") from None
        if size != want.get("size"):
            raise Damaged(path, f"size {size} bytes, {want.get('size')} written (truncated or overwritten)")
        if sha256_file(path) != want.get("sha256"):
            raise Damaged(path, "checksum mismatch (altered on disk)")
