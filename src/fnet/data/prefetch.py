"""Batches prepared ahead of the step that needs them, and copied to the GPU before it asks.

:class:`Prefetcher` wraps any iterable of batches (a tensor, or dicts, lists and tuples of them;
other values pass through) and runs it in one background thread, ``depth`` batches ahead:

* on CUDA, each batch is copied to page-locked (pinned) memory and then to the device with
  non-blocking copies on a side stream; the consumer's stream waits on an event recorded after
  the copy (not on the whole side stream), and every device tensor is marked as used by the
  consumer's stream (``record_stream``), so the caching allocator never hands its memory to the
  next copy while a kernel still reads it;
* the order of the source is kept (one thread consumes it; a bounded queue carries the results);
* an exception raised by the source (or by a copy) is raised again in the consumer, at the
  position of the batch that failed, after the batches before it;
* ``close()`` (also on ``with`` exit, on garbage collection, and when iteration ends) stops the
  thread and closes the source, whatever state either is in.

:func:`prefetch_steps` is the trainer's form: ``fn(step)`` for ``step`` in ``start..stop-1``, with
``workers`` threads computing the next steps in parallel (their results still come in step order).
With no worker and no CUDA device it runs inline, exactly as a plain loop would.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

__all__ = ["Prefetcher", "prefetch_steps", "map_tensors"]

_DONE = object()  # end of the source


class _Failure:
    """An exception raised in the background thread, carried to the consumer."""

    def __init__(self, error: BaseException):
        self.error = error


def map_tensors(batch: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``fn`` applied to every tensor in a nest of dicts, lists and tuples; other values are kept."""
    if isinstance(batch, torch.Tensor):
        return fn(batch)
    if isinstance(batch, dict):
        return type(batch)((k, map_tensors(v, fn)) for k, v in batch.items())
    if isinstance(batch, (list, tuple)):
        mapped = [map_tensors(v, fn) for v in batch]
        return type(batch)(*mapped) if hasattr(batch, "_fields") else type(batch)(mapped)
    return batch


class _Mover:
    """Pins and copies one batch (runs in the background thread)."""

    def __init__(self, device: torch.device | None, pin_memory: bool):
        self.device, self.pin_memory = device, pin_memory
        self.cuda = device is not None and device.type == "cuda"
        self.stream = torch.cuda.Stream(device) if self.cuda else None

    def __call__(self, batch: Any) -> tuple[Any, Any]:
        """(batch on the device, the CUDA event that marks its copy done, or None)."""
        if self.pin_memory:
            batch = map_tensors(batch, lambda t: t if t.device.type != "cpu" or t.is_pinned() else t.pin_memory())
        if self.device is None:
            return batch, None
        if not self.cuda:
            return map_tensors(batch, lambda t: t.to(self.device)), None
        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            moved = map_tensors(batch, lambda t: t.to(self.device, non_blocking=True))
            event = torch.cuda.Event()
            event.record(self.stream)
        return moved, event


def _put(out: queue.Queue, stop: threading.Event, item: Any) -> bool:
    """Put ``item`` unless stopped; False when the consumer has gone."""
    while not stop.is_set():
        try:
            out.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def _produce(source: Iterator[Any], move: _Mover, out: queue.Queue, stop: threading.Event) -> None:
    """The background thread. It holds no reference to the Prefetcher, so an abandoned one is collected
    (and its ``__del__`` stops this thread)."""
    try:
        for batch in source:
            if stop.is_set() or not _put(out, stop, move(batch)):
                return
        _put(out, stop, _DONE)
    except BaseException as error:  # carried to the consumer, raised there
        _put(out, stop, _Failure(error))
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


class Prefetcher(Iterator[Any]):
    """Iterate ``source`` ``depth`` batches ahead in a background thread, moving each to ``device``.

    ``device``: where batches go (None: left where they are). ``pin_memory``: page-lock host tensors
    before the copy (default: when ``device`` is CUDA). Use as an iterator, ideally in ``with``.
    """

    def __init__(self, source: Iterable[Any], device: torch.device | str | None = None, depth: int = 2,
                 pin_memory: bool | None = None):
        if depth < 1:
            raise ValueError(f"Prefetcher depth must be >= 1, got {depth}")
        device = None if device is None else torch.device(device)
        if device is not None and device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        self.device = device
        cuda = device is not None and device.type == "cuda"
        self._move = _Mover(device, cuda if pin_memory is None else pin_memory)
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=_produce, args=(iter(source), self._move, self._queue, self._stop),
                                        name="fnet-prefetch", daemon=True)
        self._thread.start()

    def __iter__(self) -> "Prefetcher":
        return self

    def __next__(self) -> Any:
        if self._finished:
            raise StopIteration
        while True:
            try:
                item = self._queue.get(timeout=0.1)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    self._finished = True
                    raise StopIteration from None
        if item is _DONE:
            self.close()
            raise StopIteration
        if isinstance(item, _Failure):
            self.close()
            raise item.error
        batch, event = item
        if event is not None:
            stream = torch.cuda.current_stream(self.device)
            stream.wait_event(event)  # the copy is done before anything this stream runs next
            map_tensors(batch, lambda t: t.record_stream(stream) or t)
        return batch

    def close(self) -> None:
        """Stop the thread and close the source; safe to call twice, from ``with`` or ``__del__``."""
        self._finished = True
        self._stop.set()
        while True:  # unblock a put waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()

    def __enter__(self) -> "Prefetcher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if hasattr(self, "_thread"):
            self.close()


class _Inline(Iterator[Any]):
    """prefetch_steps without workers or CUDA: fn(step) computed when asked, as a plain loop would."""

    def __init__(self, fn: Callable[[int], Any], start: int, stop: int):
        self._steps = iter(range(start, stop))
        self._fn = fn

    def __next__(self) -> Any:
        return self._fn(next(self._steps))

    def close(self) -> None:
        self._steps = iter(())

    def __enter__(self) -> "_Inline":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _steps_in_order(fn: Callable[[int], Any], start: int, stop: int, workers: int) -> Iterator[Any]:
    """fn(step) for each step, ``workers`` of them computed at once, yielded in step order."""
    if workers <= 1:
        for step in range(start, stop):
            yield fn(step)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fnet-steps")
    pending: list[Future] = []
    try:
        steps = iter(range(start, stop))
        for step in steps:
            pending.append(pool.submit(fn, step))
            if len(pending) >= workers:
                break
        while pending:
            result = pending.pop(0).result()
            step = next(steps, None)
            if step is not None:
                pending.append(pool.submit(fn, step))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def prefetch_steps(fn: Callable[[int], Any], start: int, stop: int, device: torch.device | str | None = None,
                   workers: int = 0, depth: int = 2) -> Iterator[Any]:
    """The batches ``fn(start) .. fn(stop - 1)``, in order, each on ``device``; close() when done.

    ``workers`` threads compute steps ahead; on a CUDA device a background thread is used even with
    none (the GPU must not wait on Python), and batches arrive pinned-and-copied (:class:`Prefetcher`).
    With no worker and no CUDA device the steps are computed inline when asked.
    """
    cuda = device is not None and torch.device(device).type == "cuda"
    if workers <= 0 and not cuda:
        return _Inline(fn, start, stop)
    return Prefetcher(_steps_in_order(fn, start, stop, workers), device, depth=depth)
