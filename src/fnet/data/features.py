"""Featurization: task examples -> dicts of torch tensors ready for the FNet task models.

Only the transformers-compatible tokenizer surface is used: ``tokenizer(text, text_pair, padding=,
truncation=, max_length=, stride=, return_overflowing_tokens=, return_offsets_mapping=,
return_tensors="pt")`` returning a mapping with ``input_ids``, ``token_type_ids``, ``attention_mask``
(plus ``offset_mapping`` / ``overflow_to_sample_mapping`` when asked) and ``sequence_ids(i)``; and
``cls_token_id``. So :class:`fnet.tokenization.FNetTokenizer` and any ``transformers`` fast tokenizer
work alike.

Every featurizer returns :class:`Features`: a ``dict`` of tensors (pass it as ``model(**features)``)
with a ``meta`` attribute holding the plain-Python bookkeeping that decoding needs (word ids, example
ids, offsets).
"""

from __future__ import annotations

from typing import Any, Sequence

from fnet.data.readers import (
    ClassificationExamples,
    MultipleChoiceExamples,
    TokenClassificationExamples,
    MULTI_LABEL,
    REGRESSION,
)

__all__ = [
    "Features",
    "IGNORE_INDEX",
    "featurize_classification",
    "featurize_token_classification",
    "featurize_multiple_choice",
    "word_ids_from_offsets",
    "token_predictions_to_tags",
]

IGNORE_INDEX = -100
MODEL_KEYS = ("input_ids", "token_type_ids", "attention_mask")


class Features(dict):
    """``dict`` of tensors for the model, plus ``meta`` (not passed to the model)."""

    def __init__(self, *args: Any, meta: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.meta: dict[str, Any] = meta if meta is not None else {}

    @property
    def num_rows(self) -> int:
        return int(self["input_ids"].shape[0])


def _model_inputs(enc: Any, pad_token_id: int | None = None) -> dict[str, Any]:
    """The model's inputs from an encoding; ``token_type_ids`` default to zeros and a missing
    ``attention_mask`` (tokenizers whose ``model_input_names`` leave it out) marks non-pad tokens."""
    import torch

    out = {}
    for key in MODEL_KEYS:
        if key in enc:
            value = enc[key]
            out[key] = value if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=torch.long)
    if "token_type_ids" not in out:
        out["token_type_ids"] = torch.zeros_like(out["input_ids"])
    if "attention_mask" not in out:
        if pad_token_id is None:
            out["attention_mask"] = torch.ones_like(out["input_ids"])
        else:
            out["attention_mask"] = (out["input_ids"] != pad_token_id).long()
    return out


# --------------------------------------------------------------------------------------------------
# sequence classification
# --------------------------------------------------------------------------------------------------


def featurize_classification(
    examples: ClassificationExamples,
    tokenizer: Any,
    max_length: int = 128,
    *,
    padding: str | bool = "max_length",
) -> Features:
    """Tokenize ``texts`` (with ``pairs``), truncating to ``max_length``; ``labels`` is ``long`` for
    single-label and ``float`` for regression (shape ``(n,)``) and multi-label (``(n, num_labels)``)."""
    import torch

    enc = tokenizer(
        list(examples.texts),
        list(examples.pairs) if examples.pairs is not None else None,
        padding=padding,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    feats = Features(_model_inputs(enc, getattr(tokenizer, "pad_token_id", None)),
                     meta={"problem_type": examples.problem_type, "label_names": examples.label_names})
    if examples.labels:
        if examples.problem_type in (REGRESSION, MULTI_LABEL):
            feats["labels"] = torch.tensor(examples.labels, dtype=torch.float32)
        else:
            feats["labels"] = torch.tensor(examples.labels, dtype=torch.long)
    return feats


# --------------------------------------------------------------------------------------------------
# token classification
# --------------------------------------------------------------------------------------------------


def word_ids_from_offsets(
    words: Sequence[str],
    offsets: Sequence[Sequence[int]],
    sequence_ids: Sequence[int | None],
) -> list[int | None]:
    """Map each token to the index of the word it belongs to, for the text ``" ".join(words)``.

    A token belongs to the word of the first non-separator character it covers, so tokenizers whose
    offsets include the preceding space (SentencePiece's ``▁word``) work too. Special tokens, padding
    and tokens made only of separator spaces (a lone ``▁``) map to ``None``.
    """
    n_chars = sum(len(w) for w in words) + max(len(words) - 1, 0)
    char_word = [-1] * n_chars
    pos = 0
    for wi, w in enumerate(words):
        for c in range(pos, pos + len(w)):
            char_word[c] = wi
        pos += len(w) + 1
    out: list[int | None] = []
    for (s, e), seq in zip(offsets, sequence_ids):
        wid: int | None = None
        if seq is not None and e > s:
            for c in range(max(s, 0), min(e, n_chars)):
                if char_word[c] >= 0:
                    wid = char_word[c]
                    break
        out.append(wid)
    return out


def featurize_token_classification(
    examples: TokenClassificationExamples,
    tokenizer: Any,
    max_length: int = 128,
    *,
    padding: str | bool = "max_length",
    label_all_subtokens: bool = False,
) -> Features:
    """Tokenize ``" ".join(words)`` per sentence and align word tags to sub-tokens.

    The first sub-token of each word gets the word's tag id; later sub-tokens (unless
    ``label_all_subtokens``), special tokens and padding get ``-100``. Words that produce no
    sub-token (dropped characters, or cut off by ``max_length``) get no label here; when decoding,
    :func:`token_predictions_to_tags` predicts ``O`` for them. ``meta["word_ids"]`` keeps the
    token -> word map per row.
    """
    import torch

    label2id = examples.label2id
    texts = [" ".join(words) for words in examples.sentences]
    enc = tokenizer(
        texts,
        padding=padding,
        truncation=True,
        max_length=max_length,
        return_offsets_mapping=True,
        return_tensors="pt",
    )
    offsets = enc["offset_mapping"].tolist()
    all_word_ids: list[list[int | None]] = []
    labels: list[list[int]] = []
    for i, words in enumerate(examples.sentences):
        wids = word_ids_from_offsets(words, offsets[i], enc.sequence_ids(i))
        all_word_ids.append(wids)
        tags = examples.tags[i] if examples.tags else None
        row: list[int] = []
        prev: int | None = None
        for wid in wids:
            if wid is None or tags is None:
                row.append(IGNORE_INDEX)
            elif wid != prev:
                row.append(label2id[tags[wid]])
            else:
                row.append(label2id[tags[wid]] if label_all_subtokens else IGNORE_INDEX)
            if wid is not None:
                prev = wid
        labels.append(row)
    feats = Features(_model_inputs(enc, getattr(tokenizer, "pad_token_id", None)),
                     meta={"word_ids": all_word_ids, "num_words": [len(w) for w in examples.sentences],
                           "label_names": examples.label_names})
    if examples.tags:
        feats["labels"] = torch.tensor(labels, dtype=torch.long)
    return feats


def token_predictions_to_tags(
    predictions: Any,
    features: Features | dict[str, Any],
    label_names: Sequence[str] | None = None,
    *,
    default: str = "O",
) -> list[list[str]]:
    """Turn per-token predictions back into one tag per word.

    ``predictions``: class ids ``(rows, length)`` or logits ``(rows, length, num_labels)`` (tensor,
    array or nested lists). Each word takes the prediction at its first sub-token; words without a
    sub-token get ``default``. The result lines up with the original sentences, ready for
    :func:`fnet.training.metrics.entity_scores`.
    """
    import numpy as np

    meta = features.meta if isinstance(features, Features) else features
    names = list(label_names if label_names is not None else meta["label_names"])
    arr = predictions.detach().cpu().numpy() if hasattr(predictions, "detach") else np.asarray(predictions)
    if arr.ndim == 3:
        arr = arr.argmax(-1)
    out: list[list[str]] = []
    for i, (wids, n_words) in enumerate(zip(meta["word_ids"], meta["num_words"])):
        tags = [default] * n_words
        done = [False] * n_words
        for t, wid in enumerate(wids):
            if wid is not None and not done[wid]:
                tags[wid] = names[int(arr[i, t])]
                done[wid] = True
        out.append(tags)
    return out


# --------------------------------------------------------------------------------------------------
# multiple choice
# --------------------------------------------------------------------------------------------------


def featurize_multiple_choice(
    examples: MultipleChoiceExamples,
    tokenizer: Any,
    max_length: int = 128,
) -> Features:
    """Build ``(n, num_choices, max_length)`` inputs from pairs ``(context, question + " " + ending)``.

    The context is truncated first (``truncation="only_first"``); a row where that cannot reach
    ``max_length`` (question + ending alone too long) falls back to ``"longest_first"``.
    """
    import torch

    n_choices = examples.num_choices
    for i, ends in enumerate(examples.endings):
        if len(ends) != n_choices:
            raise ValueError(f"row {i} has {len(ends)} endings, expected {n_choices}")
    firsts: list[str] = []
    seconds: list[str] = []
    for ctx, q, ends in zip(examples.contexts, examples.questions, examples.endings):
        for ending in ends:
            firsts.append(ctx)
            seconds.append(f"{q} {ending}".strip() if q.strip() else ending)

    def encode(a: list[str], b: list[str], strategy: str) -> dict[str, Any]:
        return _model_inputs(tokenizer(a, b, padding="max_length", truncation=strategy,
                                       max_length=max_length, return_tensors="pt"),
                             getattr(tokenizer, "pad_token_id", None))

    def fits(enc: dict[str, Any]) -> bool:
        return int(enc["input_ids"].shape[-1]) <= max_length

    try:
        enc = encode(firsts, seconds, "only_first")
        ok = fits(enc)
    except Exception:  # tokenizers raise when only_first cannot truncate enough
        ok = False
    if not ok:
        parts = []
        for start in range(0, len(firsts), n_choices):
            a, b = firsts[start:start + n_choices], seconds[start:start + n_choices]
            try:
                piece = encode(a, b, "only_first")
                if not fits(piece):
                    raise ValueError
            except Exception:
                piece = encode(a, b, "longest_first")
            parts.append(piece)
        enc = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    n = len(examples.contexts)
    feats = Features({k: v.reshape(n, n_choices, -1) for k, v in enc.items()},
                     meta={"ids": list(examples.ids)})
    if examples.labels and all(lab is not None for lab in examples.labels):
        feats["labels"] = torch.tensor(examples.labels, dtype=torch.long)
    return feats
