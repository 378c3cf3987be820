"""The evaluation job: config → encoder and datasets → core engine → rows in the store.

:func:`prepare` does everything that can fail on bad input (unknown plugin, malformed file,
unknown language) *before* a run row exists, so bad input leaves the database untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xlbench.config import EvalConfig
from xlbench.core.progress import Reporter
from xlbench.errors import ConfigError, PluginError, one_line
from xlbench.plugins import Registry


@dataclass
class Prepared:
    config: EvalConfig
    encoder_class: type
    datasets: list  # each of an engine shape (xlbench.core.data.adhoc)


def registry_for(config) -> Registry:
    from xlbench.paths import plugins_dir

    return Registry(plugins_dir(config.plugins_dir))


def prepare(config: EvalConfig, registry: Registry | None = None) -> Prepared:
    registry = registry or registry_for(config)
    if config.model and config.encoder:
        raise ConfigError("give --model (the built-in sentence-transformers encoder) or --encoder NAME, not both")
    encoder_class = registry.load("encoder", config.encoder or "sentence-transformers")
    if config.encoder:
        check_options(encoder_class, config.encoder, config.encoder_options)
    from xlbench.tracking import check_reporters

    check_reporters(config.report, registry)
    datasets = [load_dataset(registry, ref, config) for ref in config.datasets]
    if not datasets:
        raise ConfigError("no dataset to evaluate: add --dataset NAME")
    return Prepared(config, encoder_class, datasets)


def load_dataset(registry: Registry, ref, config: EvalConfig):
    plugin = registry.load("dataset", ref.name)()
    options = {"candidate_text": config.candidate_text}
    if config.articles:
        options["articles"] = config.articles
    if config.split:
        options["split"] = config.split
    data_dir = Path(config.data_dir) if config.data_dir else None
    return plugin.load(ref.path, data_dir=data_dir, languages=config.languages, options=options)


def check_options(encoder_class: type, name: str, options: dict) -> None:
    """Refuse options the encoder's constructor cannot take, before any run row exists."""
    import inspect

    try:
        inspect.signature(encoder_class).bind(**options)
    except TypeError as exc:
        raise ConfigError(f"encoder {name!r} does not accept these options: {exc}") from None


def make_encoder(prepared: Prepared):
    config = prepared.config
    if config.encoder:
        try:
            encoder = prepared.encoder_class(**config.encoder_options)
        except Exception as exc:  # a plugin's own failure: one line naming it, recorded on the run
            raise PluginError(f"encoder {config.encoder!r} could not be created: {one_line(exc)}") from exc
    else:
        from xlbench.core.encoders import OFFLINE_MODEL

        encoder = prepared.encoder_class(
            config.model or OFFLINE_MODEL, batch_size=config.model_batch_size, max_seq_length=config.max_seq_length,
            **({"precision": config.precision} if config.precision != "fp32" else {}),
            **config.encoder_options,
        )
    return encoder


def model_name(config: EvalConfig) -> str:
    if config.encoder:
        return f"plugin:{config.encoder}"
    from xlbench.core.encoders import OFFLINE_MODEL

    return config.model or OFFLINE_MODEL


def run_name(config: EvalConfig) -> str:
    sets = ", ".join(ref.name for ref in config.datasets)
    return f"eval {model_name(config)} on {sets}"


def run(store, run_id: int, prepared: Prepared, reporter: Reporter, *, register_as: str | None = None,
        dist=None) -> None:
    """Evaluate and store each dataset (its metrics and per-query ranks in one transaction).

    The model is registered under ``register_as`` (default: its spec, e.g. the hub id). Under
    torchrun (``dist`` with several ranks; every rank calls this) the encoding is sharded: each
    rank encodes its share into the embedding cache, then rank 0 alone scores and writes."""
    from xlbench.core.encoders.base import describe, fingerprint
    from xlbench.core.encoders.cache import EmbeddingCache
    from xlbench.core.evaluate import evaluate
    from xlbench.runs.distributed import Distributed
    from xlbench.paths import cache_dir
    from xlbench.store.results import result_rows

    config = prepared.config
    dist = dist or Distributed()  # one process unless the caller runs every rank through here
    encoder = make_encoder(prepared)
    if dist.world > 1:
        encode_shares(prepared, encoder, dist, reporter)
        if dist.rank != 0:
            return
    reporter.phase("loading the encoder", None)
    info = describe(encoder)
    model = store.ensure_model(register_as or model_name(config), encoder=type(encoder).name, source=model_name(config),
                               label=info.get("label", model_name(config)), info=info)
    store.update_env(run_id, model=info, model_id=model.id)
    store.set_model(run_id, model.id)
    reporter.event(f"encoder: {info.get('label', model_name(config))}")
    key = fingerprint(encoder) if config.cache else None
    cache = EmbeddingCache(cache_dir("embeddings"), key, on_damage=lambda m: reporter.event(m, "warning")) if key else None
    if cache is None:
        reporter.event("embedding cache off (disabled, or the encoder has no fingerprint)")
    for ds in prepared.datasets:
        stats = ds.stats()
        store.ensure_dataset(name=ds.name, version=ds.version, kind=ds.kind,
                             source=ds.source, languages=ds.languages, stats=stats)
        reporter.event(f"{ds.name} ({ds.source}): {len(ds.languages)} languages, {_size_text(stats)}")
        result = evaluate(ds, encoder, cache=cache, reporter=reporter, batch_size=config.encode_chunk,
                          threads=config.threads)
        rows, payload = result_rows(run_id, result)
        store.save_results(run_id, rows, payload)
        enc = result.info.get("encode", {})
        reporter.event(
            f"{ds.name}: stored {len(rows)} metric rows; encoded {enc.get('encoded', 0)} texts "
            f"({enc.get('from_cache', 0)} from cache) of {enc.get('unique', 0)} unique",
            data=result.info,
        )


def encode_shares(prepared: Prepared, encoder, dist, reporter: Reporter) -> None:
    """Every rank encodes its share of every dataset into the embedding cache (shared storage),
    then waits for the others; rank 0 then finds every vector cached."""
    import time

    from xlbench.core.encoders.base import fingerprint
    from xlbench.core.encoders.cache import EmbeddingCache
    from xlbench.core.evaluate import encode_share
    from xlbench.paths import cache_dir

    config = prepared.config
    key = fingerprint(encoder) if config.cache else None
    if key is None:
        if dist.rank == 0:
            reporter.event("sharded evaluation needs the embedding cache (off here): rank 0 encodes everything", "warning")
    else:
        t0 = time.perf_counter()
        cache = EmbeddingCache(cache_dir("embeddings"), key, on_damage=lambda m: reporter.event(m, "warning"))
        encoded = 0
        for ds in prepared.datasets:
            stats = encode_share(ds, encoder, cache=cache, rank=dist.rank, world=dist.world, reporter=reporter,
                                 batch_size=config.encode_chunk)
            encoded += stats.unique - stats.from_cache
        if dist.rank == 0:
            reporter.event(f"sharded evaluation: rank 1 of {dist.world} encoded {encoded} texts of its share in "
                           f"{time.perf_counter() - t0:.1f} s; waiting for the other ranks")
    dist.barrier()


def _size_text(stats: dict) -> str:
    if "queries" in stats:
        return f"{stats['queries']} queries, {stats['candidates']} candidates"
    per = stats.get("per_language", {})
    return f"{sum(v['queries'] for v in per.values())} queries"
