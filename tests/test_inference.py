"""Length buckets: every input once, within the token budget, deterministic, order restorable."""

from __future__ import annotations

import numpy as np
import pytest

from fnet.inference import Throughput, length_batches


def test_every_index_once_within_budget_and_restorable():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 300, size=1000)
    batches = length_batches(lengths, max_tokens=2048, max_rows=64)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    for batch in batches:
        assert len(batch) <= 64
        assert len(batch) * lengths[batch].max() <= 2048 or len(batch) == 1
    # results placed by the indices each batch carries come back in input order
    out = np.empty(1000, dtype=np.int64)
    for batch in batches:
        out[batch] = lengths[batch] * 10
    assert (out == lengths * 10).all()


def test_similar_lengths_share_a_batch_and_ties_keep_input_order():
    lengths = [5, 100, 5, 100, 5]
    batches = length_batches(lengths, max_tokens=200, max_rows=8)
    assert [b.tolist() for b in batches] == [[1, 3], [0, 2, 4]]


def test_an_input_over_the_budget_gets_its_own_batch():
    batches = length_batches([10, 5000, 10], max_tokens=100)
    assert [b.tolist() for b in batches] == [[1], [0, 2]]


def test_bad_budget_is_refused():
    with pytest.raises(ValueError, match="max_tokens"):
        length_batches([1, 2], max_tokens=0)


def test_throughput_counts():
    meter = Throughput(3, 30, enabled=False)
    meter.update(2, 20)
    meter.update(1, 10)
    stats = meter.close()
    assert stats["texts"] == 3 and stats["tokens"] == 30 and stats["tokens_per_s"] > 0
