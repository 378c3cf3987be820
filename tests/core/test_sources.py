"""Dataset sources: MLQA-R download with sha256 checks, data-dir resolution, MIRACL hub paths."""

from __future__ import annotations

import shutil

import pytest

from xlbench.core.data import sources
from xlbench.errors import ConfigError, DataError


def _mirror(tmp_path, shared_lareqa, tamper: str | None = None):
    root = tmp_path / "mirror"
    (root / "mlqa-r").mkdir(parents=True)
    for name in sources.MLQA_R_SHA256:
        shutil.copy(shared_lareqa / "mlqa-r" / name, root / "mlqa-r" / name)
    if tamper:
        (root / "mlqa-r" / tamper).write_bytes(b'{"data": []}')
    return root.as_uri()


def test_mlqa_r_downloads_once_and_checks_sha256(tmp_path, shared_lareqa, monkeypatch):
    monkeypatch.setenv("XLBENCH_LAREQA_URL", _mirror(tmp_path, shared_lareqa))
    ds = sources.MlqaR().load(languages=["en", "de"])
    assert len(ds.query_ids) == 1148 + 512
    cached = tmp_path / "ws" / "cache" / "downloads" / "mlqa-r"
    assert (cached / "LICENSE").exists()
    # a second load reads the verified files without the network
    monkeypatch.setenv("XLBENCH_LAREQA_URL", "file:///nonexistent")
    assert sources.MlqaR().load(languages=["de"]).languages == ["de"]


def test_mlqa_r_with_wrong_checksum_is_refused(tmp_path, shared_lareqa, monkeypatch):
    monkeypatch.setenv("XLBENCH_LAREQA_URL", _mirror(tmp_path, shared_lareqa, tamper="de.json"))
    with pytest.raises(DataError, match=r"de\.json: sha256 .* does not match"):
        sources.MlqaR().load()
    assert not (tmp_path / "ws" / "cache" / "downloads" / "mlqa-r" / "de.json").exists()


def test_data_dir_is_preferred_to_download(shared_lareqa, monkeypatch):
    monkeypatch.setenv("XLBENCH_LAREQA_URL", "file:///nonexistent")
    ds = sources.MlqaR().load(data_dir=shared_lareqa, languages=["es"])
    assert ds.source == str(shared_lareqa / "mlqa-r")


def test_lareqa_plugin_needs_a_path():
    with pytest.raises(ConfigError, match="needs a folder"):
        sources.Lareqa().load()


def test_miracl_hub_download_asks_for_the_published_paths(tmp_path, monkeypatch):
    calls = []
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda repo, filename, **kw: calls.append((repo, filename)))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo, **kw: calls.append((repo, kw["allow_patterns"])))
    from xlbench.core.data.miracl import download_from_hub

    download_from_hub(tmp_path, ["sw"])
    assert calls == [
        ("miracl/miracl", "miracl-v1.0-sw/topics/topics.miracl-v1.0-sw-dev.tsv"),
        ("miracl/miracl", "miracl-v1.0-sw/qrels/qrels.miracl-v1.0-sw-dev.tsv"),
        ("miracl/miracl-corpus", ["miracl-corpus-v1.0-sw/*"]),
    ]
    with pytest.raises(ConfigError, match="needs --languages"):
        sources.Miracl().load()
