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


def test_length_buckets_restore_input_order_and_trim_padding():
    import torch

    from fnet.inference import LengthBuckets

    lengths = [3, 9, 1, 9, 5, 2, 7]
    mask = (torch.arange(10) < torch.tensor(lengths)[:, None]).long()  # (7, 10)
    ids = torch.arange(7)[:, None].expand(7, 10) * mask  # row i holds i at its real tokens
    buckets = LengthBuckets({"input_ids": ids, "attention_mask": mask}, max_tokens=18, max_rows=4)
    seen, chunks = [], []
    for rows, batch in buckets:
        longest = max(lengths[i] for i in rows)
        assert batch["input_ids"].shape == (len(rows), longest), "each bucket is cut to its longest row"
        assert len(rows) * longest <= 18 or len(rows) == 1
        seen += rows.tolist()
        chunks.append(batch["input_ids"][:, 0].numpy())  # each row's own index, as a per-row result
    assert sorted(seen) == list(range(7))
    assert buckets.restore(chunks).tolist() == list(range(7)), "results must come back in input order"
    assert buckets.stats["texts"] == 7 and buckets.stats["tokens"] == sum(lengths)
