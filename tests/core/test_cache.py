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
    assert (again.lookup(text_keys(["a"], "passage")) == -1).all()  # role is part of the key


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
