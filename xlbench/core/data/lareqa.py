"""LAReQA-format retrieval sets (XQuAD-R, MLQA-R): load, validate, and lay out for scoring.

One JSON file per language, SQuAD v1.1 shape plus ``sentence_breaks`` per paragraph (schema in
``shared/data/lareqa/SOURCE.md``). A *candidate* is one sentence ``context[start:end]`` of a
paragraph, encoded with its paragraph as context; the *relevant* candidates of question ``id`` are
its answer sentences (the break holding ``answer_start``) in every language that has ``id``.

Every problem in a file raises :class:`~xlbench.errors.DataError` naming the file and the JSON
path of the offending value, before anything is written anywhere.
"""

from __future__ import annotations

import hashlib
import json
import lzma
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from xlbench.core.data import select_languages
from xlbench.errors import ConfigError, DataError

CANDIDATE_TEXT_MODES = ("sentence+context", "sentence")


@dataclass
class LanguageFile:
    """One language's questions and candidate sentences, validated."""

    lang: str
    cand_ids: list[str] = field(default_factory=list)
    cand_sentence: list[str] = field(default_factory=list)
    cand_context: list[str] = field(default_factory=list)
    query_ids: list[str] = field(default_factory=list)
    query_text: list[str] = field(default_factory=list)
    answer_cand: list[int] = field(default_factory=list)  # index into this file's candidates


@dataclass
class LareqaSet:
    """A multilingual pool laid out for scoring.

    Candidates are concatenated language by language: language ``l`` owns rows
    ``lang_offsets[l]:lang_offsets[l + 1]``. ``relevant[q, l]`` is the global candidate index of
    query ``q``'s answer sentence in language ``l`` (-1 where that language lacks the id).
    """

    shape: ClassVar[str] = "pool"  # the engine's shape (xlbench.core.data.adhoc)
    kind: ClassVar[str] = "lareqa"
    name: str
    version: str
    source: str
    languages: list[str]
    lang_offsets: np.ndarray
    cand_ids: list[str]
    cand_text: list[str]
    query_ids: list[str]
    query_lang: np.ndarray
    query_text: list[str]
    relevant: np.ndarray
    candidate_text: str = "sentence+context"

    @property
    def n_candidates(self) -> int:
        return int(self.lang_offsets[-1])

    def query_texts(self) -> list[str]:
        return self.query_text

    def stats(self) -> dict:
        per_lang = {}
        for li, lang in enumerate(self.languages):
            per_lang[lang] = {
                "queries": int((self.query_lang == li).sum()),
                "candidates": int(self.lang_offsets[li + 1] - self.lang_offsets[li]),
            }
        return {
            "languages": self.languages,
            "queries": len(self.query_ids),
            "candidates": self.n_candidates,
            "per_language": per_lang,
        }


def _fail(path: Path, place: str, problem: str) -> DataError:
    return DataError(path, place, problem)


def _expect(value, kind, path: Path, place: str, what: str):
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _fail(path, place, f"expected {what}, found {type(value).__name__}")
    return value


def _read_json(path: Path, raw: bytes):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(path, f"byte {exc.start}", "not valid UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"line {exc.lineno} column {exc.colno}", f"invalid JSON ({exc.msg})") from None


def parse_slice(text: str | None) -> slice | None:
    """``"a:b"`` (either end optional) as a slice; None keeps everything."""
    if not text:
        return None
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        return slice(*(int(p) if p.strip() else None for p in parts))
    except ValueError:
        raise ConfigError(f"bad article range {text!r}: write START:END, e.g. 0:36") from None


def parse_language_file(path: Path, lang: str, raw: bytes, articles: slice | None = None) -> LanguageFile:
    """Validate one LAReQA JSON file and extract its candidates and questions (of ``articles`` only)."""
    doc = _read_json(path, raw)
    _expect(doc, dict, path, "top level", "an object")
    all_articles = _expect(doc.get("data"), list, path, "data", "a list of articles")
    keep = set(range(len(all_articles))[articles]) if articles is not None else None
    out = LanguageFile(lang)
    seen_ids: set[str] = set()
    para_counter = 0
    for ai, article in enumerate(all_articles):
        if keep is not None and ai not in keep:
            continue
        a_place = f"data[{ai}]"
        _expect(article, dict, path, a_place, "an object")
        paragraphs = _expect(article.get("paragraphs"), list, path, f"{a_place}.paragraphs", "a list")
        for pi, para in enumerate(paragraphs):
            p_place = f"{a_place}.paragraphs[{pi}]"
            _expect(para, dict, path, p_place, "an object")
            context = _expect(para.get("context"), str, path, f"{p_place}.context", "a string")
            breaks = _expect(para.get("sentence_breaks"), list, path, f"{p_place}.sentence_breaks", "a list")
            first_cand = len(out.cand_ids)
            starts: list[int] = []
            ends: list[int] = []
            prev_end = 0
            for bi, br in enumerate(breaks):
                b_place = f"{p_place}.sentence_breaks[{bi}]"
                if not (isinstance(br, list) and len(br) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in br)):
                    raise _fail(path, b_place, "expected [start, end] integers")
                start, end = br
                if not (0 <= start < end <= len(context)):
                    raise _fail(path, b_place, f"break [{start}, {end}] out of range for a context of {len(context)} characters")
                if start < prev_end:
                    raise _fail(path, b_place, f"break [{start}, {end}] overlaps or precedes the previous break")
                prev_end = end
                starts.append(start)
                ends.append(end)
                out.cand_ids.append(f"{lang}_{para_counter}_{bi}")
                out.cand_sentence.append(context[start:end])
                out.cand_context.append(context)
            para_counter += 1
            qas = _expect(para.get("qas", []), list, path, f"{p_place}.qas", "a list")
            for qi, qa in enumerate(qas):
                q_place = f"{p_place}.qas[{qi}]"
                _expect(qa, dict, path, q_place, "an object")
                qid = _expect(qa.get("id"), str, path, f"{q_place}.id", "a string")
                question = _expect(qa.get("question"), str, path, f"{q_place}.question", "a string")
                if not question.strip():
                    raise _fail(path, f"{q_place}.question", "empty question")
                if qid in seen_ids:
                    raise _fail(path, f"{q_place}.id", f"question id {qid!r} appears twice")
                seen_ids.add(qid)
                answers = _expect(qa.get("answers"), list, path, f"{q_place}.answers", "a list")
                if not answers:
                    raise _fail(path, f"{q_place}.answers", "no answer")
                answer = _expect(answers[0], dict, path, f"{q_place}.answers[0]", "an object")
                a_start = _expect(answer.get("answer_start"), int, path, f"{q_place}.answers[0].answer_start", "an integer")
                sentence = _sentence_holding(starts, ends, a_start)
                if sentence is None:
                    raise _fail(path, f"{q_place}.answers[0].answer_start",
                                f"answer start {a_start} lies outside every sentence break of its paragraph")
                out.query_ids.append(qid)
                out.query_text.append(question)
                out.answer_cand.append(first_cand + sentence)
    if not out.query_ids:
        raise _fail(path, "", f"language {lang!r} has no questions (empty language)")
    return out


def _sentence_holding(starts: list[int], ends: list[int], pos: int) -> int | None:
    for i, (s, e) in enumerate(zip(starts, ends)):
        if s <= pos < e:
            return i
    return None


def read_language_files(folder: Path) -> dict[str, Path]:
    """``{lang: path}`` for ``{lang}.json`` or ``{lang}.json.xz`` files in ``folder``."""
    if not folder.is_dir():
        raise DataError(folder, "", "not a folder of LAReQA {lang}.json files")
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        for suffix in (".json.xz", ".json"):
            if p.name.endswith(suffix):
                files[p.name[: -len(suffix)]] = p
                break
    if not files:
        raise DataError(folder, "", "holds no {lang}.json files")
    return files


def _file_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        return lzma.decompress(raw) if path.name.endswith(".xz") else raw
    except lzma.LZMAError as exc:
        raise DataError(path, "", f"cannot decompress ({exc})") from None
    except OSError as exc:
        raise DataError(path, "", f"cannot read ({exc.strerror})") from None


def load_lareqa(
    name: str,
    folder: Path,
    *,
    languages: list[str] | None = None,
    candidate_text: str = "sentence+context",
    source: str | None = None,
    articles: str | None = None,
) -> LareqaSet:
    """Load a LAReQA folder into a :class:`LareqaSet`, restricted to ``languages`` (and to the
    ``articles`` range, e.g. ``"36:48"``, for disjoint train/test splits) if given."""
    if candidate_text not in CANDIDATE_TEXT_MODES:
        raise ConfigError(f"unknown candidate text {candidate_text!r}; choose one of {', '.join(CANDIDATE_TEXT_MODES)}")
    files = read_language_files(folder)
    files = select_languages(files, languages, name)
    digest = hashlib.sha256((articles or "").encode())
    article_slice = parse_slice(articles)
    parsed: list[LanguageFile] = []
    for lang, path in sorted(files.items()):
        raw = _file_bytes(path)
        digest.update(lang.encode() + b"\0" + hashlib.sha256(raw).digest())
        parsed.append(parse_language_file(path, lang, raw, article_slice))
    return _assemble(name, digest.hexdigest()[:16], source or str(folder), parsed, candidate_text)


def _assemble(name: str, version: str, source: str, parsed: list[LanguageFile], candidate_text: str) -> LareqaSet:
    langs = [f.lang for f in parsed]
    offsets = np.zeros(len(parsed) + 1, dtype=np.int64)
    cand_ids: list[str] = []
    cand_text: list[str] = []
    answer_of: dict[str, np.ndarray] = {}
    for li, f in enumerate(parsed):
        base = len(cand_ids)
        cand_ids.extend(f.cand_ids)
        if candidate_text == "sentence":
            cand_text.extend(f.cand_sentence)
        else:
            cand_text.extend(f"{s} {c}" for s, c in zip(f.cand_sentence, f.cand_context))
        offsets[li + 1] = len(cand_ids)
        for qid, cand in zip(f.query_ids, f.answer_cand):
            row = answer_of.setdefault(qid, np.full(len(parsed), -1, dtype=np.int64))
            row[li] = base + cand
    query_ids: list[str] = []
    query_text: list[str] = []
    query_lang: list[int] = []
    for li, f in enumerate(parsed):
        query_ids.extend(f.query_ids)
        query_text.extend(f.query_text)
        query_lang.extend([li] * len(f.query_ids))
    relevant = np.stack([answer_of[q] for q in query_ids]) if query_ids else np.zeros((0, len(parsed)), np.int64)
    return LareqaSet(
        name=name,
        version=version,
        source=source,
        languages=langs,
        lang_offsets=offsets,
        cand_ids=cand_ids,
        cand_text=cand_text,
        query_ids=query_ids,
        query_lang=np.asarray(query_lang, dtype=np.int64),
        query_text=query_text,
        relevant=relevant,
        candidate_text=candidate_text,
    )
