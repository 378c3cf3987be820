"""What a run of batches looks like: shares and counts that show what a sampler does."""

from __future__ import annotations

from collections import Counter


def batch_stats(batches: list[list[tuple[str, str, str]]]) -> dict:
    directions: Counter = Counter()
    mono = repeated = pairs = cross_pairs = 0
    for batch in batches:
        if all(q == p for _, q, p in batch):
            mono += 1
        if len({g for g, _, _ in batch}) != len(batch):
            repeated += 1
        for _, q, p in batch:
            directions[f"{q}→{p}"] += 1
            pairs += 1
            cross_pairs += q != p
    return {"batches": len(batches), "mono_batches": mono, "mono_share": mono / max(1, len(batches)),
            "cross_pair_share": cross_pairs / max(1, pairs), "repeated_groups": repeated, "directions": dict(directions)}
