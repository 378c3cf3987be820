"""Parallel training corpora: one item (``group_id``) in several languages.

Each (group, language) holds a query, a positive passage and optionally a hard negative. A
sampler sees only the shape (:class:`CorpusShape`): languages, group ids, which languages each
group has, per-language sizes; the trainer asks the corpus for the texts of the pairs it was given.

Loaders (all validate and raise one-line :class:`DataError` naming file and line):

* :func:`load_jsonl`: ``{"id", "lang", "query", "passage", "negative"?}`` per line;
* :func:`load_lareqa_training`: LAReQA folders (question → answer sentence with its paragraph),
  e.g. MLQA-R to train a model tested zero-shot on XQuAD-R;
* :func:`load_mlqa_translate_train`: Hugging Face ``facebook/mlqa`` ``mlqa-translate-train.*``
  joined by id with ``rajpurkar/squad`` train (English), or local JSONL files with the same rows;
* :func:`load_mmarco`: mMARCO's id-aligned queries, collections and training triples.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xlbench.core.data.lines import json_lines, text_lines
from xlbench.errors import ConfigError, DataError


@dataclass
class ParallelCorpus:
    name: str
    version: str
    source: str
    languages: list[str]
    group_ids: list[str]
    has: np.ndarray  # (G, L) bool: group g has language l
    queries: list[list[str | None]]  # [l][g]
    passages: list[list[str | None]]
    negatives: list[list[str | None]] | None = None

    @property
    def n_groups(self) -> int:
        return len(self.group_ids)

    def sizes(self) -> dict[str, int]:
        return {lang: int(self.has[:, li].sum()) for li, lang in enumerate(self.languages)}

    def lang_index(self, lang: str) -> int:
        return self.languages.index(lang)

    def pair(self, group: int, query_lang: int, passage_lang: int) -> tuple[str, str, str | None]:
        """Texts of one training pair: the query in one language, its passage (and negative) in another."""
        neg = self.negatives[passage_lang][group] if self.negatives is not None else None
        return self.queries[query_lang][group], self.passages[passage_lang][group], neg

    def subset(self, groups: np.ndarray, name: str | None = None) -> ParallelCorpus:
        groups = np.asarray(groups, dtype=np.int64)
        pick = lambda cols: [[col[g] for g in groups] for col in cols]  # noqa: E731
        return ParallelCorpus(
            name or self.name, self.version, self.source, self.languages, [self.group_ids[g] for g in groups],
            self.has[groups], pick(self.queries), pick(self.passages),
            pick(self.negatives) if self.negatives is not None else None,
        )

    def split(self, val_share: float, seed: int) -> tuple[ParallelCorpus, ParallelCorpus | None]:
        """Hold out a share of whole groups (never half a group) for validation."""
        if val_share <= 0:
            return self, None
        rng = np.random.default_rng(seed)
        order = rng.permutation(self.n_groups)
        n_val = max(1, int(round(val_share * self.n_groups)))
        return self.subset(np.sort(order[n_val:])), self.subset(np.sort(order[:n_val]), f"{self.name} (validation)")

    def stats(self) -> dict:
        per_group = self.has.sum(axis=1)
        return {"groups": self.n_groups, "languages": self.languages, "per_language": self.sizes(),
                "groups_by_language_count": {int(k): int((per_group == k).sum()) for k in np.unique(per_group)},
                "hard_negatives": self.negatives is not None}


def build_corpus(name: str, source: str, rows: dict[tuple[str, str], tuple[str, str, str | None]], digest: str) -> ParallelCorpus:
    """A corpus from ``{(group id, language): (query, passage, negative or None)}``; ``digest`` (hex)
    names its content version (the first 16 characters are kept)."""
    languages = sorted({lang for _, lang in rows})
    group_ids = sorted({gid for gid, _ in rows})
    g_index = {g: i for i, g in enumerate(group_ids)}
    l_index = {lang: i for i, lang in enumerate(languages)}
    has = np.zeros((len(group_ids), len(languages)), dtype=bool)
    queries = [[None] * len(group_ids) for _ in languages]
    passages = [[None] * len(group_ids) for _ in languages]
    any_negative = any(v[2] for v in rows.values())
    negatives = [[None] * len(group_ids) for _ in languages] if any_negative else None
    for (gid, lang), (q, p, n) in rows.items():
        g, li = g_index[gid], l_index[lang]
        has[g, li] = True
        queries[li][g], passages[li][g] = q, p
        if negatives is not None:
            negatives[li][g] = n
    if not rows:
        raise DataError(source, "", "no training items")
    return ParallelCorpus(name, digest[:16], source, languages, group_ids, has, queries, passages, negatives)


def _text(value, path, place, field: str, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise DataError(path, place, f"{field!r} must be a non-empty string")
    return value




def load_jsonl(path: Path, *, languages: list[str] | None = None, name: str | None = None) -> ParallelCorpus:
    """``{"id", "lang", "query", "passage", "negative"?}`` per line; ``id`` is the group id."""
    path = Path(path)
    rows: dict[tuple[str, str], tuple[str, str, str | None]] = {}
    digest = hashlib.sha256()
    for lineno, line, obj in json_lines(path):
        digest.update(line.encode())
        place = f"line {lineno}"
        if not isinstance(obj, dict):
            raise DataError(path, place, "expected an object")
        gid = obj.get("id")
        if isinstance(gid, int) and not isinstance(gid, bool):
            gid = str(gid)
        gid = _text(gid, path, place, "id")
        lang = _text(obj.get("lang"), path, place, "lang")
        if languages and lang not in languages:
            continue
        if (gid, lang) in rows:
            raise DataError(path, place, f"item {gid!r} in {lang!r} appears twice")
        rows[(gid, lang)] = (_text(obj.get("query"), path, place, "query"),
                             _text(obj.get("passage"), path, place, "passage"),
                             _text(obj.get("negative"), path, place, "negative", required=False))
    return build_corpus(name or path.stem, str(path), rows, digest.hexdigest())


def load_lareqa_training(folder: Path, *, languages: list[str] | None = None, candidate_text: str = "sentence+context",
                         name: str | None = None, articles: str | None = None) -> ParallelCorpus:
    """Questions → their answer sentence (with paragraph) from a LAReQA folder, grouped by question id."""
    from xlbench.core.data.lareqa import load_lareqa

    ds = load_lareqa(name or Path(folder).name, Path(folder), languages=languages, candidate_text=candidate_text,
                     articles=articles)
    rows = {}
    for qid, li, text, rel in zip(ds.query_ids, ds.query_lang, ds.query_text, ds.relevant):
        rows[(qid, ds.languages[li])] = (text, ds.cand_text[rel[li]], None)
    return build_corpus(ds.name, ds.source, rows, ds.version)


# --- MLQA translate-train ⋈ SQuAD train -------------------------------------------------------

MLQA_TRANSLATE_LANGS = ("ar", "de", "es", "hi", "vi", "zh")


def load_mlqa_translate_train(languages: list[str], *, folder: Path | None = None, limit: int | None = None) -> ParallelCorpus:
    """SQuAD v1.1 train (English) joined by id with its machine translations in MLQA.

    ``folder``: local JSONL files ``squad-train.jsonl`` and ``mlqa-translate-train.{lang}.jsonl``
    holding the hub rows (``id``, ``context``, ``question``, ``answers``); otherwise the hub
    datasets ``rajpurkar/squad`` (train) and ``facebook/mlqa`` (``mlqa-translate-train.{lang}``,
    train split). Never the validation splits: they are SQuAD dev, which holds every XQuAD question.
    """
    unknown = [lang for lang in languages if lang != "en" and lang not in MLQA_TRANSLATE_LANGS]
    if unknown:
        raise ConfigError(f"MLQA translate-train has no language {', '.join(unknown)}; it has en, {', '.join(MLQA_TRANSLATE_LANGS)}")
    rows: dict[tuple[str, str], tuple[str, str, None]] = {}
    digest = hashlib.sha256()
    for lang in languages:
        where = (folder / _mlqa_file(lang)) if folder else f"{'rajpurkar/squad' if lang == 'en' else 'facebook/mlqa'}:{lang}"
        for lineno, row in _mlqa_rows(lang, folder):
            place = f"row {lineno}"
            qid = _text(row.get("id"), where, place, "id")
            question = _text(row.get("question"), where, place, "question")
            context = _text(row.get("context"), where, place, "context")
            rows[(qid, lang)] = (question, context, None)
            digest.update(f"{lang}\0{qid}\0{question}".encode())
    if limit:
        keep = sorted({gid for gid, _ in rows})[:limit]
        keep_set = set(keep)
        rows = {k: v for k, v in rows.items() if k[0] in keep_set}
    # a translation without its English original (or vice versa) still trains; groups are by id
    return build_corpus("mlqa-translate-train", str(folder or "hub: rajpurkar/squad ⋈ facebook/mlqa"), rows, digest.hexdigest())


def _mlqa_file(lang: str) -> str:
    return "squad-train.jsonl" if lang == "en" else f"mlqa-translate-train.{lang}.jsonl"


def _mlqa_rows(lang: str, folder: Path | None):
    if folder is not None:
        path = Path(folder) / _mlqa_file(lang)
        if not path.exists():
            raise DataError(path, "", "missing (expected the hub rows as JSON lines)")
        for lineno, _, row in json_lines(path):
            yield lineno, row
        return
    from datasets import load_dataset

    repo, config = ("rajpurkar/squad", None) if lang == "en" else ("facebook/mlqa", f"mlqa-translate-train.{lang}")
    try:
        data = load_dataset(repo, config, split="train")
    except Exception as exc:  # no network, no such config: one line, and the offline alternative
        raise DataError(f"hub:{repo}" + (f"/{config}" if config else ""), "",
                        f"cannot load ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                        "offline, pass data.path = a folder of squad-train.jsonl and mlqa-translate-train.{lang}.jsonl") from None
    yield from enumerate(data, start=1)


# --- mMARCO ---------------------------------------------------------------------------------


def load_mmarco(folder: Path, languages: list[str], *, limit: int = 100_000) -> ParallelCorpus:
    """mMARCO (``unicamp-dl/mmarco`` raw files; ids shared across languages).

    Reads ``triples.train.ids.small.tsv`` (qid, positive pid, negative pid) for the first
    ``limit`` distinct queries, then ``queries/train/{lang}_queries.train.tsv`` and
    ``collections/{lang}_collection.tsv`` keeping only the ids needed.
    """
    folder = Path(folder)
    triples = _find(folder, "triples.train.ids.small.tsv")
    wanted: dict[str, tuple[str, str]] = {}
    for lineno, parts in _tsv(triples, 3):
        if parts[0] not in wanted:
            wanted[parts[0]] = (parts[1], parts[2])
            if len(wanted) >= limit:
                break
    pids = {p for pair in wanted.values() for p in pair}
    rows: dict[tuple[str, str], tuple[str, str, str | None]] = {}
    digest = hashlib.sha256(f"{limit}".encode())
    for lang in languages:
        queries = {q: t for _, (q, t) in _tsv(_find(folder, f"{lang}_queries.train.tsv"), 2) if q in wanted}
        passages = {p: t for _, (p, t) in _tsv(_find(folder, f"{lang}_collection.tsv"), 2) if p in pids}
        for qid, (pos, neg) in wanted.items():
            if qid in queries and pos in passages:
                rows[(qid, lang)] = (queries[qid], passages[pos], passages.get(neg))
        digest.update(f"{lang}:{len(queries)}:{len(passages)}".encode())
    return build_corpus("mmarco", str(folder), rows, digest.hexdigest())


def _find(folder: Path, name: str) -> Path:
    hit = next(iter(sorted(folder.rglob(name))), None)
    if hit is None:
        raise DataError(folder, "", f"no {name} below this folder")
    return hit


def _tsv(path: Path, n_fields: int):
    for lineno, line in text_lines(path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) != n_fields:
            raise DataError(path, f"line {lineno}", f"expected {n_fields} tab-separated fields")
        yield lineno, parts


# --- contamination guard --------------------------------------------------------------------

_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


def normalise_question(text: str) -> str:
    """Case-folded NFKC text with punctuation and whitespace runs collapsed to single spaces."""
    return _PUNCT.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def overlap(corpus: ParallelCorpus, eval_questions: set[str]) -> dict[str, int]:
    """Training items whose normalised question also occurs in the evaluation sets, per language."""
    counts: dict[str, int] = {}
    for li, lang in enumerate(corpus.languages):
        n = sum(1 for q in corpus.queries[li] if q is not None and normalise_question(q) in eval_questions)
        if n:
            counts[lang] = n
    return counts
