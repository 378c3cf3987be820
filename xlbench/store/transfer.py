"""A run's full record as one JSON document, and back into any database.

The document holds the run row (config, environment, timings), its model and dataset rows, every
metric, the per-query payloads (base64), events, training points and checkpoint paths. Importing
keeps the run's id when it is free in the target database (so tables that name runs by id read
the same), else assigns a new one and says so.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime

from sqlmodel import select

from xlbench.errors import DataError
from xlbench.store.database import session
from xlbench.store.models import Checkpoint, Dataset, Metric, Model, QueryResult, Run, RunEvent, TrainPoint

FORMAT = "xlbench-run-v1"
# the rows that belong to a run, as named in the document
RUN_ROWS = (("metrics", Metric), ("query_results", QueryResult), ("events", RunEvent), ("train_points", TrainPoint),
            ("checkpoints", Checkpoint))


def _row(obj, drop=("id",)) -> dict:
    out = {}
    for key, value in obj.model_dump().items():
        if key in drop:
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, bytes):
            value = base64.b64encode(value).decode()
        out[key] = value
    return out


def export_run(store, run_id: int) -> dict:
    run = store.get_run(run_id)
    with session(store.engine) as s:
        model = s.get(Model, run.model_id) if run.model_id else None
        rows = {key: list(s.exec(select(cls).where(cls.run_id == run_id).order_by(cls.id))) for key, cls in RUN_ROWS}
        names = {qr.dataset: qr.dataset_version for qr in rows["query_results"]}
        datasets = [d for d in s.exec(select(Dataset)) if names.get(d.name) == d.version]
        return {
            "format": FORMAT,
            "run": _row(run, drop=()),
            "model": _row(model) if model else None,
            "datasets": [_row(d) for d in datasets],
            **{key: [_row(obj, drop=("id", "run_id")) for obj in objs] for key, objs in rows.items()},
        }


def write_export(store, run_ids: list[int], path) -> int:
    """One run's document (an object) or several (a list) in one JSON file; returns how many."""
    from pathlib import Path

    docs = [export_run(store, i) for i in run_ids]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(docs[0] if len(docs) == 1 else docs))
    return len(docs)


def _parse(cls, data: dict, where: str):
    values = {}
    for key, value in data.items():
        field = cls.model_fields.get(key)
        if field is None:
            continue
        if isinstance(value, str) and key in ("created_at", "started_at", "finished_at", "heartbeat_at", "ts"):
            value = datetime.fromisoformat(value)
        elif key == "payload" and isinstance(value, str):
            value = base64.b64decode(value)
        values[key] = value
    try:
        return cls(**values)
    except Exception as exc:
        raise DataError(where, "", f"cannot read a {cls.__name__}: {exc}") from None


def import_run(store, doc: dict, *, where: str = "import") -> tuple[int, bool]:
    """Insert one exported run; returns ``(new id, kept the original id)``. All or nothing."""
    if doc.get("format") != FORMAT:
        raise DataError(where, "format", f"expected {FORMAT!r}, found {doc.get('format')!r}")
    with session(store.engine) as s:
        model_id = None
        if doc.get("model"):
            m = _parse(Model, doc["model"], where)
            existing = s.exec(select(Model).where(Model.name == m.name)).first()
            if existing is None:
                s.add(m)
                s.flush()
                existing = m
            model_id = existing.id
        for d in doc.get("datasets", []):
            ds = _parse(Dataset, d, where)
            if s.exec(select(Dataset).where(Dataset.name == ds.name, Dataset.version == ds.version)).first() is None:
                s.add(ds)
        run_data = dict(doc["run"])
        original = run_data.pop("id", None)
        run = _parse(Run, run_data, where)
        run.model_id, run.parent_id = model_id, None
        kept = original is not None and s.get(Run, original) is None
        if kept:
            run.id = original
        s.add(run)
        s.flush()
        for key, cls in RUN_ROWS:
            for item in doc.get(key, []):
                obj = _parse(cls, item, where)
                obj.run_id = run.id
                s.add(obj)
        s.commit()
        return run.id, kept


def read_document(path) -> list[dict]:
    """An export file: one run document, or a list of them."""
    try:
        data = json.loads(open(path, encoding="utf-8").read())
    except json.JSONDecodeError as exc:
        raise DataError(path, f"line {exc.lineno} column {exc.colno}", f"invalid JSON ({exc.msg})") from None
    except OSError as exc:
        raise DataError(path, "", f"cannot read ({exc.strerror})") from None
    return data if isinstance(data, list) else [data]
