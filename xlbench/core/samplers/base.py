"""The sampler contract, and what all built-in samplers share.

A sampler is a class with class attributes ``kind = "sampler"`` and ``name``, constructed as
``Cls(corpus, batch_size=..., seed=..., **options)``. ``corpus`` exposes ``languages``,
``group_ids``, ``has`` (a ``[groups, languages]`` boolean matrix: which languages each group has)
and ``sizes()``. Iterating the sampler yields batches forever, each a list of
``(group_id, query_lang, passage_lang)``; ``state()`` returns a JSON-serialisable position and
``restore(state)`` continues from it, so a resumed run sees exactly the batches it would have seen.

Options a sampler accepts are declared in ``options`` (name → :class:`Option`), which lets the CLI
validate them up front and the TUI build a form.

Invariants of every built-in (property-tested): a batch never holds the same ``group_id`` twice
(its translation would be a false in-batch negative), a group is never asked for a language it
lacks, and the sequence is a pure function of the seed.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from xlbench.errors import ConfigError

Batch = list[tuple[str, str, str]]


@dataclass
class CorpusShape:
    """The least a sampler sees of a corpus (a :class:`ParallelCorpus` has the same members):
    handy for sampler tests and benchmarks that need no texts."""

    languages: list[str]
    group_ids: list[str]
    has: np.ndarray  # (groups, languages) bool

    def sizes(self) -> dict[str, int]:
        return {lang: int(self.has[:, i].sum()) for i, lang in enumerate(self.languages)}


@dataclass(frozen=True)
class Option:
    type: type
    default: Any
    help: str = ""
    choices: tuple = ()
    min: float | None = None
    max: float | None = None

    def parse(self, name: str, value: Any) -> Any:
        try:
            if self.type is bool and isinstance(value, str):
                value = {"true": True, "false": False, "1": True, "0": False}[value.lower()]
            out = self.type(value)
        except (TypeError, ValueError, KeyError):
            raise ConfigError(f"sampler option {name}={value!r}: expected {self.type.__name__}") from None
        if isinstance(out, float) and not math.isfinite(out):
            raise ConfigError(f"sampler option {name}={value!r}: must be a finite number")
        if self.choices and out not in self.choices:
            raise ConfigError(f"sampler option {name}={out!r}: choose one of {', '.join(map(str, self.choices))}")
        if (self.min is not None and out < self.min) or (self.max is not None and out > self.max):
            raise ConfigError(f"sampler option {name}={out!r}: must lie in [{self.min}, {self.max}]")
        return out


def validate_options(cls: type, options: dict) -> dict:
    """Parsed options with defaults filled in; an unknown name lists the valid ones."""
    declared: dict[str, Option] = getattr(cls, "options", {})
    unknown = sorted(set(options) - set(declared))
    if unknown:
        valid = ", ".join(sorted(declared)) or "none"
        raise ConfigError(f"sampler {cls.name!r} has no option {', '.join(unknown)} (valid: {valid})")
    return {k: opt.parse(k, options.get(k, opt.default)) for k, opt in declared.items()}


class BuiltinSampler:
    """Shared machinery: language/group indexes, one persistent RNG whose state is the position."""

    kind: ClassVar[str] = "sampler"
    name: ClassVar[str] = ""
    options: ClassVar[dict[str, Option]] = {}

    def __init__(self, corpus, *, batch_size: int, seed: int = 0, **options) -> None:
        if batch_size < 2:
            raise ConfigError("batch size must be at least 2 (in-batch negatives need company)")
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.opts = validate_options(type(self), options)
        self.languages = list(corpus.languages)
        self.group_ids = np.asarray(corpus.group_ids, dtype=object)
        self.has = np.asarray(corpus.has, dtype=bool)
        self.rng = np.random.default_rng(self.seed)
        self.batches = 0
        self._setup()

    def _setup(self) -> None:
        """Index the corpus for this sampler (override)."""

    def next_batch(self) -> Batch:
        raise NotImplementedError

    def __iter__(self):
        while True:
            batch = self.next_batch()
            self.batches += 1
            yield batch

    def state(self) -> dict:
        return {"sampler": self.name, "seed": self.seed, "batches": self.batches, "rng": self.rng.bit_generator.state}

    def restore(self, state: dict) -> None:
        if state.get("sampler") != self.name:
            raise ConfigError(f"sampler state is from {state.get('sampler')!r}, not {self.name!r}")
        self.rng.bit_generator.state = state["rng"]
        self.batches = int(state["batches"])

    # --- building blocks ---------------------------------------------------------------

    def _pick(self, pool: np.ndarray) -> np.ndarray:
        """``batch_size`` distinct entries of ``pool``."""
        return pool[self.rng.choice(len(pool), size=self.batch_size, replace=False)]


@dataclass
class MonoIndex:
    """Groups per language, and the languages with enough of them for a whole batch."""

    by_lang: list[np.ndarray]
    eligible: np.ndarray
    probs: np.ndarray = field(default_factory=lambda: np.zeros(0))


def mono_index(sampler: BuiltinSampler, weights: str) -> MonoIndex:
    by_lang = [np.nonzero(sampler.has[:, li])[0] for li in range(len(sampler.languages))]
    eligible = np.array([li for li, g in enumerate(by_lang) if len(g) >= sampler.batch_size], dtype=np.int64)
    if not len(eligible):
        raise ConfigError(f"no language has {sampler.batch_size} items for a monolingual batch "
                          f"(largest: {max(len(g) for g in by_lang)}); lower the batch size")
    sizes = np.array([len(by_lang[li]) for li in eligible], dtype=np.float64)
    probs = sizes / sizes.sum() if weights == "size" else np.full(len(eligible), 1.0 / len(eligible))
    return MonoIndex(by_lang, eligible, probs)


def mono_batch(sampler: BuiltinSampler, index: MonoIndex) -> Batch:
    li = int(index.eligible[sampler.rng.choice(len(index.eligible), p=index.probs)])
    lang = sampler.languages[li]
    return [(gid, lang, lang) for gid in sampler.group_ids[sampler._pick(index.by_lang[li])]]


@dataclass
class CrossIndex:
    multi: np.ndarray  # groups with at least two languages
    pairs: list[tuple[int, int]]  # directions with enough groups (mode=direction)
    pair_groups: list[np.ndarray]


def cross_index(sampler: BuiltinSampler, mode: str) -> CrossIndex:
    multi = np.nonzero(sampler.has.sum(axis=1) >= 2)[0]
    pairs, pair_groups = [], []
    if mode == "direction":
        n_l = len(sampler.languages)
        for x in range(n_l):
            for y in range(n_l):
                if x != y:
                    both = np.nonzero(sampler.has[:, x] & sampler.has[:, y])[0]
                    if len(both) >= sampler.batch_size:
                        pairs.append((x, y))
                        pair_groups.append(both)
        if not pairs:
            raise ConfigError(f"no language pair shares {sampler.batch_size} items for a cross-lingual batch; lower the batch size")
    elif len(multi) < sampler.batch_size:
        raise ConfigError(f"only {len(multi)} items exist in two or more languages; a cross-lingual batch needs {sampler.batch_size}")
    return CrossIndex(multi, pairs, pair_groups)


def cross_batch(sampler: BuiltinSampler, index: CrossIndex, mode: str) -> Batch:
    langs = sampler.languages
    if mode == "direction":
        k = int(sampler.rng.integers(len(index.pairs)))
        x, y = index.pairs[k]
        return [(gid, langs[x], langs[y]) for gid in sampler.group_ids[sampler._pick(index.pair_groups[k])]]
    groups = sampler._pick(index.multi)
    # two distinct available languages per group, in random order: the largest two random keys
    keys = np.where(sampler.has[groups], sampler.rng.random((len(groups), len(langs))), -1.0)
    top = np.argsort(-keys, axis=1)[:, :2]
    return [(gid, langs[q], langs[p]) for gid, q, p in zip(sampler.group_ids[groups], top[:, 0], top[:, 1])]
