"""Extractive question answering: SQuAD files, sliding windows, n-best span decoding, EM / F1.

Windows: the question comes first, the context second; only the context is truncated
(``truncation="only_second"``) and long contexts overflow into further windows that overlap by
``stride`` tokens (the tokenizer's ``stride``, i.e. HF ``doc_stride`` semantics: the overlap, not the
step). Each window (a "feature") records the example it came from and, per token, the character span
in the context, or ``None`` for question / special / padding tokens.

Answer text is always cut from the original context with those offsets and then stripped of
leading/trailing whitespace: SentencePiece-style tokenizers report ``▁word`` with the preceding
space inside its offsets, and some datasets (COVID-QA) carry stray spaces around gold answers, so
whitespace at the ends is the one difference allowed between a decoded span and the gold text.

Metrics: SQuAD exact match and F1 with the official answer normalisation (v2.0 script rules: max
over gold answers; an empty prediction is right exactly for unanswerable questions).

Legend: w windows, n tokens per window.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import warnings
import re
import string
from collections import defaultdict
from collections.abc import Sequence as _SequenceABC
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from fnet.lazy import numpy as np  # imported on first use: the CLI reads this module for its flags

from fnet.data.features import Features, model_inputs
from fnet.data.rows import file_error
from fnet.options import option
from fnet.tasks.base import ExportHead, ReaderOptions, TaskFamily, eval_scores

if TYPE_CHECKING:
    from fnet.data.tokenizer import Tokenizer


logger = logging.getLogger(__name__)
__all__ = ["QAExample", "QAExamples", "QAReaderOptions", "read_squad", "prepare_qa_features",
           "postprocess_qa_predictions", "answer_char_span", "gold_texts", "normalize_answer",
           "squad_exact_match", "squad_f1", "squad_scores", "QuestionAnswering"]


@dataclass
class QAExample:
    """One SQuAD question. ``answers`` is a list of ``{"text": str, "answer_start": int}`` whose
    spans have been checked against ``context``; it is empty for unanswerable (v2) questions."""

    id: str
    question: str
    context: str
    answers: list[dict[str, Any]]
    is_impossible: bool = False
    title: str = ""


@dataclass
class QAExamples:
    examples: list[QAExample]
    version_2_with_negative: bool
    source: str = ""
    # answers whose offsets were repaired (on_mismatch="fix") or dropped (on_mismatch="skip")
    fixed: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)  # one line per repaired or dropped answer

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[QAExample]:
        return iter(self.examples)

    def __getitem__(self, i: int) -> QAExample:
        return self.examples[i]



@dataclass
class QAReaderOptions(ReaderOptions):
    """How to read a SQuAD file."""

    on_mismatch: str = option(
        "error", "question answering: an answer whose text is not at its answer_start: fail, move answer_start "
        "to the nearest exact match, or drop the answer", choices=("error", "fix", "skip"), flag="--answer-mismatch")
    max_shift: int = option(64, "with on_mismatch='fix': how far (characters) to look for the answer text", cli=False)
    encoding: str = option("utf-8", "text encoding of the file", cli=False)


# --------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------


def _nearest_occurrence(context: str, text: str, start: int, max_shift: int) -> int | None:
    best: int | None = None
    lo = max(0, start - max_shift)
    hi = min(len(context), start + max_shift + len(text))
    i = context.find(text, lo, hi)
    while i != -1:
        if best is None or abs(i - start) < abs(best - start):
            best = i
        i = context.find(text, i + 1, hi)
    return best


def read_squad(path: str | Path, options: QAReaderOptions | None = None, **overrides: Any) -> QAExamples:
    """Read SQuAD v1.1 / v2.0 JSON (``data[].paragraphs[].context, qas[]``); options:
    :class:`QAReaderOptions`, or its fields as keywords.

    Each answer must satisfy ``context[answer_start:answer_start + len(text)] == text``. When it does
    not, ``on_mismatch`` decides:

    * ``"error"`` (default): raise, naming the file, the JSON path, the question id and both strings;
    * ``"fix"``: move ``answer_start`` to the nearest exact occurrence of the text within
      ``max_shift`` characters (the usual repair: most broken offsets in public sets are off by one or
      two characters; ``answer_start=-1``, "unknown", takes the first occurrence anywhere); raise if
      if there is none the answer is dropped as with ``"skip"``;
    * ``"skip"``: drop that answer (a question left with no answer is dropped too).

    ``QAExamples.fixed`` / ``.skipped`` count repaired / dropped answers and ``.problems`` lists each.

    The file is SQuAD v2 when any question carries ``is_impossible``.
    """
    options = dataclasses.replace(options or QAReaderOptions(), **overrides)
    on_mismatch, max_shift = options.on_mismatch, options.max_shift
    if on_mismatch not in ("error", "fix", "skip"):
        raise ValueError(f"on_mismatch must be 'error', 'fix' or 'skip', got {on_mismatch!r}")
    path = Path(path)
    try:
        with open(path, encoding=options.encoding) as f:
            doc = json.load(f)
    except json.JSONDecodeError as exc:
        raise file_error(path, exc.lineno, f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise file_error(path, None, "not SQuAD JSON: expected an object with a 'data' list")

    examples: list[QAExample] = []
    seen_ids: dict[str, str] = {}
    v2 = False
    fixed = skipped = 0
    problems: list[str] = []
    for ai, article in enumerate(doc["data"]):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise file_error(path, f"data[{ai}]", "expected an object with a 'paragraphs' list")
        title = str(article.get("title", ""))
        for pi, para in enumerate(article["paragraphs"]):
            where_p = f"data[{ai}].paragraphs[{pi}]"
            if not isinstance(para, dict):
                raise file_error(path, where_p, "expected an object")
            context = para.get("context")
            if not isinstance(context, str) or not context.strip():
                raise file_error(path, where_p, "missing or empty 'context'")
            qas = para.get("qas")
            if not isinstance(qas, list):
                raise file_error(path, where_p, "missing 'qas' list")
            for qi, qa in enumerate(qas):
                where = f"{where_p}.qas[{qi}]"
                if not isinstance(qa, dict):
                    raise file_error(path, where, "expected an object")
                if "id" not in qa:
                    raise file_error(path, where, "missing 'id'")
                qid = str(qa["id"])
                if qid in seen_ids:
                    raise file_error(path, where, f"duplicate question id {qid!r} (first at {seen_ids[qid]})")
                seen_ids[qid] = where
                question = qa.get("question")
                if not isinstance(question, str) or not question.strip():
                    raise file_error(path, where, f"question {qid!r}: missing or empty 'question'")
                impossible = qa.get("is_impossible", False)
                if "is_impossible" in qa:
                    v2 = True
                    if not isinstance(impossible, bool):
                        raise file_error(path, where, f"question {qid!r}: 'is_impossible' must be true/false")
                answers_raw = qa.get("answers", [])
                if not isinstance(answers_raw, list):
                    raise file_error(path, where, f"question {qid!r}: 'answers' must be a list")
                answers: list[dict[str, Any]] = []
                if not impossible:
                    for ni, ans in enumerate(answers_raw):
                        where_a = f"{where}.answers[{ni}]"
                        if not isinstance(ans, dict) or "text" not in ans or "answer_start" not in ans:
                            raise file_error(path, where_a, f"question {qid!r}: answer needs 'text' and 'answer_start'")
                        text, start = ans["text"], ans["answer_start"]
                        if not isinstance(text, str) or not text.strip():
                            raise file_error(path, where_a, f"question {qid!r}: empty answer text")
                        if isinstance(start, bool) or not isinstance(start, int) or start < -1:
                            raise file_error(path, where_a, f"question {qid!r}: bad answer_start {start!r}")
                        if start == -1 or context[start:start + len(text)] != text:
                            if on_mismatch == "error":
                                raise file_error(
                                    path, where_a,
                                    f"question {qid!r}: answer text {text!r} does not match the context at "
                                    f"answer_start={start} (context has {context[start:start + len(text)]!r}); "
                                    "pass --answer-mismatch fix to search nearby or --answer-mismatch skip to drop it",
                                )
                            new = None
                            if on_mismatch == "fix":
                                # answer_start=-1 (some sets' "position unknown"): search everywhere
                                new = (_nearest_occurrence(context, text, 0, len(context)) if start == -1
                                       else _nearest_occurrence(context, text, start, max_shift))
                            if new is None:
                                skipped += 1
                                problems.append(
                                    f"{path} at {where_a}: question {qid!r}: dropped answer {text!r} "
                                    f"(not at answer_start={start}"
                                    + (f" nor within {max_shift} characters)" if on_mismatch == "fix" else ")")
                                )
                                continue
                            problems.append(
                                f"{path} at {where_a}: question {qid!r}: answer_start {start} -> {new}"
                            )
                            start = new
                            fixed += 1
                        answers.append({"text": text, "answer_start": start})
                    if not answers:
                        if answers_raw and on_mismatch != "error":
                            problems.append(f"{path} at {where}: question {qid!r}: dropped (no usable answer)")
                            continue
                        raise file_error(path, where, f"question {qid!r}: answerable question with no answers")
                examples.append(
                    QAExample(id=qid, question=question, context=context, answers=answers,
                              is_impossible=bool(impossible), title=title)
                )
    if not examples:
        raise file_error(path, None, "no questions")
    return QAExamples(examples=examples, version_2_with_negative=v2, source=str(path), fixed=fixed,
                      skipped=skipped, problems=problems)


# --------------------------------------------------------------------------------------------------
# windows and span decoding
# --------------------------------------------------------------------------------------------------


def answer_char_span(answer: dict[str, Any]) -> tuple[int, int]:
    """``[start, end)`` of the answer in the context with surrounding whitespace trimmed."""
    text = answer["text"]
    start = int(answer["answer_start"])
    lead = len(text) - len(text.lstrip())
    trail = len(text) - len(text.rstrip())
    return start + lead, start + len(text) - trail


def _cap_questions(questions: list[str], ids: list[str], tokenizer: Tokenizer, max_length: int) -> list[str]:
    """Questions cut to half the window, ``(max_length - 3) // 2`` tokens (as BERT's SQuAD script caps
    queries), so every window keeps room for context; each cut question is named in a log warning."""
    cap = max(1, (max_length - 3) // 2)
    with warnings.catch_warnings():  # a long question is the point here: no "longer than the maximum" warning
        warnings.simplefilter("ignore")
        encoded = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    capped = list(questions)
    for i, (ids_i, offsets) in enumerate(zip(encoded["input_ids"], encoded["offset_mapping"])):
        if len(ids_i) > cap:
            capped[i] = questions[i][: int(offsets[cap - 1][1])]
            logger.warning("question %r has %d tokens: cut to its first %d (half of the %d-token window)",
                           ids[i], len(ids_i), cap, max_length)
    return capped


def prepare_qa_features(
    examples: QAExamples | Sequence[QAExample],
    tokenizer: Tokenizer,
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
    import torch

    exs = list(examples.examples if isinstance(examples, QAExamples) else examples)
    if not exs:
        raise ValueError("no examples to featurize")
    questions = [ex.question.lstrip() for ex in exs]  # leading spaces only waste window room
    questions = _cap_questions(questions, [ex.id for ex in exs], tokenizer, max_length)
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

    arrays = {"input_ids": input_ids}
    for key in ("token_type_ids", "attention_mask"):
        if key in enc:
            arrays[key] = _to_numpy(enc[key], np.int64).reshape(n_feat, length)
    inputs = model_inputs({k: torch.from_numpy(v) for k, v in arrays.items()}, getattr(tokenizer, "pad_token_id", None))
    feats = Features(
        inputs,
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


# --------------------------------------------------------------------------------------------------

_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """Official SQuAD normalisation: lowercase, drop ASCII punctuation, drop the articles
    a/an/the, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def squad_exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def squad_f1(prediction: str, gold: str) -> float:
    """Token-overlap F1 of normalised answers; when either is empty, 1 if both are, else 0."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _gold_lists(references: Any) -> dict[str, list[str]]:
    """Accept ``{id: [texts]}``, ``{id: text}``, QAExamples / a list of QAExample, or a list of
    ``{"id", "answers": {"text": [...]}}`` (HF datasets) / ``{"id", "answers": [{"text"}]}``."""
    if isinstance(references, Mapping):
        return {str(k): ([v] if isinstance(v, str) else list(v)) for k, v in references.items()}
    items = getattr(references, "examples", references)
    out: dict[str, list[str]] = {}
    for item in items:
        if hasattr(item, "answers") and hasattr(item, "id"):
            out[str(item.id)] = [a["text"] for a in item.answers]
            continue
        answers = item["answers"]
        if isinstance(answers, Mapping):
            texts = list(answers.get("text", []))
        else:
            texts = [a["text"] if isinstance(a, Mapping) else str(a) for a in answers]
        out[str(item["id"])] = texts
    return out


def squad_scores(predictions: Mapping[str, str], references: Any) -> dict[str, float]:
    """SQuAD exact match and F1 (percentages) over the references' questions.

    Gold answers that normalise to nothing are ignored and a question with none left is
    unanswerable (gold ``""``), as in the official v2.0 script; each question scores the max over
    its gold answers. A question without a prediction scores 0. ``HasAns_*`` / ``NoAns_*`` splits
    are added when there are unanswerable questions.
    """
    golds = _gold_lists(references)
    if not golds:
        raise ValueError("no reference questions")
    em: dict[str, float] = {}
    f1: dict[str, float] = {}
    has_answer: dict[str, bool] = {}
    for qid, texts in golds.items():
        texts = [t for t in texts if normalize_answer(t)]
        has_answer[qid] = bool(texts)
        texts = texts or [""]
        if qid not in predictions:
            em[qid] = f1[qid] = 0.0
            continue
        pred = predictions[qid]
        em[qid] = max(squad_exact_match(pred, t) for t in texts)
        f1[qid] = max(squad_f1(pred, t) for t in texts)
    ids = list(golds)
    out = {
        "exact_match": 100.0 * sum(em[i] for i in ids) / len(ids),
        "f1": 100.0 * sum(f1[i] for i in ids) / len(ids),
        "total": float(len(ids)),
    }
    no_ans = [i for i in ids if not has_answer[i]]
    if no_ans:
        has = [i for i in ids if has_answer[i]]
        for name, group in (("HasAns", has), ("NoAns", no_ans)):
            if group:
                out[f"{name}_exact"] = 100.0 * sum(em[i] for i in group) / len(group)
                out[f"{name}_f1"] = 100.0 * sum(f1[i] for i in group) / len(group)
                out[f"{name}_total"] = float(len(group))
    return out


# --------------------------------------------------------------------------------------------------
# the family
# --------------------------------------------------------------------------------------------------


class QuestionAnswering(TaskFamily):
    name = "question_answering"
    aliases = {"qa": {}, "squad": {}}
    model_class_name = "FNetForQuestionAnswering"
    options = QAReaderOptions
    examples_type = (QAExamples, list, tuple)
    export = ExportHead("question-answering", ("start_logits", "end_logits"))
    spread = False

    def read(self, path: Any, options: QAReaderOptions) -> QAExamples:
        return read_squad(path, options)

    def featurize(self, examples: QAExamples, tokenizer: Tokenizer, max_length: int = 384, *, stride: int = 128,
                  **options: Any) -> Features:
        return prepare_qa_features(examples, tokenizer, max_length, stride, **options)

    def best_metric(self, problem_type: str | None) -> str:
        del problem_type
        return "eval_f1"

    def metrics(self, predictions: Mapping[str, str], references: Any, **options: Any) -> dict[str, Any]:
        del options  # SQuAD scoring has no options
        return squad_scores(predictions, references)

    def score(self, examples: QAExamples, features: Features, outputs: dict[str, np.ndarray], label_names: list[str],
              *, problem_type: str | None = None, max_answer_length: int = 30) -> tuple[dict[str, float], list[dict]]:
        del label_names, problem_type  # answers are spans, not labels
        # null answers only where the data has unanswerable questions: COVID-QA carries SQuAD v2's
        # is_impossible field but every question has an answer, and an undertrained model's CLS
        # score (the target of most windows) would otherwise win everywhere
        allow_null = bool(examples.version_2_with_negative) and any(ex.is_impossible for ex in examples)
        answers = postprocess_qa_predictions(
            examples, features, outputs["start_logits"], outputs["end_logits"],  # (w, n) each
            max_answer_length=max_answer_length, version_2_with_negative=allow_null)
        records: list[dict[str, Any]] = [{"id": ex.id, "question": ex.question, "answer": answers[ex.id]}
                                         for ex in examples]
        golds = gold_texts(examples)
        scores = squad_scores(answers, golds) if golds else {}
        return eval_scores(scores), records
