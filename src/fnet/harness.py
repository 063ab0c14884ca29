"""The run harness: where every command that runs a model gets its device, precision, threads,
process group and output folder. One module, so a command supplies only its own build step.

* :class:`DeviceOptions` (``--device``, ``--precision``, ``--threads``) is inherited by the config
  dataclass of every command that runs a model, so each default and help text is written once.
* :func:`resolve_device` turns ``auto|cpu|cuda|cuda:N`` into a ``torch.device`` (``auto``: CUDA when
  available), refusing an unavailable GPU before any work.
* :func:`resolve_precision` and :func:`autocast`: ``fp32`` (no autocast), ``bf16`` or ``fp16``
  autocast; the default is bf16 on CUDA and fp32 on the CPU, so CPU runs are unchanged. The Fourier
  transform keeps its own float32 island under autocast (:mod:`fnet.fourier`). ``--bf16`` (the older
  flag of pretrain and finetune) is an alias of ``--precision bf16``.
* :func:`start` opens a run: torchrun's process group when launched under it (DDP for training,
  sharded inference otherwise), the thread count (default: this machine's idle cores shared among
  its processes), and the claimed output folder (rank 0 claims and locks it after the other ranks
  have looked at it as it was). It yields a :class:`Run`.
* :meth:`Run.to_device` is the one place batches move to the device (the trainer and the
  inference runners call it); :meth:`Run.shard` and :meth:`Run.gather` split rows over ranks and
  put the outputs back together in input order on every rank.

torch is imported inside the functions: config dataclasses inherit :class:`DeviceOptions`, and
building ``fnet --help`` must not import torch.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Sequence

from fnet.options import option

if TYPE_CHECKING:
    import torch

    from fnet.run_folder import Claim
    from fnet.training.distributed import DistContext

__all__ = ["DeviceOptions", "PRECISIONS", "CPU_BF16_HELP", "TRAINING_PRECISIONS", "QUANTIZE_CHOICES", "QUANTIZE_HELP",
           "Run", "start", "resolve_device", "resolve_precision", "autocast", "to_device", "check_device",
           "check_quantize_device", "is_main_process", "set_threads", "cpu_has_fast_bf16"]

PRECISIONS = ("fp32", "bf16", "fp16")
QUANTIZE_CHOICES = ("int8",)
# the --quantize help of every command that runs the model in PyTorch (evaluate, predict, embed)
QUANTIZE_HELP = ("int8: int8 weights for the encoder's Linear layers (CPU; faster, a small accuracy change, "
                 "see BENCHMARKS.md)")
# the --precision help of a command with DeviceOptions.cpu_bf16 set
CPU_BF16_HELP = ("fp32, bf16 or fp16 autocast (default: bf16 on CUDA and on a CPU with hardware bfloat16, "
                 "AVX512-BF16 or AMX, where it trains ~1.6x as fast; fp32 on other CPUs)")
TRAINING_PRECISIONS = ("fp32", "bf16")  # fp16 training would need loss scaling; bf16 does not


@dataclass
class DeviceOptions:
    """Where and how a command runs its model (inherited by every such command's config)."""

    # a command whose training pays for bf16 on a CPU that computes it in hardware sets this (and says so
    # in its --precision help with CPU_BF16_HELP); the others stay float32 on every CPU
    cpu_bf16: ClassVar[bool] = False

    device: str = option("auto", "auto (CUDA when available), cpu, cuda or cuda:N")
    precision: str | None = option(None, "fp32, bf16 or fp16 autocast (default: bf16 on CUDA, fp32 on the CPU; the "
                                         "Fourier transform stays float32)", choices=PRECISIONS)
    threads: int | None = option(None, "torch CPU threads per process (default: the idle cores of this machine, "
                                       "shared among its processes)")

    def check_device_options(self, training: bool = False) -> None:
        """Raise ``ValueError`` naming the flag when ``--device``/``--precision``/``--threads`` are malformed."""
        from fnet.training.distributed import DEVICE_PATTERN

        if not isinstance(self.device, str) or not DEVICE_PATTERN.match(self.device):
            raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        allowed = TRAINING_PRECISIONS if training else PRECISIONS
        if self.precision is not None and self.precision not in allowed:
            extra = " (fp16 is for inference: it would need loss scaling to train; use bf16)" \
                if self.precision == "fp16" and training else ""
            raise ValueError(f"--precision must be one of {', '.join(allowed)}, got {self.precision!r}{extra}")
        if getattr(self, "bf16", False) and self.precision not in (None, "bf16"):
            raise ValueError(f"--bf16 is --precision bf16; it contradicts --precision {self.precision}: give one")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {self.threads}")

    def wanted_precision(self) -> str | None:
        """``--precision``, or ``bf16`` when the older ``--bf16`` flag is set, else None (by device)."""
        return self.precision or ("bf16" if getattr(self, "bf16", False) else None)


def resolve_device(name: str = "auto", local_rank: int = 0) -> "torch.device":
    """``auto|cpu|cuda|cuda:N`` -> a ``torch.device``; see :func:`fnet.training.distributed.resolve_device`."""
    from fnet.training.distributed import resolve_device as resolve

    return resolve(name, local_rank)


def resolve_precision(precision: str | None, device: "torch.device", cpu_bf16: bool = False) -> str:
    """The precision to run in: the one asked for, else bf16 on CUDA (when the GPU supports it) and fp32
    on the CPU (so CPU results stay as they were), except bf16 for a command with ``cpu_bf16`` on a CPU
    with hardware bfloat16 (:func:`cpu_has_fast_bf16`)."""
    if precision is not None:
        return precision
    if device.type == "cuda":
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_bf16 and device.type == "cpu" and cpu_has_fast_bf16() else "fp32"


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX tiles): there bf16 autocast
    trains a BERT-sized model ~1.6x as fast as float32 (measured in benchmarks/results/demo); elsewhere
    bf16 is emulated and slower than float32."""
    import torch

    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # a torch without these probes: assume emulated
        return False


def autocast(device: "torch.device", precision: str) -> contextlib.AbstractContextManager:
    """The autocast context of ``precision`` on ``device`` (fp32: none)."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return torch.autocast(device_type=device.type, dtype=dtype)


def to_device(batch: dict[str, "torch.Tensor"], device: "torch.device") -> dict[str, "torch.Tensor"]:
    """The one place batches move to the device (non-blocking from pinned memory, e.g. a prefetcher's)."""
    if device.type == "cpu":
        return batch
    return {k: v.to(device, non_blocking=True) if hasattr(v, "to") else v for k, v in batch.items()}


@dataclass
class Run:
    """One process's view of a started run."""

    dist: "DistContext"  # rank, world size, device, collectives
    precision: str  # fp32 | bf16 | fp16
    out: "Claim | None" = None  # the claimed output folder (ranks > 0: where rank 0 writes; nothing touched)

    @property
    def device(self) -> "torch.device":
        return self.dist.device

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.device, self.precision)

    def to_device(self, batch: dict[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
        return to_device(batch, self.device)

    def shard(self, n: int) -> range:
        """The rows ``0..n-1`` this rank handles: a contiguous slice, ranks in order (all rows on one process)."""
        per = -(-n // self.dist.world_size)
        start = min(n, self.dist.rank * per)
        return range(start, min(n, start + per))

    def gather(self, part: Any) -> list[Any]:
        """Every rank's ``part`` (any picklable object), in rank order, on every rank."""
        if not self.dist.enabled:
            return [part]
        import torch.distributed as dist

        parts: list[Any] = [None] * self.dist.world_size
        dist.all_gather_object(parts, part)
        return parts


def is_main_process() -> bool:
    """True on torchrun's rank 0 and outside torchrun (the process that prints and writes)."""
    import os

    return int(os.environ.get("RANK", "0")) == 0


def set_threads(threads: int | None, dist: "DistContext") -> int:
    """Set torch's CPU threads: ``threads``, or the idle cores shared among this machine's processes."""
    import torch

    from fnet.training.distributed import default_threads

    n = threads or default_threads(dist)
    torch.set_num_threads(n)
    return n


def check_quantize_device(quantize: str | None, device: "torch.device") -> None:
    """int8 weights run on the CPU only (oneDNN / fbgemm kernels)."""
    if quantize and device.type != "cpu":
        raise ValueError(f"--quantize {quantize} runs on the CPU only; pass --device cpu, or drop --quantize to run "
                         f"on {device}")


def check_device(options: DeviceOptions, training: bool = False) -> None:
    """Every device check that needs no work: the flags' form and, for cuda, that CUDA is there."""
    options.check_device_options(training=training)
    if options.device.startswith("cuda"):
        resolve_device(options.device)


@contextlib.contextmanager
def start(options: DeviceOptions, *, command: str, output: str | None = None, overwrite: bool = False,
          resume: bool = False, keep: Sequence[str] = (), inputs: dict[str, Any] | None = None,
          training: bool = False) -> Iterator[Run]:
    """Open a run of ``fnet {command}``: process group (under torchrun), device, precision, threads,
    and (with ``output``) the claimed output folder; closes them all when the block ends.

    ``keep``: names inside ``output`` that make a failed run's folder worth keeping (checkpoints).
    """
    from fnet import run_folder
    from fnet.training.distributed import cleanup, init_distributed

    import torch.distributed

    check_device(options, training=training)
    # a process group the caller opened (a library call inside their torchrun script) stays theirs
    owned = not (torch.distributed.is_available() and torch.distributed.is_initialized())
    dist = init_distributed(options.device)
    with contextlib.ExitStack() as stack:
        if owned:
            stack.callback(cleanup, dist)
        set_threads(options.threads, dist)
        run = Run(dist, resolve_precision(options.wanted_precision(), dist.device, type(options).cpu_bf16))
        if output is not None:
            claim = functools.partial(run_folder.claim, output, command, overwrite=overwrite, resume=resume,
                                      keep=tuple(keep), inputs=inputs)
            if not dist.is_main:  # rank 0 claims (and locks) once the others have looked at it as it was
                run.out = stack.enter_context(claim(main=False))
            dist.barrier()
            if dist.is_main:
                run.out = stack.enter_context(claim())
        yield run
