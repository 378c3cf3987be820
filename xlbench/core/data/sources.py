"""Built-in evaluation datasets, registered as ``xlbench.datasets`` plugins like any other.

A dataset plugin is a class with ``kind = "dataset"``, a ``name``, a constructor with no required
arguments, and ``load(path, *, data_dir, languages, options)`` returning a dataset of one of the
engine's shapes (:mod:`xlbench.core.data.adhoc`), where ``path`` is what the user wrote after
``NAME=`` (or None), ``data_dir`` the ``--data-dir`` and ``options`` holds ``candidate_text``,
``articles`` and ``split`` where given. Anything that cannot load raises a one-line
:class:`~xlbench.errors.DataError` or :class:`~xlbench.errors.ConfigError` naming the place.

* ``xquad-r``: ``path``, else ``DATA_DIR/xquad-r``, else the copy bundled in the package.
* ``mlqa-r``: ``path``, else ``DATA_DIR/mlqa-r``, else a one-time download from the LAReQA
  repository at a fixed commit, each file checked against its sha256 (never bundled: CC BY-NC).
* ``lareqa``: any folder of LAReQA ``{lang}.json`` files (``lareqa=PATH``).
* ``miracl``: ``path``, else ``DATA_DIR/miracl``, else the Hugging Face hub
  (``miracl/miracl`` topics and qrels, ``miracl/miracl-corpus`` passages). Split ``dev`` unless given.
* ``beir``: a BEIR-format folder, or a folder of per-language ones (``beir=PATH``; split ``test``
  unless given): :mod:`xlbench.core.data.beir`.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from importlib import resources
from pathlib import Path

from xlbench.core.data.adhoc import AdhocSet
from xlbench.core.data.beir import load_beir
from xlbench.core.data.lareqa import LareqaSet, load_lareqa
from xlbench.core.data.miracl import MiraclSet, download_from_hub, load_miracl
from xlbench.core.integrity import atomic_write
from xlbench.errors import ConfigError, DataError

LAREQA_REPO = "https://raw.githubusercontent.com/google-research-datasets/lareqa"
MLQA_R_COMMIT = "354d67d1cd066854cdfbf5ad0e6105528976141d"
MLQA_R_SHA256 = {
    "LICENSE": "336255dc30193e8e15d689d9481bb05673d89055718f3a96923a7ffb99adbbaf",
    "ar.json": "2132fbc03208535c0fe01f2e2c5121d06f9c2aa799af93b0a719dbc105bdf137",
    "de.json": "ce9454dc5aa6f2d85c23cd6e49cb367fbb7c4c6e62d7f71e355c6b5dae4d0886",
    "en.json": "fedd9a5cc0848dda80caf84aa36f482adaae230526a3f6e9e86926a93ef3b1e4",
    "es.json": "70ecba276b8c96a692b120693a595d076ce94ad21d4b28311538a9fcbfe0f9d7",
    "hi.json": "4dd0fb3c06f737a5481d705bc1dcac7876712a5815c9265908fbb3a0696cb654",
    "vi.json": "9d3baff6ba03e6793b25594217265ea59a136b9733833dca8a9582a84a78ff85",
    "zh.json": "57f01d2fff50cf3392805635b01445339f225ad5bf28ba8443b12f8dbd1e69dc",
}


def bundled_xquad_r() -> Path:
    return Path(str(resources.files("xlbench.core.data") / "bundled" / "xquad-r"))


def _from_data_dir(data_dir: Path | None, folder: str) -> Path | None:
    if data_dir is not None and (Path(data_dir) / folder).is_dir():
        return Path(data_dir) / folder
    return None


def _options(options: dict | None) -> dict:
    return dict(options or {})


def _needed_folder(name: str, path: str | None) -> Path:
    """The folder a dataset that has no default location was given (``NAME=PATH``)."""
    if not path:
        raise ConfigError(f"dataset {name!r} needs a folder: --dataset {name}=PATH")
    return Path(path)


BUNDLED_SOURCE = "bundled with xlbench (LAReQA commit 9bc8c7f, CC BY-SA 4.0)"


def lareqa_folder(name: str, path: str | None, data_dir: Path | None) -> tuple[Path, str]:
    """Where the XQuAD-R or MLQA-R files are: the given path, ``DATA_DIR/<name>``, then the bundled
    copy (XQuAD-R) or a verified one-time download (MLQA-R). Returns the folder and a description."""
    folder = Path(path) if path else _from_data_dir(data_dir, name)
    if folder is not None:
        return folder, str(folder)
    if name == "xquad-r":
        return bundled_xquad_r(), BUNDLED_SOURCE
    from xlbench.paths import cache_dir

    folder = download_mlqa_r(cache_dir("downloads", "mlqa-r"))
    return folder, f"{folder} (downloaded from LAReQA commit {MLQA_R_COMMIT[:7]}, sha256-checked)"


class _PublishedLareqaSet:
    """XQuAD-R or MLQA-R, found by :func:`lareqa_folder`."""

    kind = "dataset"
    name = ""

    def load(self, path: str | None = None, *, data_dir: Path | None = None, languages=None, options=None) -> LareqaSet:
        folder, source = lareqa_folder(self.name, path, data_dir)
        return load_lareqa(self.name, folder, languages=languages, source=source, **_options(options))


class XquadR(_PublishedLareqaSet):
    name = "xquad-r"


class MlqaR(_PublishedLareqaSet):
    name = "mlqa-r"


class Lareqa:
    kind = "dataset"
    name = "lareqa"

    def load(self, path: str | None = None, *, data_dir: Path | None = None, languages=None, options=None) -> LareqaSet:
        folder = _needed_folder(self.name, path)
        return load_lareqa(folder.name, folder, languages=languages, **_options(options))


class Miracl:
    kind = "dataset"
    name = "miracl"

    def load(self, path: str | None = None, *, data_dir: Path | None = None, languages=None, options=None) -> MiraclSet:
        opts = _options(options)
        split = opts.pop("split", None) or "dev"
        opts.pop("candidate_text", None)  # a passage is always title + text
        opts.pop("articles", None)
        folder = Path(path) if path else _from_data_dir(data_dir, "miracl")
        if folder is None:
            if not languages:
                raise ConfigError("MIRACL from the hub needs --languages (its corpora total tens of GB)")
            from xlbench.paths import cache_dir

            folder = download_from_hub(cache_dir("downloads", "miracl"), languages, split)
        return load_miracl(folder, languages=languages, split=split)


class Beir:
    kind = "dataset"
    name = "beir"

    def load(self, path: str | None = None, *, data_dir: Path | None = None, languages=None, options=None) -> AdhocSet:
        return load_beir(_needed_folder(self.name, path), languages=languages, split=_options(options).get("split") or "test")


def download_mlqa_r(dest: Path) -> Path:
    """Download MLQA-R once into ``dest``; every file must match its recorded sha256."""
    base = os.environ.get("XLBENCH_LAREQA_URL", f"{LAREQA_REPO}/{MLQA_R_COMMIT}")
    dest.mkdir(parents=True, exist_ok=True)
    for name, want in MLQA_R_SHA256.items():
        target = dest / name
        if target.exists() and _sha256(target.read_bytes()) == want:
            continue
        url = f"{base}/mlqa-r/{name}"
        try:
            with urllib.request.urlopen(url, timeout=60) as resp:
                data = resp.read()
        except OSError as exc:
            raise DataError(url, "", f"cannot download MLQA-R ({exc}); pass a local copy with --dataset mlqa-r=PATH") from None
        got = _sha256(data)
        if got != want:
            raise DataError(url, "", f"sha256 {got[:16]}… does not match the expected {want[:16]}…; refusing the file")
        atomic_write(target, lambda fh: fh.write(data))
    return dest


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
