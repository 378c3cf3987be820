"""On-disk embedding cache keyed by model fingerprint and text hash.

Layout: ``<root>/<model key>/<shard>.keys.npy`` (``S16`` blake2b digests of ``role\\0text``) and
``<shard>.vecs.npy`` (float32 rows, memory-mapped on read). A shard is written whole to temporary
names and renamed, vectors first, so an interrupted run leaves only complete shards: Ctrl-C keeps
everything encoded up to the last flush.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import numpy as np


def text_keys(texts: list[str], role: str) -> np.ndarray:
    """16-byte digests of ``role\\0text`` for each text."""
    prefix = role.encode() + b"\0"
    return np.array(
        [hashlib.blake2b(prefix + t.encode("utf-8"), digest_size=16).digest() for t in texts], dtype="S16"
    )


class EmbeddingCache:
    """Vectors of one model, looked up by text key; append-only shards."""

    def __init__(self, root: Path, model_key: str) -> None:
        self.dir = Path(root) / model_key
        self._keys = np.zeros(0, dtype="S16")
        self._where = np.zeros((0, 2), dtype=np.int64)  # (shard, row) for each sorted key
        self._shards: list[Path] = []
        self._vecs: list[np.ndarray | None] = []
        self._load_index()

    def _load_index(self) -> None:
        if not self.dir.is_dir():
            return
        keys, where = [], []
        for keys_file in sorted(self.dir.glob("*.keys.npy")):
            vecs_file = keys_file.with_name(keys_file.name.replace(".keys.npy", ".vecs.npy"))
            if not vecs_file.exists():
                continue
            k = np.load(keys_file)
            shard = len(self._shards)
            self._shards.append(vecs_file)
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
        return np.where(self._keys[pos_c] == keys, pos_c, -1)

    def fetch(self, slots: np.ndarray) -> np.ndarray:
        """Vectors for slots returned by :meth:`lookup` (all must be ≥ 0)."""
        where = self._where[slots]
        out = None
        for shard in np.unique(where[:, 0]):
            vecs = self._vecs[shard]
            if vecs is None:
                vecs = self._vecs[shard] = np.load(self._shards[shard], mmap_mode="r")
            sel = where[:, 0] == shard
            if out is None:
                out = np.empty((len(slots), vecs.shape[1]), dtype=np.float32)
            out[sel] = vecs[where[sel, 1]]
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)

    def append(self, keys: np.ndarray, vecs: np.ndarray) -> None:
        """Persist a shard and add it to the in-memory index."""
        if not len(keys):
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        stem = uuid.uuid4().hex
        vecs_file = self.dir / f"{stem}.vecs.npy"
        keys_file = self.dir / f"{stem}.keys.npy"
        _atomic_save(vecs_file, np.ascontiguousarray(vecs, dtype=np.float32))
        _atomic_save(keys_file, np.asarray(keys, dtype="S16"))
        shard = len(self._shards)
        self._shards.append(vecs_file)
        self._vecs.append(None)
        all_keys = np.concatenate([self._keys, keys])
        all_where = np.concatenate([self._where, np.stack([np.full(len(keys), shard), np.arange(len(keys))], axis=1)])
        order = np.argsort(all_keys, kind="stable")
        self._keys, self._where = all_keys[order], all_where[order]


def _atomic_save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, array)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
