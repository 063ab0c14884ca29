"""Length-grouped batches (``StepBatches(lengths=...)``, ``--group-by-length``): every example once per
epoch, batches of about one length, still a pure function of (seed, step), split over ranks as one
process would see it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fnet.data.collate import LENGTH_POOL, ListDataset, StepBatches
from fnet.inference import row_lengths


def _data(n):
    return ListDataset(list(range(n)), lambda rows: {"rows": torch.tensor(rows)})


def test_grouped_epoch_covers_every_example_once_and_cuts_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 120, size=1000)
    grouped = StepBatches(_data(1000), 16, seed=3, lengths=lengths)
    plain = StepBatches(_data(1000), 16, seed=3)
    steps = grouped.steps_per_epoch
    assert steps == plain.steps_per_epoch == 1000 // 16
    seen = np.concatenate([grouped.indices(s)[0] for s in range(steps)])
    assert len(seen) == len(set(seen.tolist())) == steps * 16  # no example twice, the tail of 8 dropped

    def padded(batches):  # tokens a batch cut to its longest row costs
        return sum(len(b[0]) * lengths[b[0]].max() for b in batches)

    cost = padded([grouped.indices(s) for s in range(steps)])
    assert cost < 0.75 * padded([plain.indices(s) for s in range(steps)])
    assert cost >= lengths[seen].sum()
    # batches are shuffled: not sorted by length over the epoch
    firsts = [lengths[grouped.indices(s)[0]].max() for s in range(steps)]
    assert firsts != sorted(firsts) and firsts != sorted(firsts, reverse=True)


def test_grouped_batches_are_a_function_of_seed_and_step_and_differ_per_epoch():
    lengths = np.arange(400) % 37
    a = StepBatches(_data(400), 8, seed=1, lengths=lengths)
    b = StepBatches(_data(400), 8, seed=1, lengths=lengths)
    for step in (0, 7, 49, 50, 93):  # 50 steps per epoch: two epochs
        np.testing.assert_array_equal(a.indices(step)[0], b.indices(step)[0])
    assert not np.array_equal(a.indices(0)[0], a.indices(50)[0])
    assert not np.array_equal(a.indices(0)[0], StepBatches(_data(400), 8, seed=2, lengths=lengths).indices(0)[0])


def test_grouped_ranks_split_what_one_process_sees():
    lengths = np.random.default_rng(1).integers(1, 60, size=8 * LENGTH_POOL)
    single = StepBatches(_data(len(lengths)), 4, grad_accum=2, seed=5, lengths=lengths)
    ranks = [StepBatches(_data(len(lengths)), 4, rank=r, world_size=2, seed=5, lengths=lengths) for r in range(2)]
    for step in (0, 3, 11):
        np.testing.assert_array_equal(np.concatenate(single.indices(step)),
                                      np.concatenate([r.indices(step)[0] for r in ranks]))


def test_grouped_lengths_must_match_the_data():
    with pytest.raises(ValueError, match="lengths"):
        StepBatches(_data(100), 4, lengths=np.ones(99)).indices(0)


def test_row_lengths_of_plain_and_multiple_choice_masks():
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    assert row_lengths(mask).tolist() == [3, 1]
    choices = torch.tensor([[[1, 1, 0], [1, 1, 1]], [[1, 0, 0], [1, 1, 0]]])  # (b=2, c=2, n=3)
    assert row_lengths(choices).tolist() == [3, 2]
