"""A run's life, in one package: submit → place → execute → finish.

- :mod:`xlbench.runs.launch` — **submit**: a validated config becomes a queued row
  (:func:`~xlbench.runs.launch.submit`), and hand-off of a row to a background worker process.
- :mod:`xlbench.runs.executors` — **place**: plugins that have queued rows' workers run somewhere
  (``local``: :mod:`xlbench.runs.queue`, N processes here; ``slurm``: a job array).
- :mod:`xlbench.runs.execute` — **execute**: :func:`~xlbench.runs.execute.execute_run`, the one entry
  that executes a claimed run whatever launched it (a terminal, a detached or queued worker, a Slurm
  job, a torchrun rank), with the one rank rule; :mod:`xlbench.runs.worker` claims the row,
  heart-beats, honours cancel and **finishes** it; :mod:`xlbench.runs.jobs` turns a stored config into
  the work (training, evaluation); :mod:`xlbench.runs.distributed` is torchrun.

Front ends (``xlbench.commands``, ``xlbench.tui``) submit and read; they execute only through
:func:`~xlbench.runs.execute.execute_run` (``lint-imports`` keeps it so).
"""
