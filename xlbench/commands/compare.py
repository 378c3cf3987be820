"""``xlbench compare``, ``xlbench export`` and ``xlbench import``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from xlbench.commands.common import make_console, open_store
from xlbench.core.integrity import write_text_atomic
from xlbench.errors import ConfigError

FORMATS = ("table", "md", "latex", "csv", "json")


def select_runs(store, refs: list[str], last: int | None, where: list[str]) -> list[int]:
    """Run ids from explicit refs, or the newest ``last`` finished runs matching every ``where``."""
    from xlbench.core.compare import flatten

    if refs:
        ids = store.find_runs(refs)
    else:
        candidates = store.list_runs(statuses=["finished"])
        ids = []
        for run in candidates:
            flat = flatten(json.loads(run.config_json or "{}"))
            if all(_matches(flat, cond) for cond in where):
                ids.append(run.id)
        ids = sorted(ids[:last] if last else ids)
    if not ids:
        raise ConfigError("no runs selected: name them, or use --last N / --where KEY=VALUE")
    return ids


def _matches(flat: dict, cond: str) -> bool:
    key, sep, value = cond.partition("=")
    if not sep:
        raise ConfigError(f"bad --where {cond!r}: write KEY=VALUE, e.g. sampler=hybrid or sampler.alpha=0.5")
    actual = flat.get(key, flat.get(f"{key}.name"))
    return str(actual).lower() == value.lower() or (actual is not None and _number_equal(actual, value))


def _number_equal(actual, value: str) -> bool:
    try:
        return float(actual) == float(value)
    except (TypeError, ValueError):
        return False


def compare_cmd(
    runs: Annotated[Optional[list[str]], typer.Argument(help="Run ids or names; the first is the reference.")] = None,
    last: Annotated[Optional[int], typer.Option("--last", help="The newest N finished runs (oldest first).")] = None,
    where: Annotated[Optional[list[str]], typer.Option("--where", help="Only runs whose config matches KEY=VALUE (repeatable).")] = None,
    group_by: Annotated[Optional[str], typer.Option("--group-by", help="Pool runs differing only in seed by this key, e.g. sampler.alpha, and test the groups as training procedures (over seeds).")] = None,
    sweep: Annotated[Optional[int], typer.Option("--sweep", help="The finished runs of this sweep, grouped by its grid key (as --group-by).")] = None,
    output_format: Annotated[str, typer.Option("--format", "-f", help="table, md, latex, csv or json.")] = "table",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the export here instead of the terminal.")] = None,
    matrix_csv: Annotated[Optional[Path], typer.Option("--matrix-csv", help="Also write every (query, corpus language) Δ mAP cell as CSV.")] = None,
    permutations: Annotated[int, typer.Option("--permutations", help="Random sign flips per test (and bootstrap resamples).")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the permutation and bootstrap draws.")] = 0,
) -> None:
    """Compare runs side by side: Δ to the first run with significance tests (Holm-corrected),
    config differences, and the per-language Δ mAP matrix.

    Single runs are compared as *these models* (a paired test over questions: it cannot say
    whether the training procedures differ, as one seed each leaves seed variance unknown).
    Groups of seeds (--group-by, --sweep) are compared as *training procedures*: seed-to-seed and
    question-sampling variance both counted (docs/sweeps.md).

    Examples:

      xlbench compare 4 5 6

      xlbench compare --last 6 --group-by sampler.alpha

      xlbench compare --sweep 1

      xlbench compare 4 5 6 --format md --output docs/results.md
    """
    from xlbench.compare_tables import RENDERERS
    from xlbench.compare_tables import matrix_csv as render_matrix
    from xlbench.core.compare import compare_runs, flatten, group_runs

    if output_format not in FORMATS:
        raise ConfigError(f"unknown format {output_format!r}; choose one of {', '.join(FORMATS)}")
    if permutations < 1000:
        raise ConfigError("use at least 1,000 permutations (10,000 is the default)")
    store = open_store()
    if sweep is not None:
        from xlbench.core.sweeps import x_key_of

        if runs or last:
            raise ConfigError("--sweep selects the runs itself: leave out run ids and --last")
        sweep_row, members = store.sweep(sweep)
        group_by = group_by or x_key_of(json.loads(sweep_row.grid_json))
        runs = [str(r.id) for r in members if r.status == "finished"]
        if not runs:
            raise ConfigError(f"sweep {sweep} has no finished runs yet")
    ids = select_runs(store, runs or [], last, where or [])
    inputs = store.run_inputs(ids)
    empty = [r.run_id for r in inputs if not r.results]
    if empty:
        raise ConfigError(f"run(s) {', '.join(map(str, empty))} have no stored results to compare")
    groups = labels = None
    if group_by:
        groups = group_runs([r.config for r in inputs], group_by)
        labels = [f"{group_by}={flatten(inputs[g[0]].config).get(group_by)} (n={len(g)}: runs {','.join(str(inputs[i].run_id) for i in g)})"
                  for g in groups]
    comparison = compare_runs(inputs, groups=groups, labels=labels, permutations=permutations, seed=seed)
    if not comparison.rows:
        from xlbench.errors import XlbenchError

        evaluated = "; ".join(f"run {r.run_id}: {', '.join(sorted(r.results))}" for r in inputs)
        raise XlbenchError(f"runs {', '.join(str(r.run_id) for r in inputs)} have no evaluation in common to compare "
                           f"({evaluated})")
    if matrix_csv:
        write_text_atomic(matrix_csv, render_matrix(comparison))
    if output_format == "table":
        from xlbench.console import print_comparison

        print_comparison(make_console(), comparison)
        return
    text = RENDERERS[output_format](comparison)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(output, text)
        make_console(stderr=True).print(f"wrote {output}")
    else:
        print(text, end="")


def export_cmd(
    runs: Annotated[Optional[list[str]], typer.Argument(help="Run ids or names.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="JSON file to write (one run: an object; several: a list).")] = ...,
    sweep: Annotated[Optional[int], typer.Option("--sweep", help="Every finished run of this sweep.")] = None,
    append: Annotated[bool, typer.Option("--append", help="Keep the documents already in the file; add only runs it does not hold.")] = False,
) -> None:
    """Export runs' full records (config, environment, metrics, per-query ranks, events, loss
    points) to one JSON file that `xlbench import` reads into any other database.

    A study that grows over sessions: `xlbench export --sweep 1 -o results/study.json --append`
    adds the runs finished since, keeping the earlier records as they were written."""
    from xlbench.store.transfer import write_export

    store = open_store()
    if sweep is not None:
        if runs:
            raise ConfigError("--sweep selects the runs itself: leave out run ids")
        ids = [r.id for r in store.sweep(sweep)[1] if r.status == "finished"]
    elif runs:
        ids = store.find_runs(runs)
    else:
        raise ConfigError("name the runs to export, or --sweep ID")
    n = write_export(store, ids, output, append=append)
    make_console().print(f"exported {n} run(s) to {output}" + (" (appended)" if append else ""), highlight=False)


def import_cmd(
    files: Annotated[list[Path], typer.Argument(help="Files written by `xlbench export`.")],
    max_payload_mb: Annotated[Optional[float], typer.Option("--max-payload-mb", help="Largest a stored per-query payload may decompress to (default 256, or $XLBENCH_MAX_PAYLOAD_MB).")] = None,
) -> None:
    """Import exported runs into this database as records (ids kept where free).

    Every field is validated first, and every per-query payload is decompressed with a size limit
    and its shapes checked. Imported runs are never executed: no resume or re-evaluation, no
    plugins folder, no checkpoint paths; running or queued runs arrive as lost."""
    from xlbench.core.payloads import limit_bytes
    from xlbench.store.transfer import import_parsed, parse_document, read_document
    from xlbench.text import inert

    limit = limit_bytes(max_payload_mb)

    def documents():  # streamed: one document in memory at a time, whatever the files' sizes
        for path in files:
            for doc in read_document(path):
                yield parse_document(doc, str(path), payload_limit=limit)

    for _ in documents():  # every document of every file is checked before the first is written
        pass
    store = open_store()
    console = make_console()
    sweeps: dict[int, int] = {}  # the runs of one exported sweep arrive as one sweep
    for run in documents():
        name, original = run.run.name, run.original_id
        new_id, kept = import_parsed(store, run, sweeps)
        note = "" if kept else f" (its id {original} was taken)"
        console.print(f"imported run '{inert(name)}' as run {new_id}{note}", markup=False, highlight=False, soft_wrap=True)
    for old, new in sweeps.items():
        console.print(f"its sweep {old} is sweep {new} here: `xlbench sweep show {new}`", markup=False, highlight=False)
