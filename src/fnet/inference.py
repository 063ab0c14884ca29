"""Running a model over many inputs of mixed length: length buckets, order restored, progress.

Real text mixes short and long inputs. Padding every batch to its longest member wastes the work
of the pads, so inputs are sorted by length and cut into batches by a token budget (rows x longest
row), and results are put back in input order by the caller with the indices each batch carries.

Every inference path (`fnet predict`, `fnet evaluate`, `fnet embed`, ``model.encode``) batches
through :func:`length_batches` and reports through :class:`Throughput`. :func:`task_logits` runs a
task model over a feature table (the one runner of evaluate, predict, calibrate and fine-tuning's
validation), on the run's device and precision, and under torchrun each rank runs its share of the
rows and every rank gets all outputs back in input order (:class:`fnet.harness.Run`).
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Iterator, Mapping, Sequence

from fnet.lazy import numpy as np  # imported on first use: the CLI reads this module for its flags

if TYPE_CHECKING:
    import torch

    from fnet.data.features import Features
    from fnet.harness import Run

__all__ = ["length_batches", "Throughput", "LengthBuckets", "trim_padding", "row_lengths", "feature_batch",
           "task_logits"]

OUTPUT_KEYS = ("logits", "start_logits", "end_logits")  # what task models return that callers score


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


def row_lengths(mask: "torch.Tensor") -> np.ndarray:
    """Real tokens of each row's longest sequence: an attention mask (b, n), or (b, c, n) for c choices
    per row -> (b,) integers (what a row costs when its batch is cut to its longest row)."""
    return mask.reshape(mask.shape[0], -1, mask.shape[-1]).sum(-1).max(-1).values.numpy()


def trim_padding(batch: dict[str, "torch.Tensor"], mask_key: str = "attention_mask",
                 keys: Sequence[str] | None = None) -> dict[str, "torch.Tensor"]:
    """Cut the last (sequence) axis of ``keys`` (default: every tensor shaped like the mask) to the
    longest real length in the batch. With the attention mask passed, the dropped pads change no output."""
    mask = batch[mask_key]
    longest = int(mask.reshape(-1, mask.shape[-1]).sum(-1).max().clamp(min=1))
    out = dict(batch)
    for key, value in batch.items():
        if (key in keys) if keys is not None else (value.shape == mask.shape):
            out[key] = value[..., :longest]
    return out


class LengthBuckets:
    """Run over the rows of padded model inputs in length buckets; put the results back in input order.

    ``inputs``: tensors with the rows first, including ``attention_mask`` (b, n) or (b, c, n) (multiple
    choice: a row's budget counts all its c choices). Iterating yields ``(rows, batch)``: the input
    indices of one bucket (see :func:`length_batches`) and those rows cut to their longest real length
    (:func:`trim_padding`). :meth:`restore` puts per-bucket results (rows first, in bucket order) back
    in input order; :attr:`stats` holds texts, tokens, seconds and rates once iteration ends.

        buckets = LengthBuckets(features, max_tokens=16384)
        pooled = buckets.restore([model(**batch).pooler_output.numpy() for _, batch in buckets])
    """

    def __init__(self, inputs: Mapping[str, "torch.Tensor"], max_tokens: int = 16384, max_rows: int = 256,
                 progress: bool = False, desc: str = "inference", mask_key: str = "attention_mask"):
        self.inputs = dict(inputs)
        self.mask_key = mask_key
        mask = self.inputs[mask_key]
        per_row = mask.reshape(mask.shape[0], -1, mask.shape[-1]).sum(-1)  # (b, c): real tokens per sequence
        self.tokens = per_row.sum(-1).numpy()  # (b,)
        width = per_row.shape[1]  # c choices share a row's budget
        self.batches = length_batches(row_lengths(mask), max(1, max_tokens // width), max_rows)
        self.progress = progress
        self.desc = desc
        self.stats: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[np.ndarray, dict[str, "torch.Tensor"]]]:
        import torch

        with Throughput(len(self.tokens), int(self.tokens.sum()), self.progress, self.desc) as meter:
            for rows in self.batches:
                index = torch.from_numpy(rows)
                yield rows, trim_padding({k: v.index_select(0, index) for k, v in self.inputs.items()}, self.mask_key)
                meter.update(len(rows), int(self.tokens[rows].sum()))
            self.stats = meter.close()

    def restore(self, chunks: Sequence[np.ndarray], axis: int = 0) -> np.ndarray:
        """Per-bucket arrays (rows on ``axis``, buckets in iteration order) -> one array in input order."""
        joined = np.concatenate(chunks, axis=axis)
        order = np.concatenate(self.batches)
        out = np.empty_like(joined)
        index = [slice(None)] * joined.ndim
        index[axis] = order
        out[tuple(index)] = joined
        return out


def feature_batch(features: "Features", rows: "np.ndarray | list[int] | slice") -> dict[str, "torch.Tensor"]:
    """Rows of a feature table (model inputs and labels), cut to the longest real length among them
    (pads beyond it are dropped; with the attention mask passed, the kept pads do not change any output)."""
    from fnet.data.features import LABEL_KEYS, MODEL_KEYS

    batch = {k: v[rows] for k, v in features.items() if k in MODEL_KEYS or k in LABEL_KEYS}
    per_token = [k for k, v in batch.items()
                 if k in MODEL_KEYS or (k == "labels" and v.dim() == batch["attention_mask"].dim())]
    return trim_padding(batch, keys=per_token)


def task_logits(model: "torch.nn.Module", features: "Features", batch_size: int, mc_samples: int = 0,
                max_tokens: int = 16384, progress: bool = False, run: "Run | None" = None) -> dict[str, np.ndarray]:
    """Run a task model over all feature rows; returns ``logits`` / ``start_logits`` / ``end_logits``
    (float32 numpy) in row order.

    Rows go in length buckets of at most ``batch_size`` rows and ``max_tokens`` padded tokens
    (:class:`LengthBuckets`), each cut to its longest real length; per-token outputs are padded back to
    the feature length (QA logits with -1e4, so padding is never picked as an answer). With
    ``mc_samples`` > 0 dropout stays on and each array gains a leading axis of that many samples.
    ``run`` (:class:`fnet.harness.Run`): the device and precision (default: the model's device, fp32);
    under torchrun each rank runs a contiguous share of the rows and all ranks get every row back.
    """
    from fnet.data.features import MODEL_KEYS

    n_rows = features["input_ids"].shape[0]
    rows = run.shard(n_rows) if run is not None else range(n_rows)
    inputs = {k: v[rows.start:rows.stop] for k, v in features.items() if k in MODEL_KEYS}
    part = _logits_of_rows(model, inputs, batch_size, mc_samples, max_tokens, progress and (run is None or run.is_main),
                           run) if len(rows) else {}
    if run is None:
        return part
    parts = [p for p in run.gather(part) if p]
    axis = 1 if mc_samples else 0
    return {key: np.concatenate([p[key] for p in parts], axis=axis) for key in (parts[0] if parts else {})}


def _logits_of_rows(model: "torch.nn.Module", inputs: dict[str, "torch.Tensor"], batch_size: int, mc_samples: int,
                    max_tokens: int, progress: bool, run: "Run | None") -> dict[str, np.ndarray]:
    """:func:`task_logits` on this process's rows."""
    import contextlib
    import logging

    import torch

    passes = max(1, mc_samples)
    full = inputs["input_ids"].shape[-1]
    buckets = LengthBuckets(inputs, max_tokens=max_tokens, max_rows=batch_size, progress=progress, desc="predicting")
    chunks: dict[str, list[np.ndarray]] = {}
    model.train(mc_samples > 0)
    try:
        with torch.no_grad():
            for _, batch in buckets:
                if run is not None:
                    batch = run.to_device(batch)
                samples: dict[str, list[np.ndarray]] = {}
                for _ in range(passes):
                    with run.autocast() if run is not None else contextlib.nullcontext():
                        out = model(**batch)
                    for key in OUTPUT_KEYS:
                        value = getattr(out, key, None)
                        if value is None:
                            continue
                        value = value.float().cpu().numpy()
                        per_token = key != "logits" or value.ndim == 3  # (b, n[, k])
                        if per_token and value.shape[1] < full:
                            pad = [(0, 0)] * value.ndim
                            pad[1] = (0, full - value.shape[1])
                            value = np.pad(value, pad, constant_values=-1e4 if key != "logits" else 0.0)
                        samples.setdefault(key, []).append(value)
                for key, values in samples.items():
                    chunks.setdefault(key, []).append(np.stack(values))  # (s, b, ...)
    finally:
        model.eval()
    result = {key: buckets.restore(values, axis=1) for key, values in chunks.items()}
    logging.getLogger(__name__).info(
        "inference: %(texts)d rows, %(tokens)d tokens in %(seconds).2f s (%(tokens_per_s).0f tokens/s)", buckets.stats)
    return result if mc_samples else {key: value[0] for key, value in result.items()}
