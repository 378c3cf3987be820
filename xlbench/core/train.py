"""Contrastive fine-tuning over parallel data, batch by batch as a sampler composes them.

Loss: InfoNCE with in-batch negatives (and each pair's hard negative when the corpus has one),
``L = −log e^{s(q,d+)·scale} / Σ_j e^{s(q,d_j)·scale}`` with cosine scores and ``scale`` 20
(τ = 0.05, sentence-transformers' default). A passage whose text equals another pair's positive is
masked out of that pair's negatives (it is not a negative). With ``mini_batch`` set, the cached
variant (GradCache) gives the full batch's negatives at the memory cost of a mini-batch.

Everything a resumed run needs is in a checkpoint: weights, optimizer, schedule, sampler
position, RNG states, step, best validation loss. A checkpoint is written to a temporary folder
and renamed, so a crash never leaves half of one, with a manifest of every file's sha256 that is
checked before resuming; nothing in it is executable (safetensors, weights-only tensors, JSON).

Under ``torchrun`` the global batch is split across ranks, embeddings are all-gathered (with
gradients) so every rank sees every negative, and only rank 0 reports or writes.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from xlbench.core import interrupts
from xlbench.core.integrity import atomic_dir, manifest_for, read_manifest, verify, write_json_atomic
from xlbench.core.progress import Reporter
from xlbench.core.train_settings import TrainSettings
from xlbench.errors import Cancelled, ConfigError, TrainingError

CHECKPOINT_FORMAT = "xlbench-checkpoint-v1"
CHECKPOINT_MANIFEST = "manifest.json"


def verify_checkpoint(path: Path) -> int:
    """Raise :class:`~xlbench.core.integrity.Damaged` unless the checkpoint is whole; returns its step."""
    manifest = read_manifest(Path(path) / CHECKPOINT_MANIFEST, CHECKPOINT_FORMAT)
    verify(Path(path), manifest)
    return int(manifest.get("step", -1))


@dataclass
class StepLog:
    step: int
    loss: float
    lr: float
    grad_norm: float
    samples_per_s: float
    batch_langs: str = ""


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
        scores = scores.masked_fill(torch.as_tensor(same_text, device=scores.device), float("-inf"))
    return F.cross_entropy(scores, torch.arange(len(q), device=scores.device))


def _same_text_mask(positives: list[str], columns: list[str]) -> np.ndarray | None:
    mask = np.zeros((len(positives), len(columns)), dtype=bool)
    index: dict[str, list[int]] = {}
    for j, text in enumerate(columns):
        index.setdefault(text, []).append(j)
    for i, text in enumerate(positives):
        for j in index.get(text, ()):
            if j != i:
                mask[i, j] = True
    return mask if mask.any() else None


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
        # (group id → row, language → column) of each corpus, built once: batches name groups by id
        self.indexes = {id(c): ({g: i for i, g in enumerate(c.group_ids)}, {lang: i for i, lang in enumerate(c.languages)})
                        for c in (corpus, val_corpus) if c is not None}
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
        self.params = [p for p in self.module.parameters() if p.requires_grad]
        decay = [p for p in self.params if p.ndim >= 2]
        no_decay = [p for p in self.params if p.ndim < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=settings.lr,
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

    # --- batches ----------------------------------------------------------------------

    def _texts(self, batch, corpus) -> tuple[list[str], list[str], list[str]]:
        gi, li = self.indexes[id(corpus)]
        qs, ps, ns = [], [], []
        for gid, ql, pl in batch:
            q, p, n = corpus.pair(gi[gid], li[ql], li[pl])
            qs.append(q)
            ps.append(p)
            if n is not None and self.s.hard_negatives:
                ns.append(n)
        return qs, ps, ns

    def _embed(self, texts: list[str], role: str):
        torch = self.torch
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.s.precision)
        with torch.autocast(device_type=self.device.type, dtype=dtype, enabled=dtype is not None):
            return self.enc.embed(self.enc.features(texts, role)).float()

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

    def batch_loss(self, qs: list[str], ps: list[str], ns: list[str]):
        """Loss of one global batch with gradients flowing to this rank's share."""
        columns = ps + ns
        mask = _same_text_mask(ps, columns)
        q = self._gather(self._embed(self._local(qs), "query"))
        p = self._gather(self._embed(self._local(ps), "passage"))
        if ns:
            p = self.torch.cat([p, self._gather(self._embed(self._local(ns), "passage"))], dim=0)
        return info_nce(q, p, self.s.scale, mask)

    def cached_step(self, qs: list[str], ps: list[str], ns: list[str]) -> float:
        """GradCache: embed without graph, take the loss gradient w.r.t. the embeddings, then replay
        each mini-batch with its saved RNG state and push that gradient through it."""
        torch = self.torch
        mb = self.s.mini_batch
        chunks = [(texts[a : a + mb], role) for texts, role in ((qs, "query"), (ps, "passage"), (ns, "passage")) for a in range(0, len(texts), mb)]
        states, embs = [], []
        with torch.no_grad():
            for texts, role in chunks:
                states.append(self._rng_state())
                embs.append(self._embed(texts, role))
        flat = torch.cat(embs).requires_grad_(True)
        loss = info_nce(flat[: len(qs)], flat[len(qs):], self.s.scale, _same_text_mask(ps, ps + ns))
        loss.backward()
        grads = flat.grad.split([len(e) for e in embs])
        after = self._rng_state()
        for (texts, role), state, grad in zip(chunks, states, grads):
            self._set_rng_state(state)
            self._embed(texts, role).backward(grad)
        self._set_rng_state(after)
        return float(loss.detach())

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

    def _rng_state(self) -> dict:
        torch = self.torch
        state = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _set_rng_state(self, state: dict) -> None:
        torch = self.torch
        torch.set_rng_state(state["cpu"])
        if "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"], self.device)

    # --- the loop ---------------------------------------------------------------------

    def step(self, batch) -> StepLog:
        torch = self.torch
        t0 = time.perf_counter()
        self.module.train()
        qs, ps, ns = self._texts(batch, self.corpus)
        self.optimizer.zero_grad(set_to_none=True)
        if self.s.mini_batch and self.s.mini_batch < len(qs):
            loss_value = self.cached_step(qs, ps, ns)
        else:
            loss = self.batch_loss(qs, ps, ns)
            (self.scaler.scale(loss) if self.scaler else loss).backward()
            loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise TrainingError(f"training diverged at step {self.state.step + 1}: the loss is {loss_value} "
                                f"(lr {self.optimizer.param_groups[0]['lr']:.3g}); lower train.lr or add train.warmup_steps")
        if self.world > 1:
            self._average_gradients()
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.s.grad_clip if self.s.grad_clip > 0 else float("inf")))
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.state.step += 1
        langs = sorted({f"{q}-{p}" for _, q, p in batch})
        return StepLog(self.state.step, loss_value, lr, grad_norm, len(batch) / (time.perf_counter() - t0),
                       ",".join(langs[:6]) + ("…" if len(langs) > 6 else ""))

    def validate(self) -> float | None:
        if self.val_corpus is None or self.val_sampler_factory is None:
            return None
        torch = self.torch
        self.module.eval()
        sampler = self.val_sampler_factory(self.val_corpus)
        losses = []
        with torch.no_grad():
            for _, batch in zip(range(self.s.val_batches), sampler):
                qs, ps, ns = self._texts(batch, self.val_corpus)
                losses.append(float(self.batch_loss(qs, ps, ns)))
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
        batches = iter(self.sampler)
        self.reporter.phase("training", self.s.max_steps)
        self.reporter.advance(self.state.step, self.s.max_steps)
        with _deferred_interrupts() as interrupted:
            while self.state.step < self.s.max_steps:
                if interrupted() or self._stop_requested():
                    self.save_checkpoint()
                    raise Cancelled(f"training stopped at step {self.state.step} with a checkpoint saved; "
                                    "`xlbench run --resume RUN_ID` continues it")
                log = self.step(next(batches))
                self.reporter.status(loss=log.loss)
                if self.rank == 0 and self.on_step:
                    self.on_step(log)
                if self.s.val_every and self.state.step % self.s.val_every == 0 and self._validate_and_maybe_stop():
                    break
                if self.s.checkpoint_every and self.state.step % self.s.checkpoint_every == 0:
                    self.save_checkpoint()
                self.reporter.advance(self.state.step, self.s.max_steps)
        return self.state

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
        torch = self.torch
        step = self.state.step

        def write(d: Path) -> None:
            from safetensors.torch import save_file

            save_file({k: v.detach().contiguous().cpu() for k, v in self.module.state_dict().items()}, str(d / "model.safetensors"))
            torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                        "rng": self._rng_state(),
                        "scaler": self.scaler.state_dict() if self.scaler else None}, d / "optimizer.pt")
            (d / "sampler.json").write_text(json.dumps(self.sampler.state()))
            (d / "trainer.json").write_text(json.dumps({**asdict(self.state), "settings": self.s.model_dump()}))
            write_json_atomic(d / CHECKPOINT_MANIFEST, manifest_for(sorted(d.iterdir()), CHECKPOINT_FORMAT, step=step))

        path = atomic_dir(self.run_dir / "checkpoints" / f"step-{step:08d}", write)
        kept = sorted((self.run_dir / "checkpoints").glob("step-*"))
        for old in kept[: -max(1, self.s.keep_checkpoints)]:
            if old.name.startswith("step-") and "." not in old.name:
                shutil.rmtree(old, ignore_errors=True)
        if self.on_checkpoint:
            self.on_checkpoint(step, path)
        return path

    def load_checkpoint(self, path: Path, *, verified: bool = False) -> None:
        """Resume from a checkpoint folder, verified first (:func:`verify_checkpoint`) unless the
        caller just did; nothing executable is loaded: weights are safetensors, the optimizer state
        is read with torch's weights-only unpickler (tensors and plain containers only), the rest is
        JSON."""
        from safetensors.torch import load_file

        torch = self.torch
        if not verified:
            verify_checkpoint(path)
        self.module.load_state_dict(load_file(str(path / "model.safetensors"), device=str(self.device)))
        opt = torch.load(path / "optimizer.pt", map_location=self.device, weights_only=True)
        self.optimizer.load_state_dict(opt["optimizer"])
        self.scheduler.load_state_dict(opt["scheduler"])
        self._set_rng_state(opt["rng"])
        if self.scaler and opt.get("scaler"):
            self.scaler.load_state_dict(opt["scaler"])
        self.sampler.restore(json.loads((path / "sampler.json").read_text()))
        saved = json.loads((path / "trainer.json").read_text())
        saved.pop("settings", None)
        self.state = TrainState(**saved)
