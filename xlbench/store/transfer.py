"""A run's full record as one JSON document, and back into any database.

The document holds the run row (config, environment with passwords redacted, timings), its model
and dataset rows, every metric, the per-query payloads (base64), events, training points and
checkpoint paths. Importing validates every field first (:func:`parse_document`), keeps the
run's id when it is free in the target database (else assigns a new one and says so), and takes
the run as a *record*: see :func:`import_parsed` for what is trusted and what is dropped.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import select

from xlbench.core.integrity import write_text_atomic
from xlbench.errors import DataError, StoreError
from xlbench.store.database import session
from xlbench.store.models import (ACTIVE_STATUSES, RUN_STATUSES, Checkpoint, Dataset, Metric, Model, QueryResult, Run,
                                  RunEvent, TrainPoint, utcnow)
from xlbench.store.secrets import redact_env

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
    from xlbench.store.models import Sweep

    run = store.get_run(run_id)
    with session(store.engine) as s:
        model = s.get(Model, run.model_id) if run.model_id else None
        sweep = s.get(Sweep, run.sweep_id) if run.sweep_id else None
        rows = {key: list(s.exec(select(cls).where(cls.run_id == run_id).order_by(cls.id))) for key, cls in RUN_ROWS}
        names = {qr.dataset: qr.dataset_version for qr in rows["query_results"]}
        datasets = [d for d in s.exec(select(Dataset)) if names.get(d.name) == d.version]
        return {
            "format": FORMAT,
            "run": {**_row(run, drop=()), "env_json": json.dumps(redact_env(json.loads(run.env_json or "{}")))},
            "model": _row(model) if model else None,
            "datasets": [_row(d) for d in datasets],
            # the sweep the run belongs to, so an import can show the study again (`sweep show`)
            "sweep": {"id": sweep.id, "name": sweep.name, "grid": json.loads(sweep.grid_json),
                      "base_config": json.loads(sweep.base_config_json)} if sweep else None,
            **{key: [_row(obj, drop=("id", "run_id")) for obj in objs] for key, objs in rows.items()},
        }


def write_export(store, run_ids: list[int], path, *, append: bool = False) -> int:
    """One run's document (an object) or several (a list) in one JSON file; returns how many were
    written. With ``append``, the documents already in ``path`` are kept as they are, byte for
    byte in content (a run imported from it and exported again would lose what import drops:
    its pid, host, checkpoints), and only runs it does not hold yet (by name and creation time)
    are added after them."""
    from pathlib import Path

    path = Path(path)
    kept = list(read_document(path)) if append and path.exists() else []
    held = {_identity(doc) for doc in kept}
    docs = [doc for doc in (export_run(store, i) for i in run_ids) if _identity(doc) not in held]
    everything = kept + docs
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(everything[0] if len(everything) == 1 and not append else everything))
    return len(docs)


def _identity(doc: dict) -> tuple:
    """A run across databases: its name and when it was created (import keeps both)."""
    run = doc.get("run") or {}
    created = run.get("created_at")
    try:
        created = datetime.fromisoformat(created).astimezone(UTC).isoformat() if created else None
    except (TypeError, ValueError):
        pass
    return run.get("name"), created


# --- import: every field validated, nothing executable or machine-local taken on faith ------------

PAYLOAD_FORMATS = ("lareqa-ranks-v1", "miracl-hits-v1")
EVENT_LEVELS = ("info", "warning", "error")


class _Doc:
    """Typed reads from one exported document; each failure names the file and the JSON path."""

    def __init__(self, path: str, payload_limit: int | None = None) -> None:
        self.path = path
        self.payload_limit = payload_limit  # bytes a payload may inflate to (None: xlbench.core.payloads' default)

    def fail(self, place: str, problem: str):
        raise DataError(self.path, place, problem)

    def obj(self, value, place: str) -> dict:
        if not isinstance(value, dict):
            self.fail(place, f"expected an object, found {type(value).__name__}")
        return value

    def items(self, doc: dict, key: str, place: str) -> list[dict]:
        value = doc.get(key, [])
        if not isinstance(value, list):
            self.fail(f"{place}.{key}", f"expected a list, found {type(value).__name__}")
        return [self.obj(v, f"{place}.{key}[{i}]") for i, v in enumerate(value)]

    def text(self, data: dict, key: str, place: str, *, default: str | None = "", choices=None) -> str | None:
        value = data.get(key, default)
        if value is None and default is None:
            return None
        if not isinstance(value, str):
            self.fail(f"{place}.{key}", f"expected a string, found {type(value).__name__}")
        if choices is not None and value not in choices:
            self.fail(f"{place}.{key}", f"{value!r} is not one of {', '.join(choices)}")
        return value

    def integer(self, data: dict, key: str, place: str, *, optional: bool = False, minimum: int | None = None) -> int | None:
        value = data.get(key)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
            self.fail(f"{place}.{key}", f"expected an integer{'' if minimum is None else f' ≥ {minimum}'}, found {value!r}")
        return value

    def number(self, data: dict, key: str, place: str, *, optional: bool = False) -> float | None:
        value = data.get(key)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(f"{place}.{key}", f"expected a finite number, found {value!r}")
        return float(value)

    def when(self, data: dict, key: str, place: str) -> datetime | None:
        value = data.get(key)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            self.fail(f"{place}.{key}", f"expected an ISO timestamp, found {value!r}")
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    def json_object(self, data: dict, key: str, place: str) -> dict:
        raw = self.text(data, key, place, default="{}")
        try:
            value = json.loads(raw)
        except ValueError as exc:
            self.fail(f"{place}.{key}", f"not JSON ({exc})")
        return self.obj(value, f"{place}.{key}")

    def payload(self, data: dict, place: str, fmt: str) -> bytes:
        try:
            raw = base64.b64decode(self.text(data, "payload", place), validate=True)
        except ValueError:
            self.fail(f"{place}.payload", "not base64")
        from xlbench.core.payloads import PayloadError, hits_document, rank_arrays

        try:  # numpy arrays only, no pickle; sizes bounded before anything is inflated
            if fmt == "lareqa-ranks-v1":
                queries = len(rank_arrays(raw, limit=self.payload_limit)["query_ids"])
            else:
                queries = len(hits_document(raw, limit=self.payload_limit).get("queries", []))
        except (PayloadError, AttributeError) as exc:
            self.fail(f"{place}.payload", f"not a readable {fmt} payload: {exc}")
        claimed = json.loads(data.get("info_json") or "{}").get("queries")
        if isinstance(claimed, int) and claimed != queries:  # the record's own count, checked against the payload
            self.fail(f"{place}.payload", f"holds {queries:,} queries where its info_json says {claimed:,}")
        return raw


def _run_row(d: _Doc, data: dict, source_name: str) -> tuple[Run, int | None]:
    place = "run"
    status = d.text(data, "status", place, choices=RUN_STATUSES)
    error = d.text(data, "error", place, default=None)
    if status in ACTIVE_STATUSES:  # a process elsewhere was (or would be) running it: not ours to claim
        error, status = f"was {status} where it was exported; imported as a record", "lost"
    config = d.json_object(data, "config_json", place)
    if "plugins_dir" in config:
        config["plugins_dir"] = None  # a folder of code on another machine: never followed
    env = redact_env(d.json_object(data, "env_json", place))
    original = d.integer(data, "id", place, optional=True, minimum=1)
    env["imported"] = {"file": source_name, "original_id": original, "at": utcnow().isoformat()}
    run = Run(
        name=d.text(data, "name", place), kind=d.text(data, "kind", place, choices=("eval", "train")), status=status,
        config_json=json.dumps(config), env_json=json.dumps(env, default=str), error=error,
        phase=d.text(data, "phase", place), progress_done=d.integer(data, "progress_done", place, optional=True, minimum=0),
        progress_total=d.integer(data, "progress_total", place, optional=True, minimum=0),
        xlbench_version=d.text(data, "xlbench_version", place), git_commit=d.text(data, "git_commit", place, default=None),
        **{k: d.when(data, k, place) for k in ("created_at", "started_at", "finished_at")},
    )
    if run.created_at is None:
        run.created_at = utcnow()
    return run, original


def _rows(d: _Doc, key: str, items: list[dict]) -> list:
    out = []
    for i, item in enumerate(items):
        place = f"{key}[{i}]"
        if key == "metrics":
            out.append(Metric(**{f: d.text(item, f, place) for f in ("dataset", "dataset_version", "setting", "query_lang",
                                                                       "corpus_lang", "metric")},
                              value=d.number(item, "value", place), n_queries=d.integer(item, "n_queries", place, optional=True)))
        elif key == "query_results":
            fmt = d.text(item, "format", place, choices=PAYLOAD_FORMATS)
            d.json_object(item, "info_json", place)
            out.append(QueryResult(dataset=d.text(item, "dataset", place), dataset_version=d.text(item, "dataset_version", place),
                                   format=fmt, payload=d.payload(item, place, fmt), info_json=item.get("info_json", "{}"),
                                   created_at=d.when(item, "created_at", place) or utcnow()))
        elif key == "events":
            d.json_object(item, "data_json", place)
            out.append(RunEvent(level=d.text(item, "level", place, choices=EVENT_LEVELS), message=d.text(item, "message", place),
                                data_json=item.get("data_json", "{}"), ts=d.when(item, "ts", place) or utcnow()))
        elif key == "train_points":
            out.append(TrainPoint(step=d.integer(item, "step", place, minimum=0), split=d.text(item, "split", place, choices=("train", "val")),
                                  loss=d.number(item, "loss", place), info=d.text(item, "info", place),
                                  **{f: d.number(item, f, place, optional=True) for f in ("lr", "grad_norm", "samples_per_s")},
                                  ts=d.when(item, "ts", place) or utcnow()))
    return out


def _model_fields(d: _Doc, data) -> dict:
    data = d.obj(data, "model")
    return {"name": d.text(data, "name", "model"), "source": d.text(data, "source", "model"),
            "encoder": d.text(data, "encoder", "model"), "label": d.text(data, "label", "model"),
            "info": d.json_object(data, "info_json", "model")}


def _model_row(s, fields: dict) -> int:
    """The model row for an imported run: reused only if the same name means the same model here."""
    name, source = fields["name"], fields["source"]
    existing = s.exec(select(Model).where(Model.name == name)).first()
    if existing is not None and existing.source == source and existing.encoder == fields["encoder"]:
        return existing.id
    candidate, n = name, 1
    while s.exec(select(Model).where(Model.name == candidate)).first() is not None:
        n += 1
        candidate = f"{name} (imported {n})"
    # the source was a folder or hub id on the exporting machine: kept as information, never loaded
    model = Model(name=candidate, source="", encoder=fields["encoder"], label=fields["label"],
                  info_json=json.dumps({**fields["info"], "imported_source": source}))
    s.add(model)
    s.flush()
    return model.id


@dataclass
class ParsedRun:
    """One exported run, every field validated and turned into rows (nothing written yet)."""

    run: Run
    original_id: int | None
    rows: list  # metrics, query results, events, loss points (their run_id is set on import)
    datasets: list[Dataset]
    model: dict | None
    sweep: dict | None = None  # {"id": in the exporting database, "name", "grid", "base_config"}


def parse_document(doc, where: str, *, payload_limit: int | None = None) -> ParsedRun:
    """Check a whole document (every field, every payload) and build its rows, before anything is
    written; a problem is one :class:`DataError` naming the file and the JSON path."""
    from pathlib import Path

    d = _Doc(where, payload_limit)
    doc = d.obj(doc, "(document)")
    if doc.get("format") != FORMAT:
        d.fail("format", f"expected {FORMAT!r}, found {doc.get('format')!r}")
    run, original = _run_row(d, d.obj(doc.get("run"), "run"), Path(where).name)
    rows = [obj for key in ("metrics", "query_results", "events", "train_points")
            for obj in _rows(d, key, d.items(doc, key, "(document)"))]
    datasets = []
    for i, data in enumerate(d.items(doc, "datasets", "(document)")):
        place = f"datasets[{i}]"
        datasets.append(Dataset(**{f: d.text(data, f, place) for f in ("name", "version", "kind", "source", "languages")},
                                stats_json=json.dumps(d.json_object(data, "stats_json", place))))
    model = _model_fields(d, doc["model"]) if doc.get("model") is not None else None
    return ParsedRun(run, original, rows, datasets, model, _sweep_fields(d, doc.get("sweep")))


def _sweep_fields(d: _Doc, data) -> dict | None:
    """A run's sweep: a name, a grid of scalar lists, a base config (shown, never executed)."""
    if data is None:
        return None
    data = d.obj(data, "sweep")
    grid = d.obj(data.get("grid"), "sweep.grid")
    for key, values in grid.items():
        if not isinstance(values, list) or not all(isinstance(v, str | int | float | bool) for v in values):
            d.fail(f"sweep.grid.{key}", "expected a list of numbers, strings or booleans")
    return {"id": d.integer(data, "id", "sweep", minimum=1), "name": d.text(data, "name", "sweep"), "grid": grid,
            "base_config": d.obj(data.get("base_config", {}), "sweep.base_config")}


def import_parsed(store, parsed: ParsedRun, sweeps: dict | None = None) -> tuple[int, bool]:
    """Insert one parsed run as a record; returns ``(new id, kept the original id)``. All or nothing.

    A run that belonged to a sweep joins a new sweep row with the same name, grid and base config;
    ``sweeps`` (exporting database's sweep id → new id) puts the runs of one import together.

    What is trusted: names, configs (shown, never executed: an imported run cannot be resumed or
    re-evaluated, and its plugins folder is dropped), metrics, per-query payloads (numpy arrays or
    JSON, validated), events and loss points. What is not: processes, hosts, heartbeats, running or
    queued states (imported as ``lost``), checkpoint paths (not imported), model folders (kept as
    information only), parent links.
    """
    from xlbench.store.models import Sweep

    sweeps = {} if sweeps is None else sweeps
    with session(store.engine) as s:
        model_id = _model_row(s, parsed.model) if parsed.model else None
        if parsed.sweep is not None and parsed.sweep["id"] not in sweeps:
            row = Sweep(name=parsed.sweep["name"], grid_json=json.dumps(parsed.sweep["grid"]),
                        base_config_json=json.dumps(parsed.sweep["base_config"], sort_keys=True))
            s.add(row)
            s.flush()
            sweeps[parsed.sweep["id"]] = row.id
        elif parsed.sweep is not None:  # a sweep that grew (sweep extend) lists more values in its later runs
            row = s.get(Sweep, sweeps[parsed.sweep["id"]])
            grid = json.loads(row.grid_json)
            for key, values in parsed.sweep["grid"].items():
                grid[key] = grid.get(key, []) + [v for v in values if v not in grid.get(key, [])]
            row.grid_json = json.dumps(grid)
            s.add(row)
        run = parsed.run
        for ds in parsed.datasets:
            if s.exec(select(Dataset).where(Dataset.name == ds.name, Dataset.version == ds.version)).first() is None:
                s.add(ds)
        run.model_id = model_id
        run.sweep_id = sweeps[parsed.sweep["id"]] if parsed.sweep is not None else None
        kept = parsed.original_id is not None and s.get(Run, parsed.original_id) is None
        if kept:
            run.id = parsed.original_id
        s.add(run)
        s.flush()
        for obj in parsed.rows:
            obj.run_id = run.id
            s.add(obj)
        s.commit()
        return run.id, kept


def import_run(store, doc: dict, *, where: str = "import") -> tuple[int, bool]:
    """:func:`parse_document` then :func:`import_parsed`."""
    return import_parsed(store, parse_document(doc, where))


def imported_from(run) -> dict | None:
    """Where an imported run came from, or None for a run made in this database."""
    return json.loads(run.env_json or "{}").get("imported")


def ensure_local(run) -> None:
    """Refuse to execute an imported run: its config, model and checkpoints belong to another machine."""
    origin = imported_from(run)
    if origin:
        raise StoreError(f"run {run.id} was imported from {origin.get('file')}: it is a record, not executed here "
                         "(start a new run from its config instead)")


MAX_DEPTH = 64  # an export is a few levels deep; deeper is not an export (and would cost memory to build)


def read_document(path) -> Iterator[dict]:
    """The run documents of an export file (one object, or a list of them), read as a stream: one
    document in memory at a time, whatever the file's size; malformed or too deeply nested JSON is
    one :class:`DataError` naming the file."""
    import ijson

    try:
        with open(path, "rb") as fh:
            events = ijson.basic_parse(fh, use_float=True)
            event, value = next(events, (None, None))
            if event == "start_map":
                yield _json_value(events, event, value, path)
            elif event == "start_array":
                for event, value in events:
                    if event == "end_array":
                        break
                    yield _json_value(events, event, value, path)
            else:
                raise DataError(path, "", "not an export: expected a run document (an object) or a list of them")
    except ijson.JSONError as exc:
        raise DataError(path, "", f"invalid JSON ({' '.join(str(exc).split())[:200]})") from None
    except UnicodeDecodeError as exc:
        raise DataError(path, f"byte {exc.start}", "not UTF-8") from None
    except OSError as exc:
        raise DataError(path, "", f"cannot read ({exc.strerror})") from None


def _json_value(events, event: str, value, path):
    """One JSON value built from ijson's flat events, with an explicit stack (no recursion, no
    per-event path strings) and a depth limit."""
    if event not in ("start_map", "start_array"):
        return value
    root: dict | list = {} if event == "start_map" else []
    stack: list[list] = [[root, None]]  # [container, pending key]
    for event, value in events:
        frame = stack[-1]
        if event == "map_key":
            frame[1] = value
            continue
        if event in ("end_map", "end_array"):
            stack.pop()
            if not stack:
                return root
            continue
        if event in ("start_map", "start_array"):
            if len(stack) >= MAX_DEPTH:
                raise DataError(path, "", f"JSON nested deeper than {MAX_DEPTH} levels: not an export")
            value = {} if event == "start_map" else []
        container, key = frame
        if isinstance(container, dict):
            container[key] = value
        else:
            container.append(value)
        if event in ("start_map", "start_array"):
            stack.append([value, None])
    raise DataError(path, "", "invalid JSON (the file ends inside a value)")
