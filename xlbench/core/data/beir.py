"""BEIR-format collections: one folder, or a folder of per-language folders.

Layout (BEIR's; mMARCO, Mr. TyDi, XOR-TyDi and most multilingual collections ship in it)::

    DIR/corpus.jsonl[.gz]     {"_id": str, "title": str (optional), "text": str}
    DIR/queries.jsonl[.gz]    {"_id": str, "text": str}
    DIR/qrels/{split}.tsv     query-id <TAB> corpus-id <TAB> grade   (a header line is allowed;
                              TREC's "qid Q0 docid grade" rows are read too)

A folder whose sub-folders are such collections is multilingual: one language per sub-folder,
named by it (``DIR/ar``, ``DIR/de``, …). Each language is evaluated on its own and, unless
``DIR/collection.json`` says ``{"merge": false}``, all of them together as one pool (every
language's documents in one corpus, each query judged by its own qrels). ``collection.json`` may
also set ``name`` and, for a single collection, its ``language`` (default ``und``).

A passage is ``title + " " + text`` (BEIR's convention). Only queries judged in the split are
evaluated; a judged query without a relevant document counts 0, as trec_eval ``-c`` counts it.

Everything is checked when the collection loads, before a run row exists, in one streaming pass
over each corpus (memory: 8 bytes per document): malformed or non-UTF-8 JSONL, missing fields,
duplicate query or document ids, a qrels row naming an unknown query or document, an empty split,
a language folder without queries — each one line naming the file and the line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xlbench.core.data import select_languages
from xlbench.core.data.adhoc import AdhocSet, chunked
from xlbench.core.data.lines import json_lines, text_lines
from xlbench.errors import DataError

MANIFEST = "collection.json"
MANIFEST_KEYS = {"name": str, "merge": bool, "language": str}
SINGLE_LANGUAGE = "und"  # ISO 639-2 "undetermined", for a collection that names no language


@dataclass
class BeirLanguage:
    """One BEIR collection (one language), validated; its corpus is read again when streamed."""

    lang: str
    folder: Path
    corpus_file: Path
    query_ids: list[str] = field(default_factory=list)
    query_text: list[str] = field(default_factory=list)
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    documents: int = 0

    def iter_corpus(self, chunk: int = 4096) -> Iterator[tuple[list[str], list[str]]]:
        return chunked((_document(self.corpus_file, lineno, doc) for lineno, doc in _records(self.corpus_file)), chunk)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.jsonl", f"{stem}.jsonl.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _is_collection(folder: Path) -> bool:
    return any(_find(folder, stem) for stem in ("corpus", "queries")) or (folder / "qrels").is_dir()


def _records(path: Path, digest=None) -> Iterator[tuple[int, dict]]:
    """Each non-blank JSONL line as an object; bad UTF-8 or JSON is one line naming the place."""
    for lineno, _, record in json_lines(path, digest):
        if not isinstance(record, dict):
            raise DataError(path, f"line {lineno}", "expected a JSON object")
        yield lineno, record


def _string_id(path: Path, lineno: int, record: dict) -> str:
    value = record.get("_id")
    if not isinstance(value, str) or not value:
        raise DataError(path, f"line {lineno}", 'expected a non-empty string "_id"')
    return value


def _document(path: Path, lineno: int, record: dict) -> tuple[str, str]:
    docid = _string_id(path, lineno, record)
    title, text = record.get("title") or "", record.get("text")
    if not isinstance(text, str) or not isinstance(title, str):
        raise DataError(path, f"line {lineno}", '"title" and "text" must be strings')
    return docid, f"{title} {text}" if title else text


def read_queries(path: Path) -> dict[str, tuple[str, int]]:
    """``{query id: (text, line)}``."""
    out: dict[str, tuple[str, int]] = {}
    for lineno, record in _records(path):
        qid = _string_id(path, lineno, record)
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            raise DataError(path, f"line {lineno}", 'expected a non-empty string "text"')
        if qid in out:
            raise DataError(path, f"line {lineno}", f"query id {qid!r} appears twice (first on line {out[qid][1]})")
        out[qid] = (text, lineno)
    return out


def read_qrels(path: Path) -> tuple[dict[str, dict[str, int]], dict[tuple[str, str], int]]:
    """Graded judgements and the line of each ``(query, document)`` pair."""
    qrels: dict[str, dict[str, int]] = {}
    where: dict[tuple[str, str], int] = {}
    for lineno, line in text_lines(path):
        parts = line.split()
        if not parts:
            continue
        if len(parts) == 4:  # TREC: qid Q0 docid grade
            parts = [parts[0], parts[2], parts[3]]
        if len(parts) != 3:
            raise DataError(path, f"line {lineno}", "expected 'query-id<TAB>corpus-id<TAB>grade'")
        qid, docid, grade = parts
        try:
            value = int(grade)
        except ValueError:
            if lineno == 1:  # BEIR's header line
                continue
            raise DataError(path, f"line {lineno}", f"grade {grade!r} is not an integer") from None
        if (qid, docid) in where:
            raise DataError(path, f"line {lineno}", f"query {qid!r} judges document {docid!r} twice "
                                                    f"(first on line {where[qid, docid]})")
        where[qid, docid] = lineno
        qrels.setdefault(qid, {})[docid] = value
    if not qrels:
        raise DataError(path, "", "no judgements: the split is empty")
    return qrels, where


def _id_hash(docid: str) -> int:
    return int.from_bytes(hashlib.blake2b(docid.encode(), digest_size=8).digest(), "little")


def _check_corpus(path: Path, judged: set[str], digest) -> tuple[int, set[str]]:
    """One pass: every line well formed, no id twice; returns the count and the judged ids seen.

    Duplicates are found through 64-bit hashes of the ids (8 bytes per document, whatever the
    corpus size); a repeated hash is confirmed on the ids themselves before it is reported."""
    hashes: list[np.ndarray] = []
    block: list[int] = []
    seen: set[str] = set()
    count = 0
    for lineno, record in _records(path, digest):
        docid, _ = _document(path, lineno, record)
        count += 1
        block.append(_id_hash(docid))
        if docid in judged:
            seen.add(docid)
        if len(block) >= 65536:
            hashes.append(np.asarray(block, dtype=np.uint64))
            block = []
    hashes.append(np.asarray(block, dtype=np.uint64))
    flat = np.sort(np.concatenate(hashes))
    repeated = set(flat[1:][flat[1:] == flat[:-1]].tolist())
    if repeated:
        first: dict[str, int] = {}
        for lineno, record in _records(path):
            docid = _string_id(path, lineno, record)
            if _id_hash(docid) in repeated:
                if docid in first:
                    raise DataError(path, f"line {lineno}", f"document id {docid!r} appears twice (first on line {first[docid]})")
                first[docid] = lineno
    return count, seen


def load_language(folder: Path, lang: str, split: str, digest) -> BeirLanguage:
    queries_file = _find(folder, "queries")
    if queries_file is None:
        raise DataError(folder, "", "a collection folder without queries.jsonl")
    corpus_file = _find(folder, "corpus")
    if corpus_file is None:
        raise DataError(folder, "", "a collection folder without corpus.jsonl")
    qrels_file = folder / "qrels" / f"{split}.tsv"
    if not qrels_file.is_file():
        splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else []
        have = f" (splits here: {', '.join(splits)}; choose one with --split)" if splits else ""
        raise DataError(qrels_file, "", f"no qrels for split {split!r}{have}")
    queries = read_queries(queries_file)
    qrels, where = read_qrels(qrels_file)
    for (qid, docid), lineno in where.items():
        if qid not in queries:
            raise DataError(qrels_file, f"line {lineno}", f"names query {qid!r}, which {queries_file.name} does not hold")
    digest.update(lang.encode() + queries_file.read_bytes() + qrels_file.read_bytes())
    judged = {docid for docs in qrels.values() for docid in docs}
    documents, seen = _check_corpus(corpus_file, judged, digest)
    if not documents:
        raise DataError(corpus_file, "", "no documents")
    unknown = judged - seen
    if unknown:
        (qid, docid), lineno = min(((k, v) for k, v in where.items() if k[1] in unknown), key=lambda kv: kv[1])
        raise DataError(qrels_file, f"line {lineno}", f"names document {docid!r}, which {corpus_file.name} does not hold")
    ids = list(qrels)  # judged queries, in qrels order
    return BeirLanguage(lang, folder, corpus_file, ids, [queries[q][0] for q in ids], qrels, documents)


def read_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, "", f"not a JSON object ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(path, "", "expected a JSON object")
    for key, value in data.items():
        if key not in MANIFEST_KEYS:
            raise DataError(path, key, f"unknown key (known: {', '.join(MANIFEST_KEYS)})")
        if not isinstance(value, MANIFEST_KEYS[key]):
            raise DataError(path, key, f"expected a {MANIFEST_KEYS[key].__name__}")
    return data


def language_folders(folder: Path) -> dict[str, Path]:
    """``{language: folder}``: the folder itself (one collection) or its collection sub-folders."""
    if not folder.is_dir():
        raise DataError(folder, "", "no such folder")
    manifest = read_manifest(folder)
    if _is_collection(folder):
        return {manifest.get("language", SINGLE_LANGUAGE): folder}
    found = {p.name: p for p in sorted(folder.iterdir()) if p.is_dir() and _is_collection(p)}
    if not found:
        raise DataError(folder, "", "not a BEIR folder: no corpus.jsonl, queries.jsonl or qrels/ here or in a sub-folder")
    return found


def load_beir(folder: Path, *, languages: list[str] | None = None, split: str = "test", name: str | None = None,
              merge: bool | None = None) -> AdhocSet:
    """Load and check a BEIR collection (or a folder of per-language ones)."""
    found = language_folders(folder)
    manifest = read_manifest(folder)
    found = select_languages(found, languages, folder)
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode())
    per_lang = {lang: load_language(sub, lang, split, digest) for lang, sub in sorted(found.items())}
    merge = manifest.get("merge", True) if merge is None else merge
    details = {lang: {"documents": part.documents} for lang, part in per_lang.items()}
    return AdhocSet(name or manifest.get("name") or folder.name, digest.hexdigest()[:16], str(folder), split,
                    sorted(per_lang), per_lang, kind="beir", merge=merge, details=details)
