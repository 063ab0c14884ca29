"""Step-indexed batching: which examples form optimizer step ``s``, on this rank, in which micro-batch.

The batches of a step are a pure function of (seed, step, rank, world size): every epoch is a seeded
permutation of the dataset, consecutive global batches are cut from it, and each rank takes its own
contiguous slice of the global batch. Resuming at step ``k`` therefore needs no iterator state
(:func:`fnet.training.resume.data_position` records where the data stood, for reading), and ``N``
ranks see exactly the examples one process would see with ``N`` times the accumulation.

Grouping by length (``lengths``, ``--group-by-length``): each epoch's permutation is cut into pools
of :data:`LENGTH_POOL` global batches, each pool is sorted by length and cut into global batches,
and the batches of the epoch are shuffled (seeded). A batch then holds texts of about one length, so
cutting it to its longest text (:func:`fnet.inference.feature_batch`) drops most of the padding:
short, varied texts such as tweets train on ~40% fewer tokens. Still a pure function of (seed, step).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch

LENGTH_POOL = 50  # global batches sorted together when grouping by length (HF's group_by_length: 50)


class EpochDataset(Protocol):
    """A dataset whose examples may change per epoch (pretraining re-draws its segment pairs)."""

    def num_examples(self, epoch: int) -> int: ...

    def collate(self, epoch: int, indices: Sequence[int]) -> dict[str, torch.Tensor]: ...


class StepBatches:
    """Micro-batches of every optimizer step for one rank.

    ``micro_batch_size`` examples per forward pass, ``grad_accum`` passes per step per rank, so a step
    consumes ``global_batch = micro_batch_size * grad_accum * world_size`` examples. The tail of an
    epoch that does not fill a global batch is dropped (it is in the next epoch's permutation).
    """

    def __init__(
        self,
        dataset: EpochDataset,
        micro_batch_size: int,
        grad_accum: int = 1,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        shuffle: bool = True,
        lengths: "np.ndarray | None" = None,
    ):
        if micro_batch_size < 1 or grad_accum < 1:
            raise ValueError(f"batch size and grad_accum must be >= 1, got {micro_batch_size} and {grad_accum}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        self.dataset, self.micro_batch_size, self.grad_accum = dataset, micro_batch_size, grad_accum
        self.rank, self.world_size, self.seed, self.shuffle = rank, world_size, seed, shuffle
        self.global_batch = micro_batch_size * grad_accum * world_size
        self.lengths = None if lengths is None else np.asarray(lengths)  # tokens per example: group by length
        self._epoch_steps: list[int] = []  # steps of epochs 0, 1, ... (computed as needed)

    def steps_in_epoch(self, epoch: int) -> int:
        while len(self._epoch_steps) <= epoch:
            n = self.dataset.num_examples(len(self._epoch_steps))
            steps = n // self.global_batch
            if steps == 0:
                raise ValueError(
                    f"the data has {n} examples, fewer than one global batch ({self.micro_batch_size} x "
                    f"{self.grad_accum} accumulation x {self.world_size} ranks); use a smaller batch or more data"
                )
            self._epoch_steps.append(steps)
        return self._epoch_steps[epoch]

    @property
    def steps_per_epoch(self) -> int:
        """Steps of the first epoch (epochs of pretraining data differ by a few examples)."""
        return self.steps_in_epoch(0)

    def locate(self, step: int) -> tuple[int, int]:
        """(epoch, step within that epoch) of global step ``step`` (0-based)."""
        epoch = 0
        while step >= self.steps_in_epoch(epoch):
            step -= self.steps_in_epoch(epoch)
            epoch += 1
        return epoch, step

    def _order(self, epoch: int) -> np.ndarray:
        n = self.dataset.num_examples(epoch)
        if not self.shuffle:
            return np.arange(n)
        rng = np.random.default_rng([self.seed, epoch, 7])
        order = rng.permutation(n)
        if self.lengths is None:
            return order
        if len(self.lengths) != n:
            raise ValueError(f"lengths has {len(self.lengths)} entries for a dataset of {n} examples")
        full = n // self.global_batch * self.global_batch  # the random tail past the last batch stays dropped
        pool = self.global_batch * LENGTH_POOL
        kept = order[:full]
        kept = np.concatenate([chunk[np.argsort(self.lengths[chunk], kind="stable")]
                               for chunk in np.split(kept, range(pool, full, pool))]) if full else kept
        batches = kept.reshape(-1, self.global_batch)[rng.permutation(full // self.global_batch)]
        return np.concatenate([batches.reshape(-1), order[full:]])

    def indices(self, step: int) -> list[np.ndarray]:
        """Example indices of this rank's micro-batches at ``step`` (and the epoch via ``locate``)."""
        epoch, within = self.locate(step)
        order = self._order(epoch)
        start = within * self.global_batch + self.rank * self.micro_batch_size * self.grad_accum
        mine = order[start:start + self.micro_batch_size * self.grad_accum]
        return [mine[i * self.micro_batch_size:(i + 1) * self.micro_batch_size] for i in range(self.grad_accum)]

    def micro_batches(self, step: int) -> list[dict[str, torch.Tensor]]:
        epoch, _ = self.locate(step)
        return [self.dataset.collate(epoch, idx) for idx in self.indices(step)]


class ListDataset:
    """An :class:`EpochDataset` over a fixed list of examples with a collate function (fine-tuning)."""

    def __init__(self, examples: Sequence[Any], collate_fn: Callable[[list[Any]], dict[str, torch.Tensor]]):
        self.examples, self.collate_fn = examples, collate_fn

    def num_examples(self, epoch: int) -> int:
        return len(self.examples)

    def collate(self, epoch: int, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        return self.collate_fn([self.examples[int(i)] for i in indices])
