"""Contrastive fine-tuning over parallel data, batch by batch as a sampler composes them.

Loss: InfoNCE with in-batch negatives (and each pair's hard negative when the corpus has one),
``L = −log e^{s(q,d+)·scale} / Σ_j e^{s(q,d_j)·scale}`` with cosine scores and ``scale`` 20
(τ = 0.05, sentence-transformers' default). A passage whose text equals another pair's positive is
masked out of that pair's negatives (it is not a negative). With ``mini_batch`` set, the cached
variant (GradCache) gives the full batch's negatives at the memory cost of a mini-batch.

Everything a resumed run needs is in a checkpoint: weights, optimizer, schedule, sampler
position, RNG states, step, best validation loss (:mod:`xlbench.core.checkpoints`: written whole
or not at all, checked before it is read, nothing in it executable).

Under ``torchrun`` the global batch is split across ranks, embeddings are all-gathered (with
gradients) so every rank sees every negative, and only rank 0 reports or writes.

On a CUDA device the loop keeps the device busy: the next batches are drawn and tokenised in a
thread (:mod:`xlbench.core.batching`) and copied from page-locked memory without a host wait; each
role's texts go through the encoder in ``length_buckets`` groups of similar length (each padded to
its own longest, the embeddings put back in order: the same loss in exact arithmetic); the host
reads losses and gradient norms every ``read_every`` steps (the live curve gets them in batches);
AdamW is the fused kernel. Model FLOPs are counted per step (:mod:`xlbench.core.flops`) and
:meth:`Trainer.utilisation` gives samples/s, TFLOP/s and the MFU. On CPU the defaults are one
group and a read every step, so earlier runs' numbers stay bit for bit.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from xlbench.core import interrupts
from xlbench.core.batching import on_device, prefetched
from xlbench.core.checkpoints import Checkpoint, read_checkpoint, rng_state, set_rng_state, write_checkpoint
from xlbench.core.flops import utilisation
from xlbench.core.integrity import atomic_dir
from xlbench.core.progress import Reporter
from xlbench.core.train_batches import BatchPreparer, PreparedBatch, Tokenised, same_text_mask
from xlbench.core.train_settings import TrainSettings
from xlbench.errors import Cancelled, ConfigError, TrainingError

@dataclass
class StepLog:
    step: int
    loss: float
    lr: float
    grad_norm: float
    samples_per_s: float
    batch_langs: str = ""
    tokens: int = 0  # real tokens this process encoded in the step (0: the encoder does not say)
    padded_tokens: int = 0  # the same with the padding its forward passes carried
    flops: float | None = None  # model FLOPs of the step on this process (xlbench.core.flops)
    seconds: float = 0.0  # the step's share of the wall time between two reads by the host


@dataclass
class _Pending:
    """A finished step whose loss and gradient norm still sit on the device: its log, which
    :meth:`Trainer._read` completes with them and the window's rate."""

    log: StepLog
    loss: object
    grad_norm: object
    samples: int
    started: float


@dataclass
class TrainState:
    step: int = 0
    best_val: float = math.inf
    best_step: int = 0
    bad_validations: int = 0
    history: list = field(default_factory=list)


def dist_info() -> tuple[int, int]:
    """``(rank, world_size)``, from torch.distributed when initialised (torchrun)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def info_nce(q, p, scale: float, same_text):
    """Mean InfoNCE of queries ``q`` (B×d) against passages ``p`` ((B+N)×d); positive of row i is
    column i. ``same_text[i, j]`` marks columns that duplicate row i's positive (masked)."""
    import torch
    import torch.nn.functional as F

    scores = scale * q @ p.T
    if same_text is not None:
        scores = scores.masked_fill(on_device(torch.as_tensor(same_text), scores.device), float("-inf"))
    return F.cross_entropy(scores, torch.arange(len(q), device=scores.device))


@contextlib.contextmanager
def _deferred_interrupts():
    """Turn the first SIGINT/SIGTERM/SIGUSR1 into a flag checked between steps (so no optimizer
    update is torn in half); a second one interrupts immediately."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    hits = []

    def handler(signum, frame):
        interrupts.note(signum)
        hits.append(signum)
        if len(hits) > 1:
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in interrupts.STOP_SIGNALS}
    try:
        yield lambda: bool(hits)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class Trainer:
    def __init__(self, trainable, corpus, sampler, settings: TrainSettings, *, reporter: Reporter | None = None,
                 val_corpus=None, val_sampler_factory: Callable | None = None, run_dir: Path,
                 on_step: Callable[[StepLog], None] | None = None, on_validation: Callable[[int, float], None] | None = None,
                 on_checkpoint: Callable[[int, Path], None] | None = None, should_stop: Callable[[], bool] | None = None,
                 before_write: Callable[[], None] | None = None) -> None:
        import torch

        self.torch = torch
        self.enc = trainable
        self.corpus, self.sampler, self.s = corpus, sampler, settings
        self.reporter = reporter or Reporter()
        self.val_corpus, self.val_sampler_factory = val_corpus, val_sampler_factory
        self.run_dir = Path(run_dir)
        self.on_step, self.on_validation, self.on_checkpoint = on_step, on_validation, on_checkpoint
        # called before anything is written to run_dir; raises if this process may no longer write there
        self.before_write = before_write or (lambda: None)
        self.should_stop = should_stop or (lambda: False)
        self.rank, self.world = dist_info()
        self.module = trainable.module
        self.device = next(self.module.parameters()).device
        if settings.precision != "fp32" and self.device.type != "cuda":
            raise ConfigError(f"precision {settings.precision} needs a CUDA device; use fp32 on {self.device.type}")
        if settings.batch_size % self.world:
            raise ConfigError(f"batch size {settings.batch_size} must divide evenly over {self.world} processes")
        if settings.mini_batch and self.world > 1:
            raise ConfigError("the cached loss (mini_batch) is not supported under torchrun yet; drop mini_batch or use one process")
        if settings.freeze_embeddings:
            for name, param in self.module.named_parameters():
                if "word_embeddings" in name:
                    param.requires_grad_(False)
        if settings.compile:
            self._compile()
        self.params = [p for p in self.module.parameters() if p.requires_grad]
        decay = [p for p in self.params if p.ndim >= 2]
        no_decay = [p for p in self.params if p.ndim < 2]
        # On CUDA: texts of a role in length buckets (less padding), the host reading losses every few
        # steps (no wait on the device each step), the next batches tokenised in a thread, and the
        # fused AdamW kernel. On CPU the defaults keep earlier runs' numbers bit for bit (buckets pay
        # there too, 1.5x in bench/length_buckets.py: train.length_buckets opts in).
        cuda = self.device.type == "cuda"
        self.batches = BatchPreparer(trainable, [c for c in (corpus, val_corpus) if c is not None],
                                     buckets=settings.length_buckets or (4 if cuda else 1), pin=cuda,
                                     hard_negatives=settings.hard_negatives, local=self._local)
        self.read_every = settings.read_every or (10 if cuda else 1)
        self.prefetch = cuda
        self._sampler_state: dict | None = None
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=settings.lr, **({"fused": True} if cuda else {}),
        )
        warm = max(0, settings.warmup_steps)
        total = max(1, settings.max_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: (step + 1) / warm if step < warm else max(0.0, (total - step) / max(1, total - warm))
        )
        # Under torchrun every rank runs the same steps on its slice of the batch; gradients are
        # averaged by hand after backward (several forward passes per step, and parameters such as
        # an unused pooler, are both awkward for DistributedDataParallel's hooks).
        self.scaler = torch.amp.GradScaler("cuda") if settings.precision == "fp16" else None
        self.state = TrainState()
        self.timing = {"steps": 0, "samples": 0, "seconds": 0.0, "flops": 0.0, "tokens": 0, "padded_tokens": 0}

    def _compile(self) -> None:
        """``torch.compile`` the transformer inside the encoder (its ``forward`` only, so the
        weights keep their names in checkpoints and saved models); dynamic shapes, since batches
        are padded to their own longest text."""
        from xlbench.core.encoders.st import transformer_of

        target = transformer_of(self.module)
        target = self.module if target is None else target
        target.forward = self.torch.compile(target.forward, dynamic=True)

    # --- batches ----------------------------------------------------------------------

    def _embed_features(self, features: dict):
        torch = self.torch
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.s.precision)
        with torch.autocast(device_type=self.device.type, dtype=dtype, enabled=dtype is not None):
            return self.enc.embed(features).float()

    def _embed(self, texts: list[str], role: str):
        return self._embed_features(self.batches.features(texts, role))

    def _embed_tokenised(self, tokenised: Tokenised):
        outs = [self._embed_features(part) for part in tokenised.parts]
        if tokenised.inverse is None:
            return outs[0]
        return self.torch.cat(outs)[on_device(tokenised.inverse, outs[0].device)]

    def _prepare(self, batch, corpus) -> PreparedBatch:
        return self.batches.prepare(batch, corpus, tokenise=not (self.s.mini_batch and self.s.mini_batch < len(batch)))

    def _gather(self, x):
        if self.world == 1:
            return x
        import torch.distributed.nn.functional as dfn

        return self.torch.cat(dfn.all_gather(x), dim=0)

    def _local(self, items: list) -> list:
        """This rank's contiguous slice of a global batch (all of it without torchrun)."""
        n = len(items)
        per = math.ceil(n / self.world)
        return items[self.rank * per : (self.rank + 1) * per]

    def batch_loss(self, qs: list[str], ps: list[str], ns: list[str], prepared: PreparedBatch | None = None):
        """Loss of one global batch with gradients flowing to this rank's share (tokenised now
        unless ``prepared`` carries it)."""
        if prepared is None or prepared.tokenised is None:
            prepared = self.batches.tokenise_batch(PreparedBatch([], qs, ps, ns))
        parts = prepared.tokenised
        q = self._gather(self._embed_tokenised(parts["q"]))
        p = self._gather(self._embed_tokenised(parts["p"]))
        if ns:
            p = self.torch.cat([p, self._gather(self._embed_tokenised(parts["n"]))], dim=0)
        return info_nce(q, p, self.s.scale, prepared.same_text)

    def cached_step(self, qs: list[str], ps: list[str], ns: list[str]):
        """GradCache: embed without graph, take the loss gradient w.r.t. the embeddings, then replay
        each mini-batch with its saved RNG state and push that gradient through it."""
        torch = self.torch
        mb = self.s.mini_batch
        chunks = [(texts[a : a + mb], role) for texts, role in ((qs, "query"), (ps, "passage"), (ns, "passage")) for a in range(0, len(texts), mb)]
        states, embs = [], []
        with torch.no_grad():
            for texts, role in chunks:
                states.append(rng_state(self.torch, self.device))
                embs.append(self._embed(texts, role))
        flat = torch.cat(embs).requires_grad_(True)
        loss = info_nce(flat[: len(qs)], flat[len(qs):], self.s.scale, same_text_mask(ps, ps + ns))
        loss.backward()
        grads = flat.grad.split([len(e) for e in embs])
        after = rng_state(self.torch, self.device)
        for (texts, role), state, grad in zip(chunks, states, grads):
            set_rng_state(self.torch, self.device, state)
            self._embed(texts, role).backward(grad)
        set_rng_state(self.torch, self.device, after)
        return loss.detach()

    def _average_gradients(self, bucket_bytes: int = 32 * 2**20) -> None:
        """All-reduce (mean) every gradient across ranks, in flat buckets."""
        import torch.distributed as dist
        from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

        grads = [p.grad for p in self.params if p.grad is not None]
        bucket: list = []
        size = 0
        for g in grads + [None]:
            if g is not None:
                bucket.append(g)
                size += g.numel() * g.element_size()
            if bucket and (g is None or size >= bucket_bytes):
                flat = _flatten_dense_tensors(bucket)
                dist.all_reduce(flat)
                flat /= self.world
                for dst, src in zip(bucket, _unflatten_dense_tensors(flat, bucket)):
                    dst.copy_(src)
                bucket, size = [], 0

    # --- the loop ---------------------------------------------------------------------

    def step(self, batch) -> StepLog:
        """One optimisation step on ``batch``, its loss read at once (the loop reads in batches)."""
        logs, error = self._read([self._run(self._prepare(batch, self.corpus))])
        if error:
            raise error
        return logs[0]

    def _run(self, prepared: PreparedBatch) -> _Pending:
        """One optimisation step; the loss and gradient norm stay on the device (see :meth:`_read`)."""
        torch = self.torch
        t0 = time.perf_counter()
        self.module.train()
        qs, ps, ns = prepared.qs, prepared.ps, prepared.ns
        self.optimizer.zero_grad(set_to_none=True)
        if prepared.tokenised is None:
            loss = self.cached_step(qs, ps, ns)
        else:
            loss = self.batch_loss(qs, ps, ns, prepared)
            (self.scaler.scale(loss) if self.scaler else loss).backward()
            loss = loss.detach()
        if self.world > 1:
            self._average_gradients()
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.s.grad_clip if self.s.grad_clip > 0 else float("inf"))
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.state.step += 1
        langs = sorted({f"{q}-{p}" for _, q, p in prepared.batch})
        log = StepLog(self.state.step, math.nan, lr, math.nan, 0.0, ",".join(langs[:6]) + ("…" if len(langs) > 6 else ""),
                      prepared.tokens, prepared.padded_tokens, prepared.flops)
        return _Pending(log, loss, grad_norm, len(prepared.batch), t0)

    def _read(self, pending: list[_Pending]) -> tuple[list[StepLog], TrainingError | None]:
        """Read the pending steps' losses and gradient norms in one transfer; samples/s is the
        window's (from the first pending step's start to now). The logs stop before the first
        non-finite loss, which comes back as the error that fails the run, naming its step."""
        torch = self.torch
        values = torch.stack([torch.stack([torch.as_tensor(p.loss, dtype=torch.float32).reshape(()),
                                           torch.as_tensor(p.grad_norm, dtype=torch.float32).reshape(()).to(p.loss.device)])
                              for p in pending]).tolist()
        seconds = time.perf_counter() - pending[0].started
        rate = sum(p.samples for p in pending) / seconds if seconds > 0 else 0.0
        logs = []
        for p, (loss, grad_norm) in zip(pending, values):
            if not math.isfinite(loss):
                return logs, TrainingError(f"training diverged at step {p.log.step}: the loss is {loss} "
                                           f"(lr {p.log.lr:.3g}); lower train.lr or add train.warmup_steps")
            logs.append(replace(p.log, loss=loss, grad_norm=grad_norm, samples_per_s=rate, seconds=seconds / len(pending)))
        return logs, None

    def _batches(self):
        """Batches from the sampler, prepared, each with the sampler's state just after it."""
        for batch in self.sampler:
            state = json.loads(json.dumps(self.sampler.state()))  # a snapshot, whatever the sampler returns
            prepared = self._prepare(batch, self.corpus)
            prepared.sampler_state = state
            yield prepared

    def utilisation(self) -> dict | None:
        """Throughput after the first read (start-up left out): samples/s, model TFLOP/s, the MFU
        where the device's peak is known, and the share of padded tokens. None before two reads."""
        t = self.timing
        if not t["seconds"] or not t["steps"]:
            return None
        out = {"steps": t["steps"], "samples_per_s": t["samples"] / t["seconds"],
               "padding": 1 - t["tokens"] / t["padded_tokens"] if t["padded_tokens"] else None}
        if t["flops"]:
            name = self.torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
            out.update(utilisation(t["flops"], t["seconds"], name, self.s.precision))
        return out

    def validate(self) -> float | None:
        if self.val_corpus is None or self.val_sampler_factory is None:
            return None
        torch = self.torch
        self.module.eval()
        sampler = self.val_sampler_factory(self.val_corpus)
        losses = []
        with torch.no_grad():
            for _, batch in zip(range(self.s.val_batches), sampler):
                prepared = self._prepare(batch, self.val_corpus)
                losses.append(float(self.batch_loss(prepared.qs, prepared.ps, prepared.ns, prepared)))
        if losses and not all(math.isfinite(v) for v in losses):
            raise TrainingError(f"training diverged at step {self.state.step}: the validation loss is not finite")
        return float(np.mean(losses)) if losses else None

    def train(self, resume_from: Path | None = None, *, verified: bool = False) -> TrainState:
        """Train to ``max_steps`` (or an early stop). A cancel request, Ctrl-C or SIGTERM stops at
        the next step boundary, saves a checkpoint and raises :class:`Cancelled`; a second Ctrl-C
        interrupts at once."""
        torch = self.torch
        if resume_from is not None:
            self.load_checkpoint(resume_from, verified=verified)
        else:
            torch.manual_seed(self.s.seed)
        self._sampler_state = None
        source = prefetched(self._batches(), depth=2) if self.prefetch else self._batches()
        self.reporter.phase("training", self.s.max_steps)
        self.reporter.advance(self.state.step, self.s.max_steps)
        pending: list[_Pending] = []
        first_read = True

        def read() -> None:
            nonlocal first_read
            logs, error = self._read(pending)
            pending.clear()
            if not first_read:  # the first window carries start-up: left out of the throughput
                for log in logs:
                    self._count(log)
            first_read = False
            if logs:
                self.reporter.status(loss=logs[-1].loss)
            if self.rank == 0 and self.on_step:
                for log in logs:
                    self.on_step(log)
            if error:
                raise error

        try:
            with _deferred_interrupts() as interrupted:
                while self.state.step < self.s.max_steps:
                    # stops are checked between reads, at the same steps on every rank
                    if not pending and (interrupted() or self._stop_requested()):
                        self.save_checkpoint()
                        raise Cancelled(f"training stopped at step {self.state.step} with a checkpoint saved; "
                                        "`xlbench run --resume RUN_ID` continues it")
                    prepared = next(source)
                    self._sampler_state = prepared.sampler_state
                    pending.append(self._run(prepared))
                    step = self.state.step
                    validating = bool(self.s.val_every and step % self.s.val_every == 0)
                    checkpointing = bool(self.s.checkpoint_every and step % self.s.checkpoint_every == 0)
                    if len(pending) >= self.read_every or validating or checkpointing or step >= self.s.max_steps:
                        read()
                    if validating and self._validate_and_maybe_stop():
                        break
                    if checkpointing:
                        self.save_checkpoint()
                    self.reporter.advance(step, self.s.max_steps)
        finally:
            if isinstance(source, prefetched):
                source.close()
        return self.state

    def _count(self, log: StepLog) -> None:
        t = self.timing
        t["steps"] += 1
        t["samples"] += self.s.batch_size
        t["seconds"] += log.seconds
        t["flops"] += log.flops or 0.0
        t["tokens"] += log.tokens
        t["padded_tokens"] += log.padded_tokens

    def _stop_requested(self) -> bool:
        """A cancel seen by any rank stops every rank at the same step (rank 0 then reports it)."""
        stop = bool(self.should_stop() or self.reporter.cancelled())
        if self.world > 1:
            import torch.distributed as dist

            flag = self.torch.tensor([1.0 if stop else 0.0], device=self.device if self.device.type == "cuda" else "cpu")
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop

    def _validate_and_maybe_stop(self) -> bool:
        val = self.validate()
        if val is None:
            return False
        if self.rank == 0 and self.on_validation:
            self.on_validation(self.state.step, val)
        if val < self.state.best_val:
            self.state.best_val, self.state.best_step, self.state.bad_validations = val, self.state.step, 0
            if self.rank == 0:
                self.before_write()
                atomic_dir(self.run_dir / "best", lambda d: self.enc.save(d))
        else:
            self.state.bad_validations += 1
        if self.s.patience and self.state.bad_validations >= self.s.patience:
            self.reporter.event(f"early stop at step {self.state.step}: validation loss has not improved for "
                                f"{self.state.bad_validations} validations (best {self.state.best_val:.4f} at step {self.state.best_step})")
            return True
        return False

    # --- checkpoints ------------------------------------------------------------------

    def save_checkpoint(self) -> Path | None:
        if self.rank != 0:
            return None
        self.before_write()
        # the sampler's state after the last batch trained on (a prefetching thread may have drawn more)
        sampler_state = self._sampler_state if self._sampler_state is not None else self.sampler.state()
        path = write_checkpoint(self.run_dir / "checkpoints", Checkpoint(
            step=self.state.step, weights=self.module.state_dict(),
            training={"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                      "rng": rng_state(self.torch, self.device), "scaler": self.scaler.state_dict() if self.scaler else None},
            sampler=sampler_state, trainer={**asdict(self.state), "settings": self.s.model_dump()}),
            keep=self.s.keep_checkpoints)
        if self.on_checkpoint:
            self.on_checkpoint(self.state.step, path)
        return path

    def load_checkpoint(self, path: Path, *, verified: bool = False) -> None:
        """Resume from a checkpoint folder (:mod:`xlbench.core.checkpoints`: verified first unless
        the caller just did; nothing executable is loaded)."""
        saved = read_checkpoint(path, device=self.device, verified=verified)
        self.module.load_state_dict(saved.weights)
        self.optimizer.load_state_dict(saved.training["optimizer"])
        self.scheduler.load_state_dict(saved.training["scheduler"])
        set_rng_state(self.torch, self.device, saved.training["rng"])
        if self.scaler and saved.training.get("scaler"):
            self.scaler.load_state_dict(saved.training["scaler"])
        self.sampler.restore(saved.sampler)
        self._sampler_state = None
        saved.trainer.pop("settings", None)
        self.state = TrainState(**saved.trainer)
