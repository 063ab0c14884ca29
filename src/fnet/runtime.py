"""Process-level settings that fnet's own entry points apply (never at ``import fnet``)."""

from __future__ import annotations

import os


def configure_allocator() -> None:
    """Placeholder hook for allocator settings; see BENCHMARKS.md for why they matter."""
    # Filled in by the speed work (issue 7): glibc tunables must be set before the process
    # allocates, so the CLI re-execs itself once with them when they are absent.
    os.environ.setdefault("FNET_RUNTIME_CONFIGURED", "1")
