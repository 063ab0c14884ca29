"""Run ``fnet`` under torchrun (2 CPU processes, gloo) from a test: one launcher for every DDP test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(args: list[str], timeout: int = 180) -> str:
    """``torchrun --nproc_per_node 2 -m fnet.cli.main ARGS`` with one thread per process; its stdout.
    Fails the test (killing torchrun and both workers) on a non-zero exit or a hang."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--nnodes=1",
               "--master_addr=127.0.0.1", f"--master_port={free_port()}", "-m", "fnet.cli.main", *args]
    process = subprocess.Popen(command, env={**env, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"the 2-process run hung: {err[-3000:]}")
    assert process.returncode == 0, err[-3000:]
    return out
