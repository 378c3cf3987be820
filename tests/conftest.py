"""Shared fixtures: an isolated workspace per test, the example plugins, the shared LAReQA data,
and a tiny sentence-transformers model built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGINS = REPO / "plugins"
SHARED_LAREQA = Path(os.environ.get("XLBENCH_SHARED_DATA", REPO.parent / "shared" / "data")) / "lareqa"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def workspace(tmp_path, monkeypatch) -> Path:
    """Every test runs in its own workspace: database, caches and downloads stay in tmp."""
    ws = tmp_path / "ws"
    ws.mkdir()
    monkeypatch.setenv("XLBENCH_HOME", str(ws))
    monkeypatch.setenv("XLBENCH_PLUGINS_DIR", str(PLUGINS))
    monkeypatch.delenv("XLBENCH_DB", raising=False)
    monkeypatch.delenv("XLBENCH_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.chdir(ws)
    return ws


@pytest.fixture(scope="session")
def offline_models_cache(tmp_path_factory) -> Path:
    """One cache folder for built models shared by the whole session (the e5 build takes ~15 s)."""
    return tmp_path_factory.mktemp("models-cache")


@pytest.fixture
def shared_lareqa() -> Path:
    if not (SHARED_LAREQA / "mlqa-r" / "en.json").exists():
        pytest.skip(f"shared LAReQA data not found at {SHARED_LAREQA} (set XLBENCH_SHARED_DATA)")
    return SHARED_LAREQA


@pytest.fixture
def registry():
    from xlbench.plugins import Registry

    return Registry(PLUGINS)


@pytest.fixture
def hashing_encoder(registry):
    return registry.load("encoder", "hashing")()


@pytest.fixture
def store(workspace):
    from xlbench.store.store import Store

    s = Store()
    yield s
    s.dispose()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny BERT sentence-transformers model trained on nothing (random weights), built once."""
    from xlbench.core.data.sources import XquadR
    from xlbench.core.encoders.tiny import build_tiny_model

    ds = XquadR().load(languages=["de", "en", "es"])
    texts = ds.query_text[::5] + [t[:400] for t in ds.cand_text[::10]]
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", texts, vocab_size=1500)
