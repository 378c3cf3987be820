"""A fast deterministic encoder for scale benchmarks (not a retrieval model): each text becomes the
32 signed bytes of its blake2b digest, so equal texts get equal vectors and any two different texts
look unrelated. About 1 µs per text, so a benchmark measures xlbench, not a model."""

import hashlib

import numpy as np


class FastHashEncoder:
    kind = "encoder"
    name = "fast-hash"

    def __init__(self, dim: int = 32) -> None:
        self.dim = int(dim)

    def encode(self, texts: list[str], *, role: str) -> np.ndarray:
        raw = b"".join(hashlib.blake2b(t.encode(), digest_size=self.dim).digest() for t in texts)
        return np.frombuffer(raw, dtype=np.int8).reshape(len(texts), self.dim).astype(np.float32)

    def fingerprint(self) -> str:
        return f"fast-hash-v1 dim={self.dim}"
