"""Embedding cache: survives reopen, only complete shards count, lookups are exact."""

from __future__ import annotations

import numpy as np

from xlbench.core.encoders.base import encode_texts
from xlbench.core.encoders.cache import EmbeddingCache, text_keys


def test_roundtrip_and_reopen(tmp_path):
    cache = EmbeddingCache(tmp_path, "m")
    keys = text_keys(["a", "b", "c"], "query")
    vecs = np.arange(6, dtype=np.float32).reshape(3, 2)
    cache.append(keys[:2], vecs[:2])
    cache.append(keys[2:], vecs[2:])
    again = EmbeddingCache(tmp_path, "m")
    hit, got = again.get(text_keys(["c", "x", "a"], "query"))
    assert hit.tolist() == [True, False, True]
    np.testing.assert_array_equal(got, vecs[[2, 0]])
    assert not again.get(text_keys(["a"], "passage"))[0].any()  # role is part of the key


def test_incomplete_shard_is_ignored(tmp_path):
    cache = EmbeddingCache(tmp_path, "m")
    cache.append(text_keys(["a"], "query"), np.ones((1, 2), np.float32))
    (tmp_path / "m" / "deadbeef.keys.npy").write_bytes(b"partial")  # keys without vectors
    assert len(EmbeddingCache(tmp_path, "m")) == 1


def test_interrupted_encoding_keeps_flushed_vectors(tmp_path, hashing_encoder):
    cache = EmbeddingCache(tmp_path, "h")
    texts = [f"text number {i}" for i in range(50)]

    def stop_after_30(done, total):
        if done >= 30:
            raise KeyboardInterrupt

    try:
        encode_texts(hashing_encoder, texts, "passage", cache=cache, batch_size=10, on_progress=stop_after_30)
    except KeyboardInterrupt:
        pass
    reopened = EmbeddingCache(tmp_path, "h")
    assert len(reopened) == 30
    full = encode_texts(hashing_encoder, texts, "passage", cache=reopened, batch_size=10)
    np.testing.assert_array_equal(full, hashing_encoder.encode(texts, role="passage"))


def test_key_index_keeps_few_runs_and_finds_every_key():
    from xlbench.core.encoders.cache import KeyIndex

    index = KeyIndex()
    rng = np.random.default_rng(0)
    all_keys = []
    for shard in range(300):  # 300 appends of 64 keys
        keys = np.array([rng.bytes(16) for _ in range(64)], dtype="S16")
        index.add(keys, np.stack([np.full(64, shard), np.arange(64)], axis=1))
        all_keys.append(keys)
        assert len(index.runs) <= int(np.log2(shard + 1)) + 2  # merged like a binary counter
    keys = np.concatenate(all_keys)
    where = index.lookup(keys)
    np.testing.assert_array_equal(where[:, 0], np.repeat(np.arange(300), 64))
    np.testing.assert_array_equal(where[:, 1], np.tile(np.arange(64), 300))
    assert (index.lookup(np.array([b"\0" * 16], dtype="S16")) == -1).all()


def test_chunk_cache_round_trip_and_damage(tmp_path):
    from xlbench.core.encoders.cache import ChunkCache

    messages = []
    chunks = ChunkCache(tmp_path / "chunks", on_damage=messages.append)
    keys = text_keys([f"passage {i}" for i in range(10)], "passage")
    vecs = np.random.default_rng(1).standard_normal((10, 4)).astype(np.float32)
    assert chunks.get(keys) is None
    chunks.put(keys, vecs)
    np.testing.assert_array_equal(chunks.get(keys), vecs)
    assert chunks.get(keys[::-1]) is None  # another chunk (same texts, other order): another name
    shard = next((tmp_path / "chunks").glob("*.vecs.npy"))
    shard.write_bytes(shard.read_bytes()[:-8])
    assert chunks.get(keys) is None and messages and shard.name in messages[0]
    assert not shard.exists() and shard.with_name(shard.name + ".damaged").exists()
