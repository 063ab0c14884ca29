"""Extractive QA: sliding-window featurization and n-best span decoding.

Windows: the question comes first, the context second; only the context is truncated
(``truncation="only_second"``) and long contexts overflow into further windows that overlap by
``stride`` tokens (the tokenizer's ``stride``, i.e. HF ``doc_stride`` semantics: the overlap, not the
step). Each window (a "feature") records the example it came from and, per token, the character span
in the context, or ``None`` for question / special / padding tokens.

Answer text is always cut from the original context with those offsets and then stripped of
leading/trailing whitespace: SentencePiece-style tokenizers report ``▁word`` with the preceding
space inside its offsets, and some datasets (COVID-QA) carry stray spaces around gold answers, so
whitespace at the ends is the one difference allowed between a decoded span and the gold text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence as _SequenceABC
from typing import Any, Iterable, Sequence

from fnet.data.features import Features
from fnet.data.readers import QAExample, QAExamples

__all__ = ["prepare_qa_features", "postprocess_qa_predictions", "answer_char_span", "gold_texts"]


def answer_char_span(answer: dict[str, Any]) -> tuple[int, int]:
    """``[start, end)`` of the answer in the context with surrounding whitespace trimmed."""
    text = answer["text"]
    start = int(answer["answer_start"])
    lead = len(text) - len(text.lstrip())
    trail = len(text) - len(text.rstrip())
    return start + lead, start + len(text) - trail


def prepare_qa_features(
    examples: QAExamples | Sequence[QAExample],
    tokenizer: Any,
    max_length: int = 384,
    stride: int = 128,
    *,
    padding: str | bool = "max_length",
) -> Features:
    """Tokenize (question, context) pairs into overlapping windows.

    Tensors: ``input_ids``, ``token_type_ids``, ``attention_mask`` and ``start_positions`` /
    ``end_positions`` (the first answer's first/last token when the whole answer lies inside the
    window, otherwise the CLS index; always the CLS index for unanswerable questions).

    ``meta``: ``example_id`` (per window), ``example_index`` (per window, into ``examples``),
    ``offset_mapping`` (per window, per token: ``(start, end)`` chars in the context or ``None``),
    ``cls_index`` (per window) and ``contexts`` (per example).
    """
    import numpy as np
    import torch

    exs = list(examples.examples if isinstance(examples, QAExamples) else examples)
    if not exs:
        raise ValueError("no examples to featurize")
    questions = [ex.question.lstrip() for ex in exs]  # leading spaces only waste window room
    contexts = [ex.context for ex in exs]
    # Plain lists come back much faster than "pt" tensors from transformers' fast tokenizers for
    # thousands of windows; _to_numpy accepts either, so tokenizers that always give tensors work too.
    enc = tokenizer(
        questions,
        contexts,
        padding=padding,
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    input_ids = _to_numpy(enc["input_ids"], np.int64)
    if input_ids.ndim != 2:
        raise ValueError("windows have different lengths: use padding='max_length' or 'longest'")
    n_feat, length = input_ids.shape
    if "overflow_to_sample_mapping" in enc:
        sample_map = [int(x) for x in _to_numpy(enc["overflow_to_sample_mapping"], np.int64)]
    else:
        sample_map = list(range(n_feat))
    offsets = _to_numpy(enc["offset_mapping"], np.int64).reshape(n_feat, length, 2)
    seq_ids = np.array(
        [[-1 if x is None else x for x in enc.sequence_ids(i)] for i in range(n_feat)], dtype=np.int64
    ).reshape(n_feat, length)
    context_mask = (seq_ids == 1) & (offsets[:, :, 1] > offsets[:, :, 0])
    offsets = np.where(context_mask[:, :, None], offsets, 0)

    cls_id = getattr(tokenizer, "cls_token_id", None)
    if cls_id is not None:
        is_cls = input_ids == cls_id
        cls_index = np.where(is_cls.any(axis=1), is_cls.argmax(axis=1), 0)
    else:
        cls_index = np.zeros(n_feat, dtype=np.int64)

    starts = cls_index.copy()
    ends = cls_index.copy()
    has_ctx = context_mask.any(axis=1)
    first_ctx = context_mask.argmax(axis=1)
    last_ctx = length - 1 - context_mask[:, ::-1].argmax(axis=1)
    window_lo = offsets[np.arange(n_feat), first_ctx, 0]
    window_hi = offsets[np.arange(n_feat), last_ctx, 1]
    for i in range(n_feat):
        ex = exs[sample_map[i]]
        if not ex.answers or ex.is_impossible or not has_ctx[i]:
            continue
        a, b = answer_char_span(ex.answers[0])
        if not (window_lo[i] <= a and b <= window_hi[i]):
            continue  # (part of) the answer is outside this window: target is CLS
        mask = context_mask[i]
        # first context token ending after the answer start, last one starting before its end; a
        # token with the preceding space in its offsets ("\u2581word") still counts for its word only
        first = int(np.argmax(mask & (offsets[i, :, 1] > a)))
        cand = mask & (offsets[i, :, 0] < b)
        last = int(length - 1 - np.argmax(cand[::-1]))
        if cand.any() and last >= first:
            starts[i], ends[i] = first, last

    model_inputs = {"input_ids": torch.from_numpy(input_ids)}
    for key in ("token_type_ids", "attention_mask"):
        if key in enc:
            model_inputs[key] = torch.from_numpy(_to_numpy(enc[key], np.int64).reshape(n_feat, length))
    if "token_type_ids" not in model_inputs:
        model_inputs["token_type_ids"] = torch.zeros_like(model_inputs["input_ids"])
    if "attention_mask" not in model_inputs:
        pad_id = getattr(tokenizer, "pad_token_id", None)
        model_inputs["attention_mask"] = (
            torch.ones_like(model_inputs["input_ids"]) if pad_id is None
            else (model_inputs["input_ids"] != pad_id).long()
        )
    feats = Features(
        model_inputs,
        meta={
            "example_id": [exs[j].id for j in sample_map],
            "example_index": sample_map,
            "offset_mapping": _OffsetRows(offsets, context_mask),
            "cls_index": [int(c) for c in cls_index],
            "contexts": contexts,
            "_offsets_array": offsets,
            "_context_mask": context_mask,
        },
    )
    feats["start_positions"] = torch.from_numpy(starts.astype(np.int64))
    feats["end_positions"] = torch.from_numpy(ends.astype(np.int64))
    return feats


def _to_numpy(x: Any, dtype: Any) -> Any:
    import numpy as np

    if hasattr(x, "detach"):
        return x.detach().cpu().numpy().astype(dtype, copy=False)
    return np.asarray(x, dtype=dtype)


class _OffsetRows(_SequenceABC):
    """``offset_mapping`` per window, built on access: row ``i`` is a list with ``(start, end)``
    character offsets for context tokens and ``None`` for every other token."""

    def __init__(self, offsets: Any, mask: Any) -> None:
        self._offsets = offsets
        self._mask = mask

    def __len__(self) -> int:
        return int(self._mask.shape[0])

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        offs = self._offsets[i].tolist()
        return [(s, e) if m else None for (s, e), m in zip(offs, self._mask[i].tolist())]


def _as_numpy(x: Any) -> Any:
    import numpy as np

    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def postprocess_qa_predictions(
    examples: QAExamples | Sequence[QAExample],
    features: Features | dict[str, Any],
    start_logits: Any,
    end_logits: Any,
    *,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    version_2_with_negative: bool | None = None,
    null_score_diff_threshold: float = 0.0,
    return_nbest: bool = False,
) -> dict[str, str] | tuple[dict[str, str], dict[str, list[dict[str, Any]]]]:
    """Decode the best answer text per example from per-window start/end logits.

    For every window, the ``n_best_size`` highest start and end logits are paired; a pair is kept
    when both tokens are context tokens, ``end >= start`` and it spans at most ``max_answer_length``
    tokens; its score is ``start_logit + end_logit``. The best pair over all windows of an example
    wins. With ``version_2_with_negative`` (default: ``examples.version_2_with_negative``), the null
    score is the smallest ``start_logit[cls] + end_logit[cls]`` over the example's windows and the
    prediction is ``""`` when ``null_score - best_span_score > null_score_diff_threshold``.

    Returns ``{example_id: text}``; with ``return_nbest`` also ``{example_id: [candidates]}`` (each
    ``{"text", "score", "start_logit", "end_logit", "window"}``, best first; includes the null
    candidate for v2).
    """
    import numpy as np

    if isinstance(examples, QAExamples):
        if version_2_with_negative is None:
            version_2_with_negative = examples.version_2_with_negative
        exs = list(examples.examples)
    else:
        exs = list(examples)
    v2 = bool(version_2_with_negative)
    meta = features.meta if isinstance(features, Features) else features
    starts = _as_numpy(start_logits)
    ends = _as_numpy(end_logits)
    if starts.shape != ends.shape or starts.ndim != 2:
        raise ValueError(f"start/end logits must both be (windows, length); got {starts.shape}, {ends.shape}")
    n_feat = len(meta["example_index"])
    if starts.shape[0] != n_feat:
        raise ValueError(f"{starts.shape[0]} rows of logits for {n_feat} windows")

    if "_context_mask" in meta:
        ctx_mask = meta["_context_mask"]
        offs = meta["_offsets_array"]
    else:
        length = starts.shape[1]
        ctx_mask = np.zeros((n_feat, length), dtype=bool)
        offs = np.zeros((n_feat, length, 2), dtype=np.int64)
        for i, row in enumerate(meta["offset_mapping"]):
            for t, o in enumerate(row):
                if o is not None:
                    ctx_mask[i, t] = True
                    offs[i, t] = o
    cls_index = meta.get("cls_index") or [0] * n_feat
    if ctx_mask.shape[1] != starts.shape[1]:
        raise ValueError(f"logits have length {starts.shape[1]} but the windows have {ctx_mask.shape[1]} tokens")

    by_example: dict[int, list[int]] = defaultdict(list)
    for f, e in enumerate(meta["example_index"]):
        by_example[e].append(f)

    k = max(1, min(n_best_size, starts.shape[1]))
    neg = -np.inf
    masked_s = np.where(ctx_mask, starts, neg)
    masked_e = np.where(ctx_mask, ends, neg)
    top_s = np.argsort(-masked_s, axis=1, kind="stable")[:, :k]
    top_e = np.argsort(-masked_e, axis=1, kind="stable")[:, :k]

    predictions: dict[str, str] = {}
    nbest_all: dict[str, list[dict[str, Any]]] = {}
    for ei, ex in enumerate(exs):
        candidates: list[tuple[float, float, float, int, int, int]] = []
        null_score = np.inf
        null_parts = (0.0, 0.0)
        for f in by_example.get(ei, []):
            c = cls_index[f]
            ns = starts[f, c] + ends[f, c]
            if ns < null_score:
                null_score, null_parts = ns, (starts[f, c], ends[f, c])
            si = top_s[f]
            ej = top_e[f]
            ok = ctx_mask[f, si][:, None] & ctx_mask[f, ej][None, :]
            span = ej[None, :] - si[:, None]
            ok &= (span >= 0) & (span < max_answer_length)
            if not ok.any():
                continue
            scores = np.where(ok, starts[f, si][:, None] + ends[f, ej][None, :], neg).ravel()
            keep = np.argsort(-scores, kind="stable")[:n_best_size]
            for flat in keep:
                if scores[flat] == neg:
                    break
                a, b = divmod(int(flat), k)
                candidates.append((float(scores[flat]), float(starts[f, si[a]]), float(ends[f, ej[b]]),
                                   f, int(si[a]), int(ej[b])))
        candidates.sort(key=lambda c: -c[0])
        context = ex.context
        nbest: list[dict[str, Any]] = []
        seen_texts: set[str] = set()
        for score, sl, el, f, s, e in candidates:
            text = context[offs[f, s, 0]:offs[f, e, 1]].strip()
            if not text or text in seen_texts:
                continue
            seen_texts.add(text)
            nbest.append({"text": text, "score": score, "start_logit": sl, "end_logit": el, "window": f})
            if len(nbest) >= n_best_size:
                break
        best_text = nbest[0]["text"] if nbest else ""
        if v2:
            best_score = nbest[0]["score"] if nbest else -np.inf
            if not nbest or float(null_score) - best_score > null_score_diff_threshold:
                best_text = ""
            nbest.append({"text": "", "score": float(null_score), "start_logit": float(null_parts[0]),
                          "end_logit": float(null_parts[1]), "window": None})
            nbest.sort(key=lambda c: -c["score"])
        predictions[ex.id] = best_text
        nbest_all[ex.id] = nbest
    if return_nbest:
        return predictions, nbest_all
    return predictions


def gold_texts(examples: Iterable[QAExample]) -> dict[str, list[str]]:
    """``{id: [gold answer texts]}`` (``[""]`` for unanswerable) for :func:`squad_scores`."""
    return {ex.id: ([a["text"] for a in ex.answers] or [""]) for ex in examples}
