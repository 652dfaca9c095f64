"""Which process of a multi-process launch this is, for the stages that only one process may do.

Under `accelerate launch` (GPUs; configs/accelerate/) or `torchrun --nproc_per_node N` (CPU processes over gloo:
accelerate's own multi-CPU launch needs MPI) every process runs the whole command; training is shared (the
trainers average gradients), but sampling into the run store, saving the merged checkpoint, exporting and
evaluating are done once, by the main process, while the others wait for it. Run plainly, there is one process
and it is the main one: these are no-ops.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def _state() -> Any:
    """accelerate's process state. On a machine without CUDA it is asked for CPU processes (gloo), as the trainers
    ask with `use_cpu`: without it, processes started by torchrun would each think they are alone."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def processes() -> int:
    """How many processes share this training (1 outside `accelerate launch`)."""
    return _state().num_processes


def is_main() -> bool:
    return _state().is_main_process


def wait_for_everyone() -> None:
    """A barrier across the processes (nothing when there is one)."""
    state = _state()
    if state.num_processes > 1:
        state.wait_for_everyone()


def wait_for_file(path: Path, poll: float = 1.0) -> None:
    """Wait until the main process has written `path` (atomically). Used instead of a barrier where the main
    process works for long (sampling, evaluating): a collective would time out (torch.distributed's default is
    30 minutes); a file does not. A main process that died leaves the others waiting: `accelerate launch` stops
    them all when one process fails."""
    while not path.exists():
        time.sleep(poll)
