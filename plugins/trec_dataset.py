"""Example dataset plugin: a TREC-style collection of plain text files, one folder per language.

Use it with ``xlbench eval -d trec-folders=DIR``. The layout::

    DIR/{lang}/docs.tsv     docid <TAB> passage text       (one document per line)
    DIR/{lang}/topics.tsv   qid <TAB> query text
    DIR/{lang}/qrels.txt    qid Q0 docid grade             (TREC qrels; grade ≥ 1 is relevant)

It shows the dataset contract (:mod:`xlbench.core.data.adhoc`):

* a class with ``kind = "dataset"`` and a ``name`` (what ``--dataset NAME=PATH`` names), and
  ``load(path, *, data_dir, languages, options)``;
* it returns an :class:`~xlbench.core.data.adhoc.AdhocSet` (``shape = "adhoc"``): per language the
  query ids and texts, graded qrels, and an ``iter_corpus(chunk)`` that streams ``(ids, texts)``;
  with ``merge=True`` the engine also evaluates every language's documents as one pool (the multi
  setting, rank distance, Max@R, own@10);
* everything is checked while loading, and bad input raises a ``DataError`` naming the file and
  the line, so nothing is stored for a collection that does not load.
"""

import hashlib
from pathlib import Path

from xlbench.core.data import select_languages
from xlbench.core.data.adhoc import AdhocSet, chunked
from xlbench.errors import ConfigError, DataError


def _rows(path, fields, what):
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(path, "", f"cannot read ({exc.strerror or exc})") from None
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        try:
            text = line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            raise DataError(path, f"line {lineno}", "not valid UTF-8") from None
        if not text.strip():
            continue
        parts = text.split("\t") if fields == 2 else text.split()
        if len(parts) != fields or not all(p.strip() for p in parts):
            raise DataError(path, f"line {lineno}", f"expected {what}")
        yield lineno, parts


class TrecLanguage:
    def __init__(self, lang, folder):
        self.lang, self.docs_file = lang, folder / "docs.tsv"
        topics = {}
        for lineno, (qid, text) in _rows(folder / "topics.tsv", 2, "qid<TAB>query"):
            if qid in topics:
                raise DataError(folder / "topics.tsv", f"line {lineno}", f"query id {qid!r} appears twice")
            topics[qid] = text
        docids = set()
        for lineno, (docid, _) in _rows(self.docs_file, 2, "docid<TAB>text"):
            if docid in docids:
                raise DataError(self.docs_file, f"line {lineno}", f"document id {docid!r} appears twice")
            docids.add(docid)
        self.qrels = {}
        for lineno, (qid, _, docid, grade) in _rows(folder / "qrels.txt", 4, "qid Q0 docid grade"):
            if qid not in topics:
                raise DataError(folder / "qrels.txt", f"line {lineno}", f"names unknown query {qid!r}")
            if docid not in docids:
                raise DataError(folder / "qrels.txt", f"line {lineno}", f"names unknown document {docid!r}")
            if not grade.lstrip("-").isdigit():
                raise DataError(folder / "qrels.txt", f"line {lineno}", f"grade {grade!r} is not an integer")
            self.qrels.setdefault(qid, {})[docid] = int(grade)
        if not self.qrels:
            raise DataError(folder / "qrels.txt", "", "no judgements")
        self.query_ids = list(self.qrels)
        self.query_text = [topics[q] for q in self.query_ids]
        self.documents = len(docids)

    def iter_corpus(self, chunk=4096):
        return chunked(((docid, text) for _, (docid, text) in _rows(self.docs_file, 2, "docid<TAB>text")), chunk)


class TrecFolders:
    kind = "dataset"
    name = "trec-folders"

    def load(self, path=None, *, data_dir=None, languages=None, options=None):
        if not path:
            raise ConfigError("dataset 'trec-folders' needs a folder: --dataset trec-folders=PATH")
        root = Path(path)
        found = sorted(p.name for p in root.iterdir() if (p / "docs.tsv").is_file()) if root.is_dir() else []
        if not found:
            raise DataError(root, "", "no {lang}/docs.tsv folders here")
        chosen = list(select_languages(dict.fromkeys(found), languages, root))
        per_lang = {lang: TrecLanguage(lang, root / lang) for lang in sorted(chosen)}
        digest = hashlib.sha256()
        for lang in sorted(chosen):
            for name in ("docs.tsv", "topics.tsv", "qrels.txt"):
                digest.update((root / lang / name).read_bytes())
        return AdhocSet(root.name, digest.hexdigest()[:16], str(root), "all", sorted(chosen), per_lang,
                        kind="trec-folders", merge=True,
                        details={lang: {"documents": part.documents} for lang, part in per_lang.items()})
