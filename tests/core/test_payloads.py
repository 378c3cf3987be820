"""Stored payloads decoded with bounded memory: a round trip, and each way a payload can lie."""

from __future__ import annotations

import io
import zipfile
import zlib

import numpy as np
import pytest

from xlbench.core.lareqa_report import LareqaRanks
from xlbench.core.payloads import PayloadError, hits_document, limit_bytes, rank_arrays


def _ranks(n_query=3):
    return LareqaRanks(["de", "en"], [f"q{i}" for i in range(n_query)], np.arange(n_query) % 2,
                       np.ones((n_query, 2), int), np.ones((n_query, 2), int) * 2, np.array([n_query, n_query]))


def _npz(**members) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **members)
    return buf.getvalue()


def _members(r: LareqaRanks) -> dict:
    return {"languages": np.array(r.languages), "query_ids": np.array(r.query_ids), "query_lang": r.query_lang,
            "block_rank": r.block_rank, "pool_rank": r.pool_rank, "pool_sizes": r.pool_sizes}


def test_round_trip():
    r = _ranks()
    back = LareqaRanks.from_bytes(r.to_bytes())
    assert back.languages == r.languages and back.query_ids == r.query_ids
    assert (back.block_rank == r.block_rank).all() and (back.pool_rank == r.pool_rank).all()


@pytest.mark.parametrize("change,message", [
    (lambda m: m.update(block_rank=np.ones((4, 2), int)), "block_rank has shape (4, 2), expected (3, 2)"),
    (lambda m: m.update(query_lang=np.array([0, 1, 5])), "language index outside"),
    (lambda m: m.update(pool_rank=np.ones((3, 2), float)), "pool_rank: dtype float64 where integers belong"),
    (lambda m: m.update(extra=np.zeros(1)), "expected ['block_rank'"),
    (lambda m: m.pop("pool_sizes"), "expected ['block_rank'"),
])
def test_a_payload_that_lies_about_its_arrays_is_refused(change, message):
    members = _members(_ranks())
    change(members)
    with pytest.raises(PayloadError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        rank_arrays(_npz(**members))


def test_an_object_array_is_never_unpickled():
    members = _members(_ranks())
    members["query_ids"] = np.array([object(), "x", "y"], dtype=object)
    buf = io.BytesIO()
    np.savez(buf, **members)
    with pytest.raises(PayloadError, match="query_ids: dtype object"):
        rank_arrays(buf.getvalue())


def test_a_header_claiming_more_than_the_member_holds_is_refused_before_allocating():
    buf = io.BytesIO()
    members = _members(_ranks())
    with zipfile.ZipFile(buf, "w") as z:
        for name, arr in members.items():
            with z.open(f"{name}.npy", "w") as f:
                if name == "block_rank":
                    np.lib.format.write_array_header_1_0(f, {"descr": "<i8", "fortran_order": False, "shape": (10**12, 2)})
                    f.write(bytes(48))
                else:
                    np.lib.format.write_array(f, arr)
    with pytest.raises(PayloadError, match="header claims"):
        rank_arrays(buf.getvalue())


def test_limits():
    assert len(rank_arrays(_ranks(1000).to_bytes(), limit=10**6)["query_ids"]) == 1000
    with pytest.raises(PayloadError, match="decompresses to more than"):
        rank_arrays(_ranks(1000).to_bytes(), limit=1000)
    doc = zlib.compress(b'{"queries": [], "depth": 100}' + b" " * 10_000)
    assert hits_document(doc, limit=20_000)["depth"] == 100
    with pytest.raises(PayloadError, match="decompresses to more than"):
        hits_document(doc, limit=5_000)
    with pytest.raises(PayloadError, match="nested deeper"):
        hits_document(zlib.compress(b"[" * 100_000 + b"]" * 100_000))
    with pytest.raises(PayloadError, match="truncated"):
        hits_document(zlib.compress(b'{"a": 1}')[:-4])


def test_the_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("XLBENCH_MAX_PAYLOAD_MB", "2")
    assert limit_bytes() == 2 * 2**20
    monkeypatch.setenv("XLBENCH_MAX_PAYLOAD_MB", "lots")
    with pytest.raises(PayloadError, match="not a number"):
        limit_bytes()
