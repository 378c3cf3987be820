"""On-disk embedding cache keyed by model fingerprint and text hash.

Layout: ``<root>/<model key>/<shard>.keys.npy`` (``S16`` blake2b digests of ``role\0text``),
``<shard>.vecs.npy`` (float32 rows, memory-mapped on read) and ``<shard>.sum.json`` (size and
sha256 of both, written last). A shard is written whole to temporary names and renamed, so an
interrupted run leaves only complete shards: Ctrl-C keeps everything encoded up to the last flush,
and a failed write (a full disk) removes its temporary files.

Two ways in: :class:`EmbeddingCache` looks texts up one by one through an in-memory
:class:`KeyIndex` (queries, LAReQA sets: each append costs ``O(m log n)``, not a re-sort of all
``n`` keys held); :class:`ChunkCache` (``<model key>/chunks/``) stores whole corpus chunks named by
their content, for corpora of tens of millions of passages streamed once: nothing grows in memory.

Nothing read back is trusted: a shard's keys are verified against its checksum file when the index
loads, its vectors the first time they are fetched. A shard that is missing its checksum, truncated
or altered is reported (``on_damage``, one line naming the file), moved aside to ``*.damaged`` and
dropped, and the texts it held are encoded again: the numbers are those of a clean run.
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


def write_shard(stem: Path, keys: np.ndarray, vecs: np.ndarray) -> None:
    """Vectors, keys, then the checksum file that makes the shard valid; nothing left on failure."""
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


def read_shard_part(stem: Path, part: str, *, mmap: bool = False) -> np.ndarray:
    """One verified part of a shard (``"keys"`` or ``"vecs"``); raises :class:`Damaged` otherwise."""
    keys_path, vecs_path, sum_path = _shard_files(stem)
    path = keys_path if part == "keys" else vecs_path
    manifest = read_manifest(sum_path, SHARD_FORMAT)
    verify(stem.parent, {"files": {path.name: manifest["files"].get(path.name, {})}})
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise Damaged(path, f"unreadable ({exc})") from None
    want = np.dtype("S16") if part == "keys" else np.dtype(np.float32)
    if array.dtype != want or array.ndim != (1 if part == "keys" else 2) or len(array) != manifest.get("rows"):
        raise Damaged(path, f"{part} do not match the shard's row count and type")
    return array


def move_aside(stem: Path, exc: Damaged, on_damage: Callable[[str], None] | None) -> None:
    """Report a damaged shard and move its files aside (kept for inspection, never read again)."""
    for path in _shard_files(stem):
        if path.exists():
            path.replace(path.with_name(path.name + ".damaged"))
    if on_damage:
        on_damage(f"embedding cache: {exc.path}: {exc.reason}; its texts are encoded again "
                  f"(files moved aside as *.damaged)")


class KeyIndex:
    """Text key → ``(shard, row)``, held as a few sorted runs merged like a binary counter (an
    in-memory LSM tree). Appending ``m`` keys costs ``O(m log n)`` amortised, never a re-sort of
    everything held; a lookup binary-searches each run, and there are at most
    ``log2(n / m) + 1`` of them."""

    def __init__(self) -> None:
        self.runs: list[tuple[np.ndarray, np.ndarray]] = []  # (sorted S16 keys, int64 (shard, row))

    def __len__(self) -> int:
        return sum(len(k) for k, _ in self.runs)

    def add(self, keys: np.ndarray, where: np.ndarray) -> None:
        order = np.argsort(keys, kind="stable")
        self.runs.append((keys[order], where[order]))
        while len(self.runs) > 1 and len(self.runs[-2][0]) <= 2 * len(self.runs[-1][0]):
            (k1, w1), (k2, w2) = self.runs[-2], self.runs[-1]
            k = np.concatenate([k1, k2])
            order = np.argsort(k, kind="stable")  # two sorted runs: the stable sort merges them
            self.runs[-2:] = [(k[order], np.concatenate([w1, w2])[order])]

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """``(shard, row)`` for each key, ``(-1, -1)`` when absent."""
        out = np.full((len(keys), 2), -1, dtype=np.int64)
        for run_keys, run_where in self.runs:
            pos = np.minimum(np.searchsorted(run_keys, keys), len(run_keys) - 1)
            hit = (out[:, 0] < 0) & (run_keys[pos] == keys)
            out[hit] = run_where[pos[hit]]
        return out


class EmbeddingCache:
    """Vectors of one model, looked up by text key; append-only, checksummed shards."""

    def __init__(self, root: Path, model_key: str, *, on_damage: Callable[[str], None] | None = None) -> None:
        self.dir = Path(root) / model_key
        self.on_damage = on_damage
        self._index = KeyIndex()
        self._shards: list[Path] = []  # stems
        self._vecs: list[np.ndarray | None] = []
        self._dead: set[int] = set()
        self._load_index()

    def _load_index(self) -> None:
        if not self.dir.is_dir():
            return
        stale = time.time() - STALE_TMP_SECONDS
        for tmp in self.dir.glob("*.tmp"):  # left by a process killed mid-write (not one writing now)
            with contextlib.suppress(OSError):
                if tmp.stat().st_mtime < stale:
                    tmp.unlink()
        for keys_file in sorted(self.dir.glob("*.keys.npy")):
            stem = keys_file.with_name(keys_file.name.removesuffix(".keys.npy"))
            try:
                self._add_shard(stem, read_shard_part(stem, "keys"))
            except Damaged as exc:
                move_aside(stem, exc, self.on_damage)

    def _add_shard(self, stem: Path, keys: np.ndarray) -> None:
        shard = len(self._shards)
        self._shards.append(stem)
        self._vecs.append(None)
        self._index.add(keys, np.stack([np.full(len(keys), shard), np.arange(len(keys))], axis=1))

    def __len__(self) -> int:
        return len(self._index)

    def _open(self, shard: int) -> np.ndarray | None:
        """The shard's vectors, verified against its checksum on first use (None if damaged)."""
        if shard in self._dead:
            return None
        if self._vecs[shard] is None:
            try:
                self._vecs[shard] = read_shard_part(self._shards[shard], "vecs", mmap=True)
            except Damaged as exc:
                self._dead.add(shard)
                move_aside(self._shards[shard], exc, self.on_damage)
                return None
        return self._vecs[shard]

    def get(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(hit, vectors)``: which keys are cached (in verified shards) and their vectors, in order."""
        where = self._index.lookup(keys)
        hit = where[:, 0] >= 0
        for shard in np.unique(where[hit, 0]):
            if self._open(int(shard)) is None:
                hit &= where[:, 0] != shard
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
        write_shard(stem, keys, vecs)
        self._add_shard(stem, np.asarray(keys, dtype="S16"))

    def chunks(self) -> ChunkCache:
        """The same model's cache of whole corpus chunks (see :class:`ChunkCache`)."""
        return ChunkCache(self.dir / "chunks", on_damage=self.on_damage)


class ChunkCache:
    """Vectors of whole corpus chunks, named by their content, for corpora streamed in file order
    (MIRACL: tens of millions of passages, each encoded once).

    A chunk's shard is named by the digest of its texts' keys, so a re-run over the same files
    finds every chunk an earlier run finished (Ctrl-C keeps them), with one file lookup per chunk
    and nothing held in memory between chunks: no index grows with the corpus.
    """

    def __init__(self, folder: Path, *, on_damage: Callable[[str], None] | None = None) -> None:
        self.dir, self.on_damage = Path(folder), on_damage

    def _stem(self, keys: np.ndarray) -> Path:
        return self.dir / hashlib.blake2b(np.asarray(keys, dtype="S16").tobytes(), digest_size=16).hexdigest()

    def get(self, keys: np.ndarray) -> np.ndarray | None:
        stem = self._stem(keys)
        if not _shard_files(stem)[2].exists():
            return None
        try:
            if not np.array_equal(read_shard_part(stem, "keys"), keys):
                raise Damaged(_shard_files(stem)[0], "keys differ from the chunk's name")
            return read_shard_part(stem, "vecs")
        except Damaged as exc:
            move_aside(stem, exc, self.on_damage)
            return None

    def put(self, keys: np.ndarray, vecs: np.ndarray) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_shard(self._stem(keys), keys, vecs)

