"""Stored per-query payloads decoded with bounded memory.

A payload is compressed (an ``.npz`` of deflated members for LAReQA ranks, zlib JSON for MIRACL
hits) and may come from an imported document or a database written elsewhere: a few megabytes
can claim gigabytes once inflated. Every decoder here checks sizes *before* it allocates:

* npz: only the expected members, each a plain numeric or string ``.npy`` whose declared
  uncompressed size, and whose header's shape × item size, fit within the limit (zipfile never
  inflates a member past its declared size), and shapes that agree with each other;
* zlib JSON: inflated in bounded steps, stopped as soon as the output passes the limit; nesting
  too deep for the parser is one line, not a ``RecursionError``.

The limit is :data:`DEFAULT_LIMIT_MB` megabytes of decompressed data per payload, raised with the
environment variable ``XLBENCH_MAX_PAYLOAD_MB`` (or ``xlbench import --max-payload-mb``).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib

import numpy as np

from xlbench.errors import XlbenchError

DEFAULT_LIMIT_MB = 256  # 13,090 XQuAD-R queries × 11 languages take 2.4 MB; 100× MIRACL's dev set fits
LIMIT_ENV = "XLBENCH_MAX_PAYLOAD_MB"
RANK_MEMBERS = {"languages": "U", "query_ids": "U", "query_lang": "i", "block_rank": "i", "pool_rank": "i",
                "pool_sizes": "i"}


class PayloadError(XlbenchError, ValueError):
    """A payload that is not what it claims, or larger than the limit; the message says which."""


def limit_bytes(limit_mb: float | None = None) -> int:
    if limit_mb is None:
        raw = os.environ.get(LIMIT_ENV)
        try:
            limit_mb = float(raw) if raw else DEFAULT_LIMIT_MB
        except ValueError:
            raise PayloadError(f"{LIMIT_ENV}={raw!r} is not a number of megabytes") from None
    if not limit_mb > 0:
        raise PayloadError(f"the payload limit must be a positive number of megabytes, not {limit_mb}")
    return int(limit_mb * 1024 * 1024)


def _too_large(size: int, limit: int) -> PayloadError:
    return PayloadError(f"decompresses to more than {limit / 2**20:,.0f} MB ({size / 2**20:,.0f} MB or more); "
                        f"raise the limit with {LIMIT_ENV} (or import --max-payload-mb) if it is genuine")


def rank_arrays(data: bytes, *, limit: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of a LAReQA ranks payload, checked: members, sizes, dtypes and shapes."""
    limit = limit_bytes() if limit is None else limit
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise PayloadError(f"not an npz archive ({exc})") from None
    infos = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
    if set(infos) != set(RANK_MEMBERS) or len(infos) != len(archive.infolist()):
        raise PayloadError(f"holds {sorted(infos)}, expected {sorted(RANK_MEMBERS)}")
    total = sum(info.file_size for info in infos.values())
    if total > limit:
        raise _too_large(total, limit)
    arrays = {}
    for name, kind in RANK_MEMBERS.items():
        with archive.open(infos[name]) as member:
            try:
                version = np.lib.format.read_magic(member)
                header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = header(member)
            except (ValueError, OSError) as exc:
                raise PayloadError(f"{name}: not an .npy array ({exc})") from None
            if dtype.kind != kind or dtype.hasobject:
                raise PayloadError(f"{name}: dtype {dtype} where {'strings' if kind == 'U' else 'integers'} belong")
            size = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            if size > infos[name].file_size:  # a header claiming more than the member holds
                raise PayloadError(f"{name}: its header claims {shape} ({size:,} bytes), more than the member holds")
        with archive.open(infos[name]) as member:
            try:
                arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
            except (ValueError, OSError, EOFError) as exc:
                raise PayloadError(f"{name}: unreadable ({exc})") from None
    _check_rank_shapes(arrays)
    return arrays


def _check_rank_shapes(a: dict[str, np.ndarray]) -> None:
    n_lang, n_query = len(a["languages"]), len(a["query_ids"])
    expected = {"languages": (n_lang,), "query_ids": (n_query,), "query_lang": (n_query,),
                "block_rank": (n_query, n_lang), "pool_rank": (n_query, n_lang), "pool_sizes": (n_lang,)}
    for name, shape in expected.items():
        if a[name].shape != shape:
            raise PayloadError(f"{name} has shape {a[name].shape}, expected {shape} for {n_query} queries in {n_lang} languages")
    if n_query and (a["query_lang"].min() < 0 or a["query_lang"].max() >= n_lang):
        raise PayloadError("query_lang holds a language index outside the payload's languages")


def hits_document(data: bytes, *, limit: int | None = None) -> dict:
    """A MIRACL payload (zlib JSON) inflated in bounded steps, then parsed."""
    limit = limit_bytes() if limit is None else limit
    inflater = zlib.decompressobj()
    out = bytearray()
    pending = data
    try:
        while pending or not inflater.eof:
            chunk = inflater.decompress(pending, 1 << 20)
            out += chunk
            if len(out) > limit:
                raise _too_large(len(out), limit)
            pending = inflater.unconsumed_tail
            if not chunk and not pending:
                break
    except zlib.error as exc:
        raise PayloadError(f"not zlib data ({exc})") from None
    if not inflater.eof:
        raise PayloadError("truncated zlib data")
    return parse_json(bytes(out))


def parse_json(text: bytes | str):
    try:
        return json.loads(text)
    except RecursionError:
        raise PayloadError("JSON nested deeper than the parser allows") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"not JSON ({exc})") from None
