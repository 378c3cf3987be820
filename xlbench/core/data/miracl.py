"""MIRACL: topics and qrels TSV plus a JSONL(.gz) passage corpus per language.

Folder layout (as published on the Hugging Face hub, any depth below the folder)::

    miracl-v1.0-{lang}/topics/topics.miracl-v1.0-{lang}-{split}.tsv   qid \\t query
    miracl-v1.0-{lang}/qrels/qrels.miracl-v1.0-{lang}-{split}.tsv     qid Q0 docid rel
    miracl-corpus-v1.0-{lang}/docs-{i}.jsonl.gz                        {"docid", "title", "text"}

A passage is encoded as ``title + " " + text``. Topics and qrels are validated when loaded; the
corpus, which can hold tens of millions of passages, is validated as it streams (a bad line stops
the run with the file and line named, before any metric is stored).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from xlbench.core.data import select_languages
from xlbench.core.data.adhoc import AdhocSet, chunked
from xlbench.errors import ConfigError, DataError

HUB_TOPICS_REPO = "miracl/miracl"
HUB_CORPUS_REPO = "miracl/miracl-corpus"
LANGUAGES = ("ar", "bn", "de", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw", "te", "th", "yo", "zh")
_TOPICS_RE = re.compile(r"topics\.miracl-v1\.0-([a-z]+)-([a-z0-9-]+)\.tsv$")


@dataclass
class MiraclLanguage:
    lang: str
    topics_file: Path
    qrels_file: Path
    corpus_files: list[Path]
    query_ids: list[str] = field(default_factory=list)
    query_text: list[str] = field(default_factory=list)
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)

    def iter_corpus(self, chunk: int = 4096) -> Iterator[tuple[list[str], list[str]]]:
        """Yield ``(docids, texts)`` chunks in file order, validating each line."""
        return chunked(self._documents(), chunk)

    def _documents(self) -> Iterator[tuple[str, str]]:
        for path in self.corpus_files:
            opener = gzip.open if path.name.endswith(".gz") else open
            try:
                with opener(path, "rb") as raw:
                    for lineno, line in enumerate(io.TextIOWrapper(raw, encoding="utf-8"), start=1):
                        if line.strip():
                            yield _parse_doc(path, lineno, line)
            except (OSError, EOFError, UnicodeDecodeError) as exc:
                raise DataError(path, "", f"cannot read corpus file ({exc})") from None


@dataclass
class MiraclSet(AdhocSet):
    """MIRACL in the ad-hoc shape: per language, nDCG@10 and Recall@100 as the paper reports them."""

    kind: str = "miracl"
    measures: tuple[str, ...] = ("ndcg@10", "r@100")

    def stats(self) -> dict:
        return {
            "languages": self.languages,
            "split": self.split,
            "per_language": {
                lang: {"queries": len(v.query_ids), "judged_queries": len(v.qrels), "corpus_files": len(v.corpus_files)}
                for lang, v in self.per_lang.items()
            },
        }


def _parse_doc(path: Path, lineno: int, line: str) -> tuple[str, str]:
    try:
        doc = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"line {lineno} column {exc.colno}", f"invalid JSON ({exc.msg})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("docid"), str):
        raise DataError(path, f"line {lineno}", "expected an object with a string docid")
    title, text = doc.get("title", ""), doc.get("text")
    if not isinstance(text, str) or not isinstance(title, str):
        raise DataError(path, f"line {lineno}", "title and text must be strings")
    return doc["docid"], f"{title} {text}" if title else text


def read_topics(path: Path) -> tuple[list[str], list[str]]:
    ids, texts, seen = [], [], set()
    for lineno, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 2 or not parts[0] or not parts[1].strip():
            raise DataError(path, f"line {lineno}", "expected 'qid<TAB>query'")
        if parts[0] in seen:
            raise DataError(path, f"line {lineno}", f"query id {parts[0]!r} appears twice")
        seen.add(parts[0])
        ids.append(parts[0])
        texts.append(parts[1])
    if not ids:
        raise DataError(path, "", "no topics (empty language)")
    return ids, texts


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for lineno, line in enumerate(_lines(path), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise DataError(path, f"line {lineno}", "expected 'qid Q0 docid rel'")
        try:
            rel = int(parts[3])
        except ValueError:
            raise DataError(path, f"line {lineno}", f"relevance {parts[3]!r} is not an integer") from None
        qrels.setdefault(parts[0], {})[parts[2]] = rel
    if not qrels:
        raise DataError(path, "", "no judgements (empty language)")
    return qrels


def _lines(path: Path) -> Iterator[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            yield from fh
    except UnicodeDecodeError as exc:
        raise DataError(path, f"byte {exc.start}", "not valid UTF-8") from None
    except OSError as exc:
        raise DataError(path, "", f"cannot read ({exc.strerror})") from None


def discover(folder: Path, split: str) -> dict[str, tuple[Path, Path, list[Path]]]:
    """``{lang: (topics, qrels, corpus files)}`` found under ``folder``."""
    if not folder.is_dir():
        raise DataError(folder, "", "not a MIRACL folder")
    found: dict[str, tuple[Path, Path, list[Path]]] = {}
    for topics in sorted(folder.rglob("topics.miracl-v1.0-*.tsv")):
        m = _TOPICS_RE.search(topics.name)
        if not m or m.group(2) != split:
            continue
        lang = m.group(1)
        qrels = next(iter(folder.rglob(f"qrels.miracl-v1.0-{lang}-{split}.tsv")), None)
        if qrels is None:
            raise DataError(folder, "", f"language {lang}: topics but no qrels.miracl-v1.0-{lang}-{split}.tsv")
        corpus = sorted(folder.rglob(f"miracl-corpus-v1.0-{lang}/docs-*.jsonl*"), key=_shard_order)
        if not corpus:
            raise DataError(folder, "", f"language {lang}: no corpus files miracl-corpus-v1.0-{lang}/docs-*.jsonl.gz")
        found[lang] = (topics, qrels, corpus)
    if not found:
        raise DataError(folder, "", f"holds no topics.miracl-v1.0-{{lang}}-{split}.tsv files")
    return found


def _shard_order(path: Path) -> tuple[int, str]:
    m = re.search(r"docs-(\d+)", path.name)
    return (int(m.group(1)) if m else 0, path.name)


def load_miracl(folder: Path, *, languages: list[str] | None = None, split: str = "dev", name: str = "miracl") -> MiraclSet:
    found = discover(folder, split)
    found = select_languages(found, languages, folder, "MIRACL language")
    digest = hashlib.sha256()
    per_lang = {}
    for lang, (topics, qrels_file, corpus) in sorted(found.items()):
        ids, texts = read_topics(topics)
        qrels = read_qrels(qrels_file)
        digest.update(lang.encode() + topics.read_bytes() + qrels_file.read_bytes())
        for f in corpus:
            digest.update(f"{f.name}:{f.stat().st_size}".encode())
        per_lang[lang] = MiraclLanguage(lang, topics, qrels_file, corpus, ids, texts, qrels)
    return MiraclSet(name, digest.hexdigest()[:16], str(folder), split, sorted(per_lang), per_lang)


def download_from_hub(dest: Path, languages: list[str], split: str = "dev") -> Path:
    """Fetch topics, qrels and corpus shards for ``languages`` from the hub into ``dest``."""
    from huggingface_hub import hf_hub_download, snapshot_download

    unknown = [lang for lang in languages if lang not in LANGUAGES]
    if unknown:
        raise ConfigError(f"MIRACL has no language {', '.join(unknown)}; it has {', '.join(LANGUAGES)}")
    for lang in languages:
        for kind in ("topics", "qrels"):
            hf_hub_download(
                HUB_TOPICS_REPO, f"miracl-v1.0-{lang}/{kind}/{kind}.miracl-v1.0-{lang}-{split}.tsv",
                repo_type="dataset", local_dir=dest,
            )
        snapshot_download(HUB_CORPUS_REPO, repo_type="dataset", local_dir=dest,
                          allow_patterns=[f"miracl-corpus-v1.0-{lang}/*"])
    return dest
