"""How core work reports progress without knowing who listens (database, terminal, TUI).

Core code calls :meth:`Reporter.phase`, :meth:`Reporter.advance` and :meth:`Reporter.event`.
``advance`` is also the safe point where a listener may stop the work by raising
:class:`~xlbench.errors.Cancelled`.
"""

from __future__ import annotations


class Reporter:
    """A listener that ignores everything; subclass what you need."""

    def phase(self, name: str, total: int | None = None) -> None:
        """A new stage of work begins (``total`` units, if known)."""

    def advance(self, done: int, total: int | None = None) -> None:
        """``done`` units of the current stage are complete. May raise ``Cancelled``."""

    def event(self, message: str, level: str = "info", **data) -> None:
        """Something a person reading the run's log should know."""

    def status(self, **values: float) -> None:
        """The latest figures of the current stage (e.g. ``loss``), for progress lines."""

    def cancelled(self) -> bool:
        """Whether someone asked the work to stop (polled where raising is not an option)."""
        return False


class FanOut(Reporter):
    """Forward every call to several reporters, in order."""

    def __init__(self, *reporters: Reporter) -> None:
        self.reporters = [r for r in reporters if r is not None]

    def phase(self, name: str, total: int | None = None) -> None:
        for r in self.reporters:
            r.phase(name, total)

    def advance(self, done: int, total: int | None = None) -> None:
        for r in self.reporters:
            r.advance(done, total)

    def event(self, message: str, level: str = "info", **data) -> None:
        for r in self.reporters:
            r.event(message, level, **data)

    def status(self, **values: float) -> None:
        for r in self.reporters:
            r.status(**values)

    def cancelled(self) -> bool:
        return any(r.cancelled() for r in self.reporters)


class PlainReporter(Reporter):
    """Progress for logs with no terminal (a Slurm job's output, ``nohup``, a pipe): one plain line
    per phase start and event, and every ``every`` seconds a line with the phase, step/total,
    percentage, the latest figures (loss), the rate and the ETA. No colours, no redrawing."""

    @classmethod
    def from_env(cls) -> PlainReporter:
        """Every 30 s, or ``$XLBENCH_PROGRESS_SECONDS`` (a worker's log, a Slurm job's output)."""
        import os

        from xlbench.errors import ConfigError

        try:
            every = float(os.environ.get("XLBENCH_PROGRESS_SECONDS", "30"))
        except ValueError:
            raise ConfigError(f"XLBENCH_PROGRESS_SECONDS={os.environ['XLBENCH_PROGRESS_SECONDS']!r} "
                              "is not a number of seconds") from None
        return cls(every=every)

    def __init__(self, write=None, *, every: float = 30.0, clock=None) -> None:
        import sys
        import time

        self.write = write or (lambda line: print(line, file=sys.stdout, flush=True))
        self.every = every
        self.clock = clock or time.monotonic
        self.name: str | None = None
        self.total: int | None = None
        self.values: dict[str, float] = {}
        self.started = self.last_line = 0.0
        self.first_done: int | None = None

    def _stamp(self) -> str:
        import time

        return time.strftime("%H:%M:%S")

    def phase(self, name: str, total: int | None = None) -> None:
        self.name, self.total, self.values, self.first_done = name, total, {}, None
        self.started = self.last_line = self.clock()
        self.write(f"{self._stamp()} {name}" + (f" ({total} to do)" if total else ""))

    def advance(self, done: int, total: int | None = None) -> None:
        now = self.clock()
        self.total = total if total is not None else self.total
        if self.first_done is None:  # a resumed phase starts part-way: the rate counts from here
            self.first_done, self.started = done, now
        if now - self.last_line < self.every and not (self.total and done >= self.total):
            return
        self.last_line = now
        parts = [f"{self._stamp()} {self.name}: {done}/{self.total}" if self.total else f"{self._stamp()} {self.name}: {done}"]
        if self.total:
            parts[0] += f" ({100 * done / self.total:.0f} %)"
        parts += [f"{k} {v:.4g}" for k, v in self.values.items()]
        elapsed = now - self.started
        rate = (done - self.first_done) / elapsed if elapsed > 0 else 0.0
        if rate > 0:
            parts.append(f"{rate:.3g}/s")
            if self.total and done < self.total:
                left = int((self.total - done) / rate)
                parts.append(f"ETA {left // 3600}:{left % 3600 // 60:02d}:{left % 60:02d}")
        self.write(" · ".join(parts))

    def event(self, message: str, level: str = "info", **data) -> None:
        self.write(f"{self._stamp()} {'' if level == 'info' else level + ': '}{message}")

    def status(self, **values: float) -> None:
        self.values.update(values)
