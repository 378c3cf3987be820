"""Training corpora as plugins (``kind = "corpus"``): where a run's parallel pairs come from.

The built-ins below are registered through the ``xlbench.corpora`` entry-point group in
``pyproject.toml``, exactly as a third-party package or a ``plugins/*.py`` file registers one. A
corpus plugin is a class with ``kind = "corpus"``, a ``name`` (what ``data.kind`` names) and

    def load(self, spec: CorpusSpec) -> ParallelCorpus

that reads the pairs (a :class:`~xlbench.core.data.parallel.ParallelCorpus`, built with
:func:`~xlbench.core.data.parallel.build_corpus`) and raises a ``DataError`` naming the file and
the place for bad input. ``plugins/tsv_corpus.py`` is a complete example.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xlbench.core.data import parallel
from xlbench.errors import ConfigError


@dataclass(frozen=True)
class CorpusSpec:
    """What a run's ``[data]`` section (and its evaluation settings) tell a corpus plugin."""

    kind: str
    path: str | None = None
    languages: list[str] | None = None
    articles: str | None = None  # LAReQA kinds: a slice of articles, e.g. "0:36"
    limit: int | None = None  # at most this many items
    data_dir: str | None = None  # the folder holding xquad-r/, mlqa-r/ (the eval.data_dir)
    candidate_text: str = "sentence+context"

    def need_path(self, what: str) -> Path:
        if not self.path:
            raise ConfigError(f"training data kind {self.kind!r} needs data.path ({what})")
        return Path(self.path)


class JsonlCorpus:
    kind, name = "corpus", "jsonl"

    def load(self, spec: CorpusSpec):
        return parallel.load_jsonl(spec.need_path("a .jsonl file of {id, lang, query, passage}"), languages=spec.languages)


class _LareqaCorpus:
    kind = "corpus"

    def load(self, spec: CorpusSpec):
        from xlbench.core.data.sources import lareqa_folder

        if self.name == "lareqa":
            folder, source = spec.need_path("a folder of {lang}.json"), spec.path
        else:
            folder, source = lareqa_folder(self.name, spec.path, Path(spec.data_dir) if spec.data_dir else None)
        corpus = parallel.load_lareqa_training(folder, languages=spec.languages, candidate_text=spec.candidate_text,
                                               name=self.name, articles=spec.articles)
        corpus.source = str(source) + (f", articles {spec.articles}" if spec.articles else "")
        return corpus


class LareqaCorpus(_LareqaCorpus):
    name = "lareqa"


class XquadRCorpus(_LareqaCorpus):
    name = "xquad-r"


class MlqaRCorpus(_LareqaCorpus):
    name = "mlqa-r"


class MlqaTranslateTrainCorpus:
    kind, name = "corpus", "mlqa-translate-train"

    def load(self, spec: CorpusSpec):
        langs = spec.languages or ["en", *parallel.MLQA_TRANSLATE_LANGS]
        return parallel.load_mlqa_translate_train(langs, folder=Path(spec.path) if spec.path else None, limit=spec.limit)


class MmarcoCorpus:
    kind, name = "corpus", "mmarco"

    def load(self, spec: CorpusSpec):
        return parallel.load_mmarco(spec.need_path("the unicamp-dl/mmarco files"), spec.languages or ["english", "german"],
                                    limit=spec.limit or 100_000)
