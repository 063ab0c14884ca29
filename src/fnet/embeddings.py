"""Sentence embeddings from any fnet encoder: ``model.encode(texts)`` (``fnet embed``'s runner is
:mod:`fnet.apps.embed`).

The recipe is sentence-transformers': run the encoder, pool its last hidden states over the real
tokens (``mean``: the masked average; ``cls``: the first token's state), and optionally scale each
row to unit length. A model folder written by sentence-transformers (or distilled from one by
``fnet distill``, which copies the files) says which pooling, normalisation and length it was
trained with: ``1_Pooling/config.json``, ``modules.json`` (a ``Normalize`` module) and
``sentence_bert_config.json`` (``max_seq_length``). Those are the defaults; arguments override them.

Inputs are tokenised once, cut into batches of similar length by
:func:`fnet.inference.length_batches` and put back in input order, so a text's embedding does not
depend on its neighbours (FNet's Fourier mixing is per example over its real tokens, attention
masks its pads). An empty text is embedded as ``[CLS] [SEP]``, as sentence-transformers does.

int8: ``fnet embed --quantize int8``, or in Python ``fnet.quantize(model)`` then ``model.encode(texts)``.
``encode`` has no ``quantize=`` argument on purpose: quantization replaces the model's Linear layers
in place and cannot be undone (the model no longer trains, exports or moves to a GPU), which a call
that only reads the model should not do behind its caller's back.

Einstein notation in shape comments: ``b`` batch, ``n`` tokens, ``d`` hidden size, ``N`` texts.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from fnet.lazy import numpy as np  # imported on first use: the CLI reads this module for its flags

if TYPE_CHECKING:
    from fnet.data.tokenizer import Tokenizer
    from fnet.harness import Run

logger = logging.getLogger(__name__)

__all__ = ["POOLINGS", "EmbeddingDefaults", "embedding_defaults", "pool", "encode", "EncodeResult", "encode_texts"]

POOLINGS = ("mean", "cls")
POOLING_CONFIG = "1_Pooling/config.json"
MODULES_FILE = "modules.json"
SENTENCE_CONFIG = "sentence_bert_config.json"
# the files that carry a folder's embedding recipe (``fnet distill`` copies them to its student)
RECIPE_FILES = (POOLING_CONFIG, MODULES_FILE, SENTENCE_CONFIG)


@dataclass(frozen=True)
class EmbeddingDefaults:
    """A model folder's embedding recipe (the defaults of ``encode`` and ``fnet embed``)."""

    pooling: str = "mean"  # "mean" or "cls"
    normalize: bool = False  # unit-length rows
    max_length: int | None = None  # tokens per text (None: the model's max_position_embeddings)
    source: str = "fnet defaults"  # where these came from (for logs and ``fnet embed``'s record)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a readable JSON file ({type(err).__name__}); fix or delete it") from None


def embedding_defaults(folder: str | os.PathLike | None) -> EmbeddingDefaults:
    """The pooling, normalisation and length a (sentence-transformers) model folder declares."""
    if folder is None or not Path(folder).is_dir():
        return EmbeddingDefaults()
    folder = Path(folder)
    pooling, normalize, max_length, found = "mean", False, None, []
    if (folder / POOLING_CONFIG).is_file():
        modes = _read_json(folder / POOLING_CONFIG)
        chosen = [name for name in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens",
                                    "weightedmean_tokens", "lasttoken") if modes.get(f"pooling_mode_{name}")]
        known = {"cls_token": "cls", "mean_tokens": "mean"}
        if len(chosen) != 1 or chosen[0] not in known:
            raise ValueError(f"{folder / POOLING_CONFIG} asks for pooling {chosen or 'none'}; fnet pools with "
                             f"{' or '.join(POOLINGS)} only: pass --pooling mean|cls")
        pooling = known[chosen[0]]
        found.append(POOLING_CONFIG)
    if (folder / MODULES_FILE).is_file():
        modules = [m for m in _read_json(folder / MODULES_FILE) if isinstance(m, dict)]
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        unknown = [kind for kind in kinds if kind not in APPLIED_MODULES]
        if unknown:  # a Dense projection (or any other module) would change the vectors: never skip it silently
            raise ValueError(f"{folder / MODULES_FILE} lists sentence-transformers module(s) {unknown} that fnet does "
                             f"not apply (it applies {', '.join(APPLIED_MODULES)}); its embeddings would not be this "
                             "model's: use sentence-transformers for it")
        normalize = "Normalize" in kinds
        found.append(MODULES_FILE)
    if (folder / SENTENCE_CONFIG).is_file():
        value = _read_json(folder / SENTENCE_CONFIG).get("max_seq_length")
        max_length = int(value) if value else None
        found.append(SENTENCE_CONFIG)
    return EmbeddingDefaults(pooling, normalize, max_length, ", ".join(found) or "fnet defaults")


APPLIED_MODULES = ("Transformer", "Pooling", "Normalize")  # the sentence-transformers modules fnet reproduces


def pool(hidden, attention_mask, pooling: str = "mean"):
    """(b, n, d) hidden states, (b, n) mask of real tokens -> (b, d) sentence vectors."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling != "mean":
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (b, n, 1)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)  # (b, d)


def _normalize(x):
    import torch

    return torch.nn.functional.normalize(x, p=2.0, dim=-1)


@dataclass
class EncodeResult:
    """What :func:`encode_texts` did: the (N, d) float32 rows and a record of the run."""

    embeddings: np.ndarray  # (N, d) float32, input order
    pooling: str
    normalize: bool
    max_length: int
    truncated: list[int]  # indices of texts cut to max_length tokens
    empty: list[int]  # indices of texts with no characters but whitespace (embedded as [CLS] [SEP])
    stats: dict[str, float]  # texts, tokens, seconds, texts_per_s, tokens_per_s


def _model_folder(model: Any) -> str | None:
    return getattr(model, "name_or_path", None)


def _local_folder(name: str | None) -> Path | None:
    if not name:
        return None
    if Path(name).is_dir():
        return Path(name)
    from fnet.hub import resolve

    return resolve(name, weights=False)


def load_tokenizer(name_or_dir: str | os.PathLike, flag: str = "--tokenizer"):
    """The tokenizer of a model folder or Hub id, through fnet's one entry point."""
    from fnet.tokenization import AutoTokenizer

    return AutoTokenizer.from_pretrained(name_or_dir, flag=flag)


def encode_texts(
    model: Any,
    texts: Sequence[str],
    tokenizer: Tokenizer | None = None,
    *,
    batch_size: int = 32,
    max_length: int | None = None,
    pooling: str | None = None,
    normalize: bool | None = None,
    progress: bool = False,
    run: "Run | None" = None,
) -> EncodeResult:
    """Embed ``texts`` with ``model`` (any fnet model; its encoder is used). See the module docstring.

    ``tokenizer``: anything called as ``tokenizer(texts, truncation=True, max_length=n)`` that returns
    ``input_ids`` lists with special tokens and has ``pad_token_id`` (default: the model folder's, via
    ``fnet.AutoTokenizer``). ``pooling``/``normalize``/``max_length`` default to the folder's recipe.
    ``run`` (:class:`fnet.harness.Run`): the precision (autocast), and under torchrun each rank embeds
    a contiguous share of the texts and every rank gets all rows back in input order.
    """
    import contextlib

    import torch

    from fnet.harness import to_device
    from fnet.inference import Throughput, length_batches

    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings; wrap a single text in a list")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is a {type(text).__name__}, not a str")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    folder = _model_folder(model)
    local = _local_folder(folder) if (pooling is None or normalize is None or max_length is None) else None
    defaults = embedding_defaults(local)
    pooling = defaults.pooling if pooling is None else pooling
    normalize = defaults.normalize if normalize is None else bool(normalize)
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    backbone = model.base_model
    limit = backbone.config.max_position_embeddings
    max_length = max_length or defaults.max_length or limit
    if not 2 <= max_length <= limit:
        raise ValueError(f"max_length must be in [2, {limit}] (the model's position table), got {max_length}")
    if tokenizer is None:
        if not folder:
            raise ValueError("the model was not loaded from a folder: pass tokenizer=")
        tokenizer = load_tokenizer(folder)

    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"] if texts else []
    lengths = np.array([len(row) for row in ids], dtype=np.int64)
    at_limit = [i for i in range(len(texts)) if lengths[i] >= max_length]
    truncated = []
    if at_limit:  # a text of exactly max_length tokens was not cut: one token more tells
        longer = tokenizer([texts[i] for i in at_limit], truncation=True, max_length=max_length + 1)["input_ids"]
        truncated = [i for i, row in zip(at_limit, longer) if len(row) > max_length]
    if truncated:
        logger.info("%d of %d texts were longer than %d tokens and were truncated", len(truncated), len(texts),
                    max_length)
    empty = [i for i, text in enumerate(texts) if not text.strip()]

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(backbone.parameters()).device
    rows = run.shard(len(texts)) if run is not None else range(len(texts))  # this process's texts
    mine = lengths[rows.start:rows.stop]
    out = np.zeros((len(rows), backbone.config.hidden_size), dtype=np.float32)
    was_training = backbone.training
    backbone.eval()
    meter = Throughput(len(rows), int(mine.sum()), enabled=progress and (run is None or run.is_main), desc="embed")
    try:
        with torch.inference_mode():
            for batch in length_batches(mine, max_tokens=batch_size * max_length, max_rows=batch_size):
                n = int(mine[batch].max())
                input_ids = torch.full((len(batch), n), pad_id, dtype=torch.long)  # (b, n)
                mask = torch.zeros((len(batch), n), dtype=torch.long)  # (b, n)
                for row, index in enumerate(batch):
                    input_ids[row, : mine[index]] = torch.as_tensor(ids[rows.start + index])
                    mask[row, : mine[index]] = 1
                inputs = to_device({"input_ids": input_ids, "attention_mask": mask}, device)
                input_ids, mask = inputs["input_ids"], inputs["attention_mask"]
                # no pads in this batch: the unmasked mixing is the same math on its fastest path
                with run.autocast() if run is not None else contextlib.nullcontext():
                    hidden = backbone(input_ids=input_ids, attention_mask=None if bool(mask.all()) else mask,
                                      token_type_ids=torch.zeros_like(input_ids)).last_hidden_state  # (b, n, d)
                vectors = pool(hidden.float(), mask, pooling)  # (b, d)
                if normalize:
                    vectors = _normalize(vectors)
                out[batch] = vectors.cpu().numpy()
                meter.update(len(batch), int(mine[batch].sum()))
    finally:
        backbone.train(was_training)
        stats = meter.close()
    if run is not None and run.dist.world_size > 1:
        out = np.concatenate(run.gather(out), axis=0)
    return EncodeResult(out, pooling, normalize, max_length, truncated, empty, stats)


def encode(model: Any, texts: Sequence[str], tokenizer: Tokenizer | None = None, **options: Any) -> np.ndarray:
    """(N, d) float32 sentence embeddings of ``texts`` in input order; see :func:`encode_texts`."""
    return encode_texts(model, texts, tokenizer, **options).embeddings
