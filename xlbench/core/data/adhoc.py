"""The two shapes a dataset plugin may return, and what the engine reads from each.

A dataset plugin's ``load`` returns an object with a ``shape`` the engine knows
(:data:`xlbench.core.evaluate.EVALUATORS`), a ``kind`` (stored with the dataset: "lareqa",
"miracl", "beir", or a plugin's own word), ``name``, ``version``, ``source``, ``languages``,
``stats() -> dict`` and ``query_texts() -> list[str]`` (every query, for the training-overlap check):

* ``shape = "pool"`` — :class:`~xlbench.core.data.lareqa.LareqaSet`: a LAReQA-style pool, every
  query with one relevant candidate per language; mono / cross / multi settings and the bias
  measures.
* ``shape = "adhoc"`` — :class:`AdhocSet` below: per language, queries with graded qrels over a
  corpus of any size streamed in chunks (``trec_eval -c -M 100`` semantics); with ``merge`` and two
  or more languages, also one multilingual pool of every language's documents (the multi setting
  and the bias measures).

Plugins build these from the public classes here; nothing in the engine tests a dataset's class.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

# What an ad-hoc evaluation can report per cell (``measures`` picks among them).
ADHOC_MEASURES = ("ndcg@10", "r@100", "mrr@10")


class AdhocLanguage(Protocol):
    """One language of an ad-hoc collection: queries, graded qrels and a corpus stream."""

    lang: str
    query_ids: list[str]
    query_text: list[str]
    qrels: dict[str, dict[str, int]]  # query id → {document id: grade}; grade ≥ 1 is relevant

    def iter_corpus(self, chunk: int = 4096) -> Iterator[tuple[list[str], list[str]]]:
        """``(document ids, texts)`` in a fixed order, ``chunk`` at a time; a bad line raises
        :class:`~xlbench.errors.DataError` naming its file and line."""
        ...


def chunked(documents: Iterable[tuple[str, str]], chunk: int) -> Iterator[tuple[list[str], list[str]]]:
    """``(id, text)`` pairs as ``(ids, texts)`` lists of ``chunk`` (the last may be shorter):
    what ``iter_corpus`` yields, from any per-document reader."""
    ids: list[str] = []
    texts: list[str] = []
    for docid, text in documents:
        ids.append(docid)
        texts.append(text)
        if len(ids) >= chunk:
            yield ids, texts
            ids, texts = [], []
    if ids:
        yield ids, texts


@dataclass
class AdhocSet:
    """Per-language collections evaluated with trec_eval's measures, optionally as one pool.

    ``measures`` are the per-cell metrics stored (a subset of :data:`ADHOC_MEASURES`, in that
    order). ``merge``: also evaluate the multilingual pool of all languages' documents, each
    query judged by its own qrels (document ids are namespaced ``lang:docid`` there)."""

    shape: ClassVar[str] = "adhoc"
    name: str
    version: str
    source: str
    split: str
    languages: list[str]
    per_lang: dict[str, AdhocLanguage]
    kind: str = "adhoc"
    measures: tuple[str, ...] = ADHOC_MEASURES
    merge: bool = False
    details: dict = field(default_factory=dict)  # extra statistics a loader wants shown

    @property
    def merged(self) -> bool:
        return self.merge and len(self.languages) > 1

    def query_texts(self) -> list[str]:
        return [t for lang in self.languages for t in self.per_lang[lang].query_text]

    def stats(self) -> dict:
        per = {}
        for lang in self.languages:
            part = self.per_lang[lang]
            entry = {"queries": len(part.query_ids), "judged_queries": len(part.qrels)}
            entry.update(self.details.get(lang, {}))
            per[lang] = entry
        return {"languages": self.languages, "split": self.split, "merged_pool": self.merged, "per_language": per}
