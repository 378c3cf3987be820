"""Example corpus plugin: parallel training pairs from a tab-separated file.

Use it with ``[data] kind = "tsv", path = "pairs.tsv"`` (or ``--train-data tsv=pairs.tsv``). Each
line is ``id<TAB>lang<TAB>query<TAB>passage``; lines sharing an id are translations of one item
(a group), which is what the cross-lingual and hybrid samplers pair across languages. Blank lines
and lines starting with ``#`` are skipped. It shows the corpus contract:

* a class with ``kind = "corpus"`` and a ``name`` (what ``data.kind`` names);
* ``load(spec)`` gets a :class:`xlbench.core.data.corpora.CorpusSpec` (path, languages, limit, ...)
  and returns a corpus built with :func:`xlbench.core.data.parallel.build_corpus`;
* bad input raises a ``DataError`` naming the file and the line.
"""

import hashlib

from xlbench.core.data.parallel import build_corpus
from xlbench.errors import DataError


class TsvCorpus:
    kind = "corpus"
    name = "tsv"

    def load(self, spec):
        path = spec.need_path("a .tsv file of id, lang, query, passage")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise DataError(path, "", f"cannot read ({exc.strerror})") from None
        rows = {}
        for lineno, line in enumerate(raw.decode("utf-8", errors="strict").splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) != 4 or not all(f.strip() for f in fields):
                raise DataError(path, f"line {lineno}", "expected 4 non-empty tab-separated fields: id, lang, query, passage")
            gid, lang, query, passage = (f.strip() for f in fields)
            if spec.languages and lang not in spec.languages:
                continue
            if (gid, lang) in rows:
                raise DataError(path, f"line {lineno}", f"item {gid!r} in {lang!r} appears twice")
            rows[(gid, lang)] = (query, passage, None)
            if spec.limit and len({g for g, _ in rows}) > spec.limit:
                del rows[(gid, lang)]
                break
        return build_corpus(path.stem, str(path), rows, hashlib.sha256(raw).hexdigest())
