"""Process-level settings that fnet's own entry points apply (never at ``import fnet``).

Why an allocator setting: PyTorch's CPU tensors come from glibc ``malloc``. A tensor above glibc's
mmap threshold (128 KiB, adapting up to 32 MiB) gets fresh pages from the kernel on every
allocation and gives them back on ``free``; the next forward pass page-faults and zero-fills them
again. An FNet forward allocates many such tensors (the (b, n, f) feed-forward activations are tens
of MiB), so this costs seconds of system time per iteration (75,000 faults per small/512 batch of
16 on the development machine). Raising the mmap and trim thresholds keeps freed memory in the
heap for reuse: page faults drop to ~0 (BENCHMARKS.md, "Allocator"). ``mallopt`` works at run time.

Transparent huge pages for the heap (``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``) add fewer TLB misses
on top (+20% tokens/s measured), but glibc reads tunables only at process start, so the ``fnet``
command re-executes itself once with the tunable added (``reexec_argv``); a marker variable stops
a second re-exec, and the re-executed process then restores the user's ``GLIBC_TUNABLES``, so its
child processes do not inherit fnet's setting. Library users who want it set the variable themselves.

The price: the process keeps up to ``limit`` bytes of freed heap instead of returning them to the
kernel. Set ``FNET_ALLOCATOR=default`` to skip both settings.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import sys
from typing import Iterator

# glibc's mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

DEFAULT_LIMIT = 1 << 30  # bytes: allocations below this come from the reusable heap
HUGETLB_TUNABLE = "glibc.malloc.hugetlb=1"
_REEXEC_MARKER = "FNET_ALLOCATOR_REEXEC"  # set in the re-executed process: never re-exec twice
_ORIGINAL = "FNET_ALLOCATOR_ORIGINAL_TUNABLES"  # the user's GLIBC_TUNABLES, restored after the re-exec

_applied: dict[str, object] | None = None


def configure_allocator(limit: int = DEFAULT_LIMIT, reexec_argv: list[str] | None = None) -> dict[str, object]:
    """Keep freed tensor memory in the process for reuse (glibc ``mallopt``); idempotent.

    ``reexec_argv``: the command line of a console entry point (``sys.argv``); when given and the
    huge-page tunable is missing, the process is replaced (``os.execve``) by
    ``python -m fnet.cli.main argv[1:]`` with it set. Only entry points pass it, before any work.

    Returns what was done: ``{"allocator": "glibc-mallopt", "limit": bytes, "hugetlb": bool}``, or
    ``{"allocator": "default", "reason": ...}`` where it does not apply (not Linux/glibc, or
    ``FNET_ALLOCATOR=default``). Call it early, before large tensors are allocated.
    """
    global _applied
    if _applied is not None:
        return _applied
    if os.environ.get("FNET_ALLOCATOR", "").lower() == "default":
        _applied = {"allocator": "default", "reason": "FNET_ALLOCATOR=default"}
        return _applied
    libc = _glibc()
    if libc is None:
        _applied = {"allocator": "default", "reason": f"no glibc on {sys.platform}"}
        return _applied
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if os.environ.pop(_REEXEC_MARKER, None):
        # glibc has read the tunable; hide it again so that child processes (workers, benchmarks
        # that measure memory) start with the user's environment, not fnet's
        original = os.environ.pop(_ORIGINAL, "")
        if original:
            os.environ["GLIBC_TUNABLES"] = original
        else:
            os.environ.pop("GLIBC_TUNABLES", None)
    elif reexec_argv is not None and sys.executable and "glibc.malloc.hugetlb" not in tunables:
        env = {**os.environ, "GLIBC_TUNABLES": with_hugetlb(tunables), _REEXEC_MARKER: "1", _ORIGINAL: tunables}
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, "-m", "fnet.cli.main", *reexec_argv[1:]], env)
    limit = int(min(limit, 2**31 - 1))  # mallopt takes a C int
    ok = libc.mallopt(_M_MMAP_THRESHOLD, limit) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, limit) == 1
    _applied = {"allocator": "glibc-mallopt", "limit": limit, "hugetlb": "glibc.malloc.hugetlb=1" in tunables} \
        if ok else {"allocator": "default", "reason": "mallopt refused the thresholds"}
    return _applied


def with_hugetlb(tunables: str) -> str:
    """``GLIBC_TUNABLES`` with the huge-page tunable added (the variable is ``a=1:b=2``)."""
    parts = [p for p in tunables.split(":") if p and not p.startswith("glibc.malloc.hugetlb=")]
    return ":".join([*parts, HUGETLB_TUNABLE])


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  (musl has no such symbol: its malloc has no mallopt knobs)
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc


@contextlib.contextmanager
def log_level(name: str, level: int) -> Iterator[logging.Logger]:
    """Set logger ``name`` to ``level`` for the duration of the block, then restore it."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(level)
    try:
        yield logger
    finally:
        logger.setLevel(previous)
