"""On-disk embedding cache keyed by model fingerprint and text hash.

Layout: ``<root>/<model key>/<shard>.keys.npy`` (``S16`` blake2b digests of ``role\\0text``),
``<shard>.vecs.npy`` (float32 rows, memory-mapped on read) and ``<shard>.sum.json`` (size and
sha256 of both, written last). A shard is written whole to temporary names and renamed, so an
interrupted run leaves only complete shards: Ctrl-C keeps everything encoded up to the last flush,
and a failed write (a full disk) removes its temporary files.

Nothing read back is trusted: a shard's keys are verified against its checksum file when the index
loads, its vectors the first time they are fetched. A shard that is missing its checksum, truncated
or altered is reported (``on_damage``, one line naming the file), moved aside to ``*.damaged`` and
dropped from the index, and the texts it held are encoded again: the numbers are those of a clean run.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from xlbench.core.integrity import Damaged, atomic_write, manifest_for, read_manifest, verify, write_json_atomic

SHARD_FORMAT = "xlbench-embedding-shard-v1"
STALE_TMP_SECONDS = 3600


def text_keys(texts: list[str], role: str) -> np.ndarray:
    """16-byte digests of ``role\\0text`` for each text."""
    prefix = role.encode() + b"\0"
    return np.array(
        [hashlib.blake2b(prefix + t.encode("utf-8"), digest_size=16).digest() for t in texts], dtype="S16"
    )


def _shard_files(stem: Path) -> tuple[Path, Path, Path]:
    return (stem.with_name(stem.name + ".keys.npy"), stem.with_name(stem.name + ".vecs.npy"),
            stem.with_name(stem.name + ".sum.json"))


class EmbeddingCache:
    """Vectors of one model, looked up by text key; append-only, checksummed shards."""

    def __init__(self, root: Path, model_key: str, *, on_damage: Callable[[str], None] | None = None) -> None:
        self.dir = Path(root) / model_key
        self.on_damage = on_damage
        self._keys = np.zeros(0, dtype="S16")
        self._where = np.zeros((0, 2), dtype=np.int64)  # (shard, row) for each sorted key
        self._shards: list[Path] = []  # stems
        self._vecs: list[np.ndarray | None] = []
        self._dead: set[int] = set()
        self._load_index()

    def _damaged(self, stem: Path, exc: Damaged) -> None:
        """Report a damaged shard and move its files aside (kept for inspection, never read again)."""
        for path in _shard_files(stem):
            if path.exists():
                path.replace(path.with_name(path.name + ".damaged"))
        if self.on_damage:
            self.on_damage(f"embedding cache: {exc.path}: {exc.reason}; its texts are encoded again "
                           f"(files moved aside as *.damaged)")

    def _load_index(self) -> None:
        if not self.dir.is_dir():
            return
        stale = time.time() - STALE_TMP_SECONDS
        for tmp in self.dir.glob("*.tmp"):  # left by a process killed mid-write (not one writing now)
            with contextlib.suppress(OSError):
                if tmp.stat().st_mtime < stale:
                    tmp.unlink()
        keys, where = [], []
        for keys_file in sorted(self.dir.glob("*.keys.npy")):
            stem = keys_file.with_name(keys_file.name.removesuffix(".keys.npy"))
            keys_path, vecs_path, sum_path = _shard_files(stem)
            try:
                manifest = read_manifest(sum_path, SHARD_FORMAT)
                verify(self.dir, {"files": {keys_path.name: manifest["files"].get(keys_path.name, {})}})
                k = np.load(keys_path, allow_pickle=False)
                if k.dtype != np.dtype("S16") or k.ndim != 1 or len(k) != manifest.get("rows"):
                    raise Damaged(keys_path, "keys do not match the shard's row count")
            except Damaged as exc:
                self._damaged(stem, exc)
                continue
            except (OSError, ValueError) as exc:
                self._damaged(stem, Damaged(keys_path, f"unreadable ({exc})"))
                continue
            shard = len(self._shards)
            self._shards.append(stem)
            self._vecs.append(None)
            keys.append(k)
            where.append(np.stack([np.full(len(k), shard), np.arange(len(k))], axis=1))
        if keys:
            all_keys = np.concatenate(keys)
            order = np.argsort(all_keys, kind="stable")
            self._keys = all_keys[order]
            self._where = np.concatenate(where)[order]

    def __len__(self) -> int:
        return len(self._keys)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Index into the sorted key table for each key, or -1 when absent."""
        if not len(self._keys):
            return np.full(len(keys), -1, dtype=np.int64)
        pos = np.searchsorted(self._keys, keys)
        pos_c = np.minimum(pos, len(self._keys) - 1)
        found = self._keys[pos_c] == keys
        if self._dead:
            found &= ~np.isin(self._where[pos_c, 0], list(self._dead))
        return np.where(found, pos_c, -1)

    def _open(self, shard: int) -> np.ndarray | None:
        """The shard's vectors, verified against its checksum on first use (None if damaged)."""
        if shard in self._dead:
            return None
        if self._vecs[shard] is None:
            stem = self._shards[shard]
            keys_path, vecs_path, sum_path = _shard_files(stem)
            try:
                manifest = read_manifest(sum_path, SHARD_FORMAT)
                verify(self.dir, {"files": {vecs_path.name: manifest["files"].get(vecs_path.name, {})}})
                vecs = np.load(vecs_path, mmap_mode="r", allow_pickle=False)
                if vecs.dtype != np.float32 or vecs.ndim != 2 or len(vecs) != manifest.get("rows"):
                    raise Damaged(vecs_path, "vectors do not match the shard's row count")
            except (Damaged, OSError, ValueError) as exc:
                self._dead.add(shard)
                self._damaged(stem, exc if isinstance(exc, Damaged) else Damaged(vecs_path, f"unreadable ({exc})"))
                return None
            self._vecs[shard] = vecs
        return self._vecs[shard]

    def get(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(hit, vectors)``: which keys are cached (in verified shards) and their vectors, in order."""
        slots = self.lookup(keys)
        if not (slots >= 0).any():
            return slots >= 0, None
        where = self._where[np.maximum(slots, 0)]
        for shard in np.unique(where[slots >= 0, 0]):
            if self._open(int(shard)) is None:
                slots[(slots >= 0) & (where[:, 0] == shard)] = -1
        hit = slots >= 0
        if not hit.any():
            return hit, None
        out = None
        for shard in np.unique(where[hit, 0]):
            vecs = self._vecs[shard]
            sel = hit & (where[:, 0] == shard)
            if out is None:
                out = np.empty((int(hit.sum()), vecs.shape[1]), dtype=np.float32)
            out[sel[hit]] = vecs[where[sel, 1]]
        return hit, out

    def append(self, keys: np.ndarray, vecs: np.ndarray) -> None:
        """Persist a shard (vectors, keys, then the checksum that makes it valid) and index it."""
        if not len(keys):
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        stem = self.dir / uuid.uuid4().hex
        keys_path, vecs_path, sum_path = _shard_files(stem)
        try:
            atomic_write(vecs_path, lambda fh: np.save(fh, np.ascontiguousarray(vecs, dtype=np.float32)))
            atomic_write(keys_path, lambda fh: np.save(fh, np.asarray(keys, dtype="S16")))
            write_json_atomic(sum_path, manifest_for([keys_path, vecs_path], SHARD_FORMAT, rows=len(keys),
                                                     dim=int(vecs.shape[1])))
        except BaseException:
            for path in (keys_path, vecs_path):
                path.unlink(missing_ok=True)
            raise
        shard = len(self._shards)
        self._shards.append(stem)
        self._vecs.append(None)
        all_keys = np.concatenate([self._keys, keys])
        all_where = np.concatenate([self._where, np.stack([np.full(len(keys), shard), np.arange(len(keys))], axis=1)])
        order = np.argsort(all_keys, kind="stable")
        self._keys, self._where = all_keys[order], all_where[order]

