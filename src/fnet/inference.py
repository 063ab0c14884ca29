"""Running a model over many inputs of mixed length: length buckets, order restored, progress.

Real text mixes short and long inputs. Padding every batch to its longest member wastes the work
of the pads, so inputs are sorted by length and cut into batches by a token budget (rows x longest
row), and results are put back in input order by the caller with the indices each batch carries.

Every inference path (`fnet predict`, `fnet evaluate`, `fnet embed`, ``model.encode``) batches
through :func:`length_batches` and reports through :class:`Throughput`.
"""

from __future__ import annotations

import sys
import time
from typing import Iterator, Sequence

import numpy as np

__all__ = ["length_batches", "Throughput"]


def length_batches(lengths: Sequence[int] | np.ndarray, max_tokens: int = 16384, max_rows: int = 256
                   ) -> list[np.ndarray]:
    """Input indices grouped into batches of similar length, longest batch first.

    Each batch's padded size (rows x its longest length) stays within ``max_tokens`` and it has at
    most ``max_rows`` rows; an input longer than the budget gets a batch of its own. The sort is
    stable, so equal lengths keep their input order and the result is deterministic. Every index
    appears in exactly one batch.
    """
    if max_tokens < 1 or max_rows < 1:
        raise ValueError(f"max_tokens and max_rows must be >= 1, got {max_tokens} and {max_rows}")
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")  # longest first: the first batch shows peak memory at once
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)
        rows = max(1, min(max_rows, max_tokens // longest))
        batches.append(order[start:start + rows])
        start += rows
    return batches


class Throughput:
    """A progress bar in texts/s and tokens/s (tqdm on stderr), or silent with ``enabled=False``."""

    def __init__(self, total_texts: int, total_tokens: int, enabled: bool = True, desc: str = "inference"):
        self.texts = self.tokens = 0
        self.total_tokens = total_tokens
        self.started = time.perf_counter()
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total_texts, desc=desc, unit="text", file=sys.stderr, dynamic_ncols=True)

    def update(self, texts: int, tokens: int) -> None:
        self.texts += texts
        self.tokens += tokens
        if self.bar is not None:
            self.bar.update(texts)
            self.bar.set_postfix_str(f"{self.tokens / self.elapsed:,.0f} tok/s", refresh=False)

    @property
    def elapsed(self) -> float:
        return max(time.perf_counter() - self.started, 1e-9)

    def close(self) -> dict[str, float]:
        """Close the bar; returns texts, tokens, seconds and both rates."""
        if self.bar is not None:
            self.bar.close()
        seconds = self.elapsed
        return {"texts": self.texts, "tokens": self.tokens, "seconds": round(seconds, 3),
                "texts_per_s": self.texts / seconds, "tokens_per_s": self.tokens / seconds}

    def __enter__(self) -> "Throughput":
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
