"""Checksums that bind files on disk to what xlbench wrote, so damage is detected, never trusted.

A folder (a training checkpoint) or a group of files (an embedding-cache shard) gets a small JSON
manifest holding each file's size and sha256. :func:`verify` re-hashes the files and raises
:class:`Damaged` naming the first file that is missing, truncated, extended or altered; a file
without a manifest is treated as damaged (it was not written whole by this xlbench).
"""

from __future__ import annotations

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


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """``write(fh)`` into a temporary name, fsync, rename over ``path``: readers see the old file or
    the new one, never half of one; a failure (a full disk) removes the temporary file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
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
