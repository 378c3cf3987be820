"""The xlbench terminal app: runs, live curves, heatmaps, bias rankings, side-by-side compare.

It reads and writes the same database as the headless commands and never does model work in its
own process: new runs, resumes and re-evaluations become run rows executed by ``xlbench worker``
processes. Every database read happens in a worker thread, and so does every action (cancel,
resume, re-evaluate, export, remove: ``guard``); screens receive plain values.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.command import Hit, Hits, Provider

from xlbench.errors import XlbenchError


SCHEDULER_SECONDS = 10.0  # squeue (or the like) at most this often from the app

class XlbenchCommands(Provider):
    """Command palette: screens, and open any run by id or name."""

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        app = self.app
        for label, action in (("Runs", app.action_show_runs), ("Models", app.action_show_models),
                              ("Datasets", app.action_show_datasets), ("Sweeps", app.action_show_sweeps), ("New run", app.action_new_run), ("Help", app.action_help)):
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label), action, help=f"open the {label.lower()} screen")
        for run in app.known_runs:
            text = f"run {run.id}: {run.name}"
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), partial(app.open_run, run.id), help=f"{run.status} · {run.model}")


class XlbenchApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "xlbench"
    COMMANDS = App.COMMANDS | {XlbenchCommands}
    BINDINGS = [
        Binding("question_mark", "help", "help"),
        Binding("r", "show_runs", "runs"),
        Binding("m", "show_models", "models"),
        Binding("d", "show_datasets", "datasets"),
        Binding("w", "show_sweeps", "sweeps"),
        Binding("n", "new_run", "new run"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, db: str | None = None, *, plugins_dir: str | None = None, poll_seconds: float = 1.0,
                 clock: Callable[[], datetime] | None = None, permutations: int = 10_000,
                 initial_run: int | None = None) -> None:
        super().__init__()
        self.initial_run = initial_run
        self.db, self.plugins_dir, self.poll_seconds = db, plugins_dir, poll_seconds
        self.permutations = permutations
        self._clock = clock
        self._store = None
        self._reaped_at = float("-inf")
        # a sweep's study (curves, tests) per set of finished runs: reopening a sweep is instant
        self.sweep_studies: dict[tuple[int, tuple[int, ...]], object] = {}

    @property
    def store(self):
        if self._store is None:
            from xlbench.store.store import Store

            self._store = Store(self.db)
        return self._store

    def reap(self) -> None:
        """Mark runs whose worker is gone as lost before a screen reads them: by heartbeat on every
        poll, and by asking the scheduler about runs it placed at most every SCHEDULER_SECONDS."""
        import time

        now = time.monotonic()
        if now - self._reaped_at < SCHEDULER_SECONDS:
            self.store.reap_lost()
            return
        from xlbench.runs.executors import reap_all

        self._reaped_at = now
        reap_all(self.store)

    @property
    def known_runs(self):
        from xlbench.tui.screens.runs import RunsScreen

        screens = [s for s in self.screen_stack if isinstance(s, RunsScreen)]
        return screens[0].summaries if screens else []

    def now(self) -> datetime:
        from xlbench.store.models import utcnow

        return self._clock() if self._clock else utcnow()

    def on_mount(self) -> None:
        if self.initial_run is not None:
            self.open_run(self.initial_run)

    def get_default_screen(self):
        from xlbench.tui.screens.runs import RunsScreen

        return RunsScreen()

    # --- navigation -----------------------------------------------------------------

    def _switch_to(self, cls, *args) -> None:
        for screen in self.screen_stack:
            if type(screen) is cls and not args:
                while self.screen is not screen:
                    self.pop_screen()
                return
        self.push_screen(cls(*args))

    def action_show_runs(self) -> None:
        from xlbench.tui.screens.runs import RunsScreen

        self._switch_to(RunsScreen)

    def action_show_models(self) -> None:
        from xlbench.tui.screens.catalog import ModelsScreen

        self._switch_to(ModelsScreen)

    def action_show_datasets(self) -> None:
        from xlbench.tui.screens.catalog import DatasetsScreen

        self._switch_to(DatasetsScreen)

    def action_show_sweeps(self) -> None:
        from xlbench.tui.screens.sweep import SweepsScreen

        self._switch_to(SweepsScreen)

    def action_new_run(self) -> None:
        from xlbench.tui.screens.new_run import NewRunScreen

        self._switch_to(NewRunScreen)

    def action_help(self) -> None:
        from xlbench.tui.screens.dialogs import HelpScreen

        self.push_screen(HelpScreen())

    def open_run(self, run_id: int, replace: bool = False) -> None:
        from xlbench.tui.screens.run import RunScreen

        if replace:
            self.pop_screen()
        self.push_screen(RunScreen(run_id))

    def open_sweep(self, sweep_id: int) -> None:
        from xlbench.tui.screens.sweep import SweepScreen

        self.push_screen(SweepScreen(sweep_id))

    def open_compare(self, run_ids: list[int]) -> None:
        from xlbench.tui.screens.compare import CompareScreen

        self.push_screen(CompareScreen(run_ids))

    # --- doing things (always through rows and worker processes) ------------------------

    def show_error(self, message: str) -> None:
        from xlbench.tui.screens.dialogs import ErrorDialog

        self.push_screen(ErrorDialog(message))

    def guard(self, action: Callable[[], object], success: str | None, *, busy: str | None = None,
              then: Callable[[], None] | None = None) -> None:
        """Run an action that touches the database, disk, a subprocess or the scheduler in a worker
        thread, so the app keeps answering keys: ``busy`` is said at once, then the outcome — the
        action's own message (a returned string), ``success``, or its one-line error as a dialog —
        and ``then`` runs on the event loop after a success (e.g. a list refreshed)."""
        if busy:  # names come from the database: plain text, never markup
            self.notify(busy, timeout=2, markup=False)
        self._guarded(action, success, then)

    @work(thread=True, group="actions")
    def _guarded(self, action: Callable[[], object], success: str | None, then: Callable[[], None] | None) -> None:
        from xlbench.errors import one_line

        try:
            said = action()
        except XlbenchError as exc:
            self.call_from_thread(self.show_error, str(exc))
            return
        except Exception as exc:  # noqa: BLE001  an unexpected failure is a dialog too, never a dead app
            self.call_from_thread(self.show_error, one_line(exc))
            return
        message = said if isinstance(said, str) else success
        if message:
            self.call_from_thread(lambda: self.notify(message, markup=False))
        if then is not None:
            self.call_from_thread(then)

    def run_cli(self, *args: str, timeout: float = 600) -> str:
        """Run ``xlbench ARGS`` in a child process on this app's database (passed in the
        environment, never in argv) and return its output; a failure raises its one-line error. For work that loads models or data: call it from a worker thread."""
        import os
        import subprocess
        import sys

        env = dict(os.environ, XLBENCH_DB=self.store.url)
        if self.plugins_dir:
            env["XLBENCH_PLUGINS_DIR"] = str(self.plugins_dir)
        res = subprocess.run([sys.executable, "-m", "xlbench", *args], capture_output=True, text=True, env=env,
                             timeout=timeout, stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            lines = res.stderr.strip().splitlines()
            raise XlbenchError(lines[-1].removeprefix("xlbench: error: ") if lines else
                               f"xlbench {' '.join(args)} failed (exit {res.returncode})")
        return res.stdout.strip()

    def start_worker(self, run_id: int) -> int:
        from xlbench.runs.launch import start

        return start(self.store, run_id)[0]

    def reevaluate(self, run_id: int) -> str:
        """Queue a fresh evaluation of the run's model on the run's evaluation sets (from a worker
        thread, through ``guard``); returns what to tell the user."""
        from xlbench.runs.launch import queue_reevaluation

        new = queue_reevaluation(self.store, run_id)
        self.start_worker(new)
        return f"run {new} re-evaluates run {run_id} in a worker process"

    def export_runs(self, run_ids: list[int], path: str) -> None:
        from xlbench.store.transfer import write_export

        write_export(self.store, run_ids, path)


def run_app(db: str | None = None, plugins_dir: str | None = None, *, open_run: int | None = None) -> None:
    XlbenchApp(db, plugins_dir=plugins_dir, initial_run=open_run).run()
