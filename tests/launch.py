"""Starting a selfimprove command as two CPU processes, as a user scales training out on one machine: torchrun on
loopback (gloo). accelerate's own multi-CPU launch needs MPI, so `accelerate launch --cpu --num_processes 2` runs
one process here."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def two_cpu_processes(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node 2 -m selfimprove.cli ARGS`; fails with the tail of its output."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(port), "-m", "selfimprove.cli", *args]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done
