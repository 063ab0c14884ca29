"""``fnet`` in child processes from a test: under torchrun (2 CPU processes, gloo), and killed with
SIGKILL once it has written a checkpoint (the kill -9 resume tests). One launcher for each."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

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


def kill_at_checkpoint(args: list[str], run_dir: Path, step: int, timeout: float = 90, threads: int | None = None) -> int:
    """Run ``fnet ARGS`` in a child process and ``kill -9`` it once ``run_dir`` holds a checkpoint of step
    ``step`` or later; returns the newest checkpoint's step. Fails the test when the run ends first."""
    from fnet.training import resume

    env = {**os.environ, "PYTHONUNBUFFERED": "1", **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    process = subprocess.Popen([sys.executable, "-m", "fnet.cli.main", *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and process.poll() is None:
            done = resume.list_checkpoints(run_dir) if run_dir.is_dir() else []
            if done and done[-1][0] >= step:
                break
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    if process.returncode != -signal.SIGKILL:
        pytest.fail(f"the run ended before it could be killed (rc {process.returncode}): {process.stderr.read()[-2000:]}")
    return resume.list_checkpoints(run_dir)[-1][0]
