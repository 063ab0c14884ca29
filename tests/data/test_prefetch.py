"""The prefetcher: batches ahead in a background thread, in order, errors carried, clean shutdown."""

from __future__ import annotations

import gc
import threading
import time
from collections import namedtuple

import pytest
import torch

from fnet.data.prefetch import Prefetcher, map_tensors, prefetch_steps


def _batch(i: int) -> dict:
    return {"input_ids": torch.full((2, 3), i), "pair": (torch.tensor([i]), [torch.tensor(float(i))]), "tag": f"b{i}"}


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("fnet-")}


def test_batches_arrive_in_order_with_their_structure():
    with Prefetcher((_batch(i) for i in range(20)), device="cpu", depth=3) as batches:
        got = list(batches)
    assert [int(b["input_ids"][0, 0]) for b in got] == list(range(20))
    assert [b["tag"] for b in got] == [f"b{i}" for i in range(20)]
    assert all(isinstance(b["pair"], tuple) and isinstance(b["pair"][1], list) for b in got)
    assert float(got[7]["pair"][1][0]) == 7.0


def test_map_tensors_keeps_named_tuples_and_non_tensors():
    Pair = namedtuple("Pair", "a b")
    out = map_tensors({"x": Pair(torch.ones(1), 3)}, lambda t: t * 2)
    assert isinstance(out["x"], Pair) and float(out["x"].a) == 2.0 and out["x"].b == 3


def test_it_runs_ahead_up_to_depth_while_the_consumer_works():
    produced = []

    def source():
        for i in range(10):
            produced.append(i)
            yield torch.tensor(i)

    with Prefetcher(source(), depth=3) as batches:
        first = next(batches)
        deadline = time.monotonic() + 5  # the consumer "trains"; the thread fills the queue meanwhile
        while len(produced) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # and then stops: it may not run further ahead than depth
        ahead = len(produced)
        rest = list(batches)
    assert int(first) == 0 and [int(t) for t in rest] == list(range(1, 10))
    # 1 handed out + 3 queued + at most 1 held by the blocked put
    assert 4 <= ahead <= 5, f"{ahead} batches produced while the consumer held one (depth 3)"


def test_a_source_error_reaches_the_consumer_after_the_batches_before_it():
    def source():
        for i in range(5):
            if i == 3:
                raise KeyError("shard 3 is missing")
            yield torch.tensor(i)

    batches = Prefetcher(source(), depth=2)
    assert [int(next(batches)) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(KeyError, match="shard 3 is missing"):
        next(batches)
    with pytest.raises(StopIteration):
        next(batches)
    assert not batches._thread.is_alive()


def test_closing_early_stops_the_thread_and_closes_an_endless_source():
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield torch.tensor(i)
                i += 1
        finally:
            closed.set()

    batches = Prefetcher(endless(), depth=2)
    assert [int(next(batches)) for _ in range(5)] == list(range(5))
    batches.close()
    batches.close()  # twice is fine
    assert closed.is_set() and not batches._thread.is_alive()
    with pytest.raises(StopIteration):
        next(batches)


def test_an_abandoned_prefetcher_is_collected_and_its_thread_ends():
    before = _threads()
    batches = Prefetcher((torch.tensor(i) for i in range(10**9)), depth=2)
    next(batches)
    thread = batches._thread
    del batches
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive() and _threads() <= before


def test_prefetch_steps_with_workers_keeps_step_order_under_uneven_step_times():
    def step(s: int) -> list[dict]:
        time.sleep(0.02 if s % 3 == 0 else 0.001)  # slow steps finish after later fast ones
        return [{"input_ids": torch.tensor([s])}]

    with prefetch_steps(step, 4, 30, device="cpu", workers=3) as steps:
        got = [int(b[0]["input_ids"]) for b in steps]
    assert got == list(range(4, 30))


def test_prefetch_steps_without_workers_on_the_cpu_runs_inline():
    calls = []

    def step(s: int):
        calls.append((s, threading.current_thread() is threading.main_thread()))
        return s

    steps = prefetch_steps(step, 0, 3, device="cpu", workers=0)
    assert not isinstance(steps, Prefetcher) and calls == []  # nothing computed before it is asked for
    assert [next(steps) for _ in range(3)] == [0, 1, 2]
    assert all(main for _, main in calls)
    with pytest.raises(StopIteration):
        next(steps)


def test_worker_errors_propagate_and_the_pool_shuts_down():
    def step(s: int):
        if s == 5:
            raise ValueError("bad step 5")
        return s

    before = _threads()
    steps = prefetch_steps(step, 0, 50, workers=2)
    with pytest.raises(ValueError, match="bad step 5"):
        for _ in range(50):
            next(steps)
    steps.close()
    time.sleep(0.1)
    assert _threads() <= before


def test_bad_depth_is_refused():
    with pytest.raises(ValueError, match="depth must be >= 1"):
        Prefetcher([], depth=0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_batches_are_pinned_copied_on_a_side_stream_and_equal():
    source = [{"x": torch.randn(64, 512), "i": torch.tensor(i)} for i in range(8)]
    with Prefetcher(iter(source), device="cuda", depth=2) as batches:
        got = list(batches)
    for want, have in zip(source, got):
        assert have["x"].is_cuda and torch.equal(have["x"].cpu(), want["x"]) and int(have["i"]) == int(want["i"])
    assert batches._move.pin_memory and batches._move.stream is not None
