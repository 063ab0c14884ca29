"""Data parallelism applied from outside the model: torchrun env vars -> process group -> DDP.

One command runs unchanged with or without ``torchrun``: without the ``RANK``/``WORLD_SIZE``
variables :func:`init_distributed` returns a single-process context and nothing is initialised.
Backend: nccl when CUDA is used, gloo on CPU.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistContext:
    """Where this process sits in the job."""

    rank: int = 0  # global rank
    local_rank: int = 0  # rank on this machine (selects the GPU)
    world_size: int = 1  # number of processes
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0 alone prints, writes metrics and saves checkpoints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1 and dist.is_available() and dist.is_initialized()

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_reduce_mean(self, values: torch.Tensor) -> torch.Tensor:
        """Mean over ranks of a float tensor (a copy; single process: the tensor itself)."""
        if not self.enabled:
            return values
        values = values.detach().clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values / self.world_size

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return values
        values = values.detach().clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values


DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")  # the values of --device


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto|cpu|cuda|cuda:N`` -> a ``torch.device`` (``auto``: CUDA when available; ``cuda`` under
    torchrun is ``cuda:LOCAL_RANK``). Raises ``ValueError`` naming ``--device`` when CUDA (or that
    index) is not available to this process."""
    if not DEVICE_PATTERN.match(name or ""):
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA device is available to this process (torch "
                         f"{torch.__version__}); use --device cpu or --device auto")
    index = int(name.split(":")[1]) if ":" in name else local_rank
    if index >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: this process sees {torch.cuda.device_count()} CUDA device(s)")
    return torch.device("cuda", index)


def init_distributed(device: str | None = None) -> DistContext:
    """Read torchrun's environment; initialise the process group when ``WORLD_SIZE`` > 1.

    ``device``: ``auto`` or None (CUDA when available), ``cpu``, ``cuda`` (``cuda:LOCAL_RANK`` under
    torchrun) or ``cuda:N`` (see :func:`resolve_device`).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    target = resolve_device(device or "auto", local_rank)
    use_cuda = target.type == "cuda"
    if use_cuda:
        torch.cuda.set_device(target)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world_size)
    return DistContext(rank=rank, local_rank=local_rank, world_size=world_size, device=target)


def wrap_model(model: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    """DistributedDataParallel around ``model`` when the job has several processes, else the model."""
    if not ctx.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


def default_threads(ctx: DistContext) -> int:
    """CPU threads per process: the cores shared among the processes on this machine, fewer when
    the machine is already busy (an intra-op thread that waits for a core stalls every parallel
    region: on a loaded 2-core machine 1 thread ran fnet-mini 3x faster than 2)."""
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", ctx.world_size))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    share = max(1, cores // max(1, local_world))
    try:
        idle = cores - os.getloadavg()[0]
    except (AttributeError, OSError):
        return share
    # rounded, not floored: an idle machine's load average is rarely 0 (0.1-0.4 on an idle 2-core
    # machine), and flooring 2 - 0.3 gave 1 thread there, half the machine
    return max(1, min(share, round(idle)))


def cleanup(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.destroy_process_group()
