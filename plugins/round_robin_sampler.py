"""Example sampler plugin: cross-lingual batches that visit every direction in turn.

Each batch uses one (query language → passage language) direction, and directions are taken
round-robin in a fixed order, so every direction gets the same number of batches regardless of
data size. It shows the sampler contract without xlbench's helper classes:

* constructed as ``Cls(corpus, batch_size=..., seed=..., **options)``;
* iterating yields batches forever, each a list of ``(group_id, query_lang, passage_lang)``;
* no group twice in a batch, only languages a group has;
* ``state()`` / ``restore(state)`` for resuming; ``options`` declares what it accepts.
"""

import numpy as np

from xlbench.core.samplers.base import Option, validate_options
from xlbench.errors import ConfigError


class RoundRobinDirections:
    kind = "sampler"
    name = "round-robin"
    options = {"include_mono": Option(bool, False, "also cycle through X→X directions")}

    def __init__(self, corpus, *, batch_size, seed=0, **options):
        opts = validate_options(type(self), options)
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.group_ids = list(corpus.group_ids)
        has = np.asarray(corpus.has, dtype=bool)
        langs = list(corpus.languages)
        self.directions = []
        for x, qx in enumerate(langs):
            for y, py in enumerate(langs):
                if x == y and not opts["include_mono"]:
                    continue
                groups = np.nonzero(has[:, x] & has[:, y])[0]
                if len(groups) >= self.batch_size:
                    self.directions.append((qx, py, groups))
        if not self.directions:
            raise ConfigError(f"round-robin: no direction has {self.batch_size} shared items")
        self.rng = np.random.default_rng(self.seed)
        self.batches = 0

    def __iter__(self):
        while True:
            q, p, groups = self.directions[self.batches % len(self.directions)]
            picked = groups[self.rng.choice(len(groups), size=self.batch_size, replace=False)]
            self.batches += 1
            yield [(self.group_ids[g], q, p) for g in picked]

    def state(self):
        return {"batches": self.batches, "rng": self.rng.bit_generator.state}

    def restore(self, state):
        self.batches = int(state["batches"])
        self.rng.bit_generator.state = state["rng"]
