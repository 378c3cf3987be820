"""Example encoder plugin: character n-gram hashing (eval-only, deterministic, no model).

A lexical baseline that needs no weights: each text becomes an L2-normalised bag of hashed
character 3-grams. It shows the encoder contract in a few lines, and because it is fully
deterministic the tests use it to check the evaluation engine against an independent computation.
Its vectors are the same bits on every machine: the counts are integers, the squared norm is an
exact integer sum, and the square root, the division and the cast to float32 are each correctly
rounded IEEE operations (no BLAS kernel, whose summation order varies by CPU, is involved).
Copy this file into your own plugins folder and change ``name`` to start a new encoder.
"""

import hashlib

import numpy as np


class HashingEncoder:
    kind = "encoder"
    name = "hashing"

    def __init__(self, dim: int = 512, n: int = 3) -> None:
        self.dim = int(dim)
        self.n = int(n)

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.int64)
        padded = f" {text.lower()} "
        for i in range(max(1, len(padded) - self.n + 1)):
            gram = padded[i : i + self.n].encode("utf-8")
            h = int.from_bytes(hashlib.blake2b(gram, digest_size=8).digest(), "little")
            v[h % self.dim] += 1 if (h >> 63) == 0 else -1
        norm = np.sqrt(np.float64(int((v * v).sum())))
        return (v / norm if norm > 0 else v.astype(np.float64)).astype(np.float32)

    def encode(self, texts: list[str], *, role: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])

    def fingerprint(self) -> str:
        return f"hashing-v2 dim={self.dim} n={self.n}"

    def describe(self) -> dict:
        return {"label": f"character {self.n}-gram hashing ({self.dim} dims)", "dim": self.dim}
