"""``torchrun`` support: one process per device, rank 0 owns the run row.

Under torchrun (``WORLD_SIZE`` > 1) every rank validates the config and loads the data itself;
rank 0 creates the run and broadcasts its id; all ranks train (DDP, embeddings all-gathered);
only rank 0 writes to the database.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch
        import torch.distributed as dist

        local = int(os.environ.get("LOCAL_RANK", "0"))
        if not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(local)
            dist.init_process_group(backend=backend)
        return cls(dist.get_rank(), dist.get_world_size(), local)

    def device(self) -> str | None:
        import torch

        if self.world > 1 and torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return None

    def broadcast_run_id(self, create: Callable[[], int]) -> int:
        if self.world == 1:
            return create()
        import torch.distributed as dist

        box = [create() if self.rank == 0 else None]
        dist.broadcast_object_list(box, src=0)
        return int(box[0])

    def barrier(self) -> None:
        """Wait until every rank gets here (nothing to wait for in one process)."""
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()
