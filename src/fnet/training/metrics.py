"""Evaluation metrics for the fine-tuning tasks, written against the reference tools' definitions.

* classification: accuracy, F1 (binary / macro / micro, as scikit-learn with ``zero_division=0``),
  Matthews correlation (scikit-learn's multi-class formula), Pearson and Spearman (ties take their
  average rank, as SciPy);
* token classification: entity-level precision / recall / F1 identical to ``seqeval``'s default
  (conlleval-style, lenient) mode, and token accuracy;
* question answering: SQuAD exact match and F1 with the official answer normalisation (v2.0 script
  rules: max over gold answers; an empty prediction is right exactly for unanswerable questions);
* multiple choice: accuracy.

Only numpy is needed; ``compute_metrics(task, predictions, references)`` dispatches by task.
"""

from __future__ import annotations

import collections
import math
import re
import string
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "accuracy",
    "f1_score",
    "matthews_corrcoef",
    "pearson",
    "spearman",
    "rankdata",
    "get_entities",
    "entity_scores",
    "token_accuracy",
    "normalize_answer",
    "squad_exact_match",
    "squad_f1",
    "squad_scores",
    "multi_label_scores",
    "compute_metrics",
]


# --------------------------------------------------------------------------------------------------
# classification / regression
# --------------------------------------------------------------------------------------------------


def _labels_from(predictions: Any) -> np.ndarray:
    """Class ids from ids or logits (argmax over the last axis when 2-D)."""
    arr = predictions.detach().cpu().numpy() if hasattr(predictions, "detach") else np.asarray(predictions)
    if arr.ndim == 2:
        arr = arr.argmax(-1)
    return arr.reshape(-1)


def _pair(predictions: Any, references: Any) -> tuple[np.ndarray, np.ndarray]:
    p = _labels_from(predictions)
    r = np.asarray(references.detach().cpu().numpy() if hasattr(references, "detach") else references).reshape(-1)
    if p.shape[0] != r.shape[0]:
        raise ValueError(f"{p.shape[0]} predictions for {r.shape[0]} references")
    if p.shape[0] == 0:
        raise ValueError("no predictions")
    return p, r


def accuracy(predictions: Any, references: Any) -> float:
    """Fraction of exact matches (predictions may be logits)."""
    p, r = _pair(predictions, references)
    return float(np.mean(p == r))


def _prf(tp: float, n_pred: float, n_true: float) -> tuple[float, float, float]:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def f1_score(predictions: Any, references: Any, *, average: str = "binary", pos_label: Any = 1) -> float:
    """F1 as scikit-learn's ``f1_score(references, predictions, average=..., zero_division=0)``.

    ``binary``: F1 of ``pos_label``; ``macro``: unweighted mean over the labels present in either
    references or predictions; ``micro``: from global counts (equals accuracy for single-label).
    """
    p, r = _pair(predictions, references)
    if average == "binary":
        labels = set(np.unique(np.concatenate([p, r])).tolist())
        if len(labels) > 2:
            raise ValueError(f"average='binary' needs at most two classes, found {sorted(labels)}")
        tp = float(np.sum((p == pos_label) & (r == pos_label)))
        return _prf(tp, float(np.sum(p == pos_label)), float(np.sum(r == pos_label)))[2]
    labels = np.unique(np.concatenate([p, r]))
    if average == "macro":
        scores = [
            _prf(float(np.sum((p == c) & (r == c))), float(np.sum(p == c)), float(np.sum(r == c)))[2]
            for c in labels
        ]
        return float(np.mean(scores))
    if average == "micro":
        tp = float(np.sum(p == r))
        return _prf(tp, float(p.size), float(r.size))[2]
    raise ValueError(f"average must be 'binary', 'macro' or 'micro', got {average!r}")


def matthews_corrcoef(predictions: Any, references: Any) -> float:
    """Matthews correlation, multi-class (Gorodkin's R_K, scikit-learn's formula); 0 when undefined."""
    p, r = _pair(predictions, references)
    classes, inv = np.unique(np.concatenate([r, p]), return_inverse=True)
    k = len(classes)
    r_idx, p_idx = inv[: r.size], inv[r.size:]
    confusion = np.zeros((k, k), dtype=np.float64)
    np.add.at(confusion, (r_idx, p_idx), 1.0)
    true_per_class = confusion.sum(axis=1)
    pred_per_class = confusion.sum(axis=0)
    correct = np.trace(confusion)
    n = confusion.sum()
    cov_tp = correct * n - np.dot(true_per_class, pred_per_class)
    cov_pp = n * n - np.dot(pred_per_class, pred_per_class)
    cov_tt = n * n - np.dot(true_per_class, true_per_class)
    if cov_pp * cov_tt == 0:
        return 0.0
    return float(cov_tp / math.sqrt(cov_tt * cov_pp))


def _floats(x: Any) -> np.ndarray:
    arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    return arr.astype(np.float64).reshape(-1)


def pearson(predictions: Any, references: Any) -> float:
    """Pearson correlation coefficient; ``nan`` when either side is constant (as SciPy)."""
    x, y = _floats(predictions), _floats(references)
    if x.size != y.size:
        raise ValueError(f"{x.size} predictions for {y.size} references")
    if x.size < 2:
        raise ValueError("correlation needs at least two values")
    dx, dy = x - x.mean(), y - y.mean()
    denom = math.sqrt(float(np.dot(dx, dx)) * float(np.dot(dy, dy)))
    if denom == 0.0:
        return float("nan")
    value = float(np.dot(dx, dy)) / denom
    return max(-1.0, min(1.0, value))


def rankdata(values: Any) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span."""
    x = _floats(values)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    ranks = np.empty(x.size, dtype=np.float64)
    # boundaries of runs of equal values in sorted order
    starts = np.flatnonzero(np.concatenate([[True], sorted_x[1:] != sorted_x[:-1]]))
    ends = np.concatenate([starts[1:], [x.size]])
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + 1 + e) / 2.0  # mean of ranks s+1 .. e
    return ranks


def spearman(predictions: Any, references: Any) -> float:
    """Spearman rank correlation: Pearson on average ranks (ties handled as SciPy)."""
    return pearson(rankdata(predictions), rankdata(references))


def multi_label_scores(predictions: Any, references: Any, *, threshold: float = 0.0) -> dict[str, float]:
    """Multi-label: ``predictions`` are logits (positive when ``> threshold``; pass 0.5 for
    probabilities) or 0/1; returns micro F1, macro F1 (over labels) and subset accuracy."""
    p = _floats(predictions).reshape(np.shape(predictions)) > threshold
    r = _floats(references).reshape(np.shape(references)) > 0.5
    if p.shape != r.shape or p.ndim != 2:
        raise ValueError(f"multi-label predictions {p.shape} and references {r.shape} must be equal 2-D shapes")
    tp = float(np.sum(p & r))
    micro = _prf(tp, float(p.sum()), float(r.sum()))[2]
    per_label = [_prf(float(np.sum(p[:, j] & r[:, j])), float(p[:, j].sum()), float(r[:, j].sum()))[2]
                 for j in range(p.shape[1])]
    return {"f1_micro": micro, "f1_macro": float(np.mean(per_label)),
            "subset_accuracy": float(np.mean(np.all(p == r, axis=1)))}


# --------------------------------------------------------------------------------------------------
# entity-level scores (seqeval default mode)
# --------------------------------------------------------------------------------------------------

# tag transitions that close the running chunk / open a new one (conlleval rules, as seqeval)
_CLOSE_AFTER = {"E", "S"}
_CLOSING_PAIRS = {("B", "B"), ("B", "S"), ("B", "O"), ("I", "B"), ("I", "S"), ("I", "O")}
_OPEN_TAGS = {"B", "S"}
_OPENING_PAIRS = {("E", "E"), ("E", "I"), ("S", "E"), ("S", "I"), ("O", "E"), ("O", "I")}
_NEUTRAL = {"O", "."}


def _split_tag(label: str) -> tuple[str, str]:
    """``"B-creative-work"`` -> ``("B", "creative-work")``; the type is what follows the first
    ``-`` after the prefix character (``"_"`` when empty)."""
    if not isinstance(label, str) or not label:
        raise ValueError(f"bad tag {label!r}")
    rest = label[1:]
    typ = rest.split("-", 1)[-1] if rest else ""
    return label[0], typ or "_"


def get_entities(tags: Sequence[str] | Sequence[Sequence[str]]) -> list[tuple[str, int, int]]:
    """Entities ``(type, first, last)`` (inclusive) in a tag sequence, or in a list of sequences
    (positions then count across sentences, with an ``O`` between sentences)."""
    if any(isinstance(t, (list, tuple)) for t in tags):
        flat: list[str] = []
        for sent in tags:
            flat.extend(sent)
            flat.append("O")
    else:
        flat = list(tags)  # type: ignore[arg-type]
    entities: list[tuple[str, int, int]] = []
    prev_prefix, prev_type = "O", ""
    begin = 0
    for i, label in enumerate(flat + ["O"]):
        prefix, typ = _split_tag(label)
        closes = (
            prev_prefix in _CLOSE_AFTER
            or (prev_prefix, prefix) in _CLOSING_PAIRS
            or (prev_prefix not in _NEUTRAL and prev_type != typ)
        )
        if closes:
            entities.append((prev_type, begin, i - 1))
        opens = (
            prefix in _OPEN_TAGS
            or (prev_prefix, prefix) in _OPENING_PAIRS
            or (prefix not in _NEUTRAL and prev_type != typ)
        )
        if opens:
            begin = i
        prev_prefix, prev_type = prefix, typ
    return entities


def _check_sequences(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predicted sentences for {len(references)} reference sentences")
    for i, (p, r) in enumerate(zip(predictions, references)):
        if len(p) != len(r):
            raise ValueError(f"sentence {i}: {len(p)} predicted tags for {len(r)} reference tags")


def entity_scores(
    predictions: Sequence[Sequence[str]],
    references: Sequence[Sequence[str]],
    *,
    per_type: bool = False,
) -> dict[str, Any]:
    """Entity-level micro precision / recall / F1 (an entity counts when type, start and end all
    match), equal to ``seqeval.metrics.{precision,recall,f1}_score`` in default mode. With
    ``per_type`` also ``{"per_type": {type: {"precision", "recall", "f1", "support"}}}``."""
    _check_sequences(predictions, references)
    true_by_type: dict[str, set[tuple[int, int]]] = collections.defaultdict(set)
    pred_by_type: dict[str, set[tuple[int, int]]] = collections.defaultdict(set)
    for typ, s, e in get_entities([list(r) for r in references]):
        true_by_type[typ].add((s, e))
    for typ, s, e in get_entities([list(p) for p in predictions]):
        pred_by_type[typ].add((s, e))
    types = sorted(set(true_by_type) | set(pred_by_type))
    tp = sum(len(true_by_type[t] & pred_by_type[t]) for t in types)
    n_pred = sum(len(pred_by_type[t]) for t in types)
    n_true = sum(len(true_by_type[t]) for t in types)
    precision, recall, f1 = _prf(tp, n_pred, n_true)
    out: dict[str, Any] = {"precision": precision, "recall": recall, "f1": f1, "support": n_true}
    if per_type:
        out["per_type"] = {}
        for t in types:
            p_, r_, f_ = _prf(len(true_by_type[t] & pred_by_type[t]), len(pred_by_type[t]), len(true_by_type[t]))
            out["per_type"][t] = {"precision": p_, "recall": r_, "f1": f_, "support": len(true_by_type[t])}
    return out


def token_accuracy(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> float:
    """Fraction of tokens whose tag matches (``seqeval.metrics.accuracy_score``)."""
    _check_sequences(predictions, references)
    total = sum(len(r) for r in references)
    if total == 0:
        raise ValueError("no tokens")
    return sum(p == r for ps, rs in zip(predictions, references) for p, r in zip(ps, rs)) / total


# --------------------------------------------------------------------------------------------------
# SQuAD
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
# dispatcher
# --------------------------------------------------------------------------------------------------


def compute_metrics(
    task: str,
    predictions: Any,
    references: Any,
    *,
    problem_type: str = "single_label_classification",
    num_labels: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Metrics for a task.

    * ``classification``: ``predictions`` are logits or class ids; ``accuracy``, ``f1`` (binary
      F1 of class 1 with two classes, macro F1 otherwise), ``f1_macro``, ``matthews_correlation``.
      ``problem_type="regression"`` (or task ``"regression"``): ``pearson``, ``spearman``, ``mse``;
      ``"multi_label_classification"`` (or task ``"multi_label"``): see :func:`multi_label_scores`
      (``threshold`` option: logits > 0 by default; 0/1 predictions work as is).
    * ``token_classification``: tag-string sequences; ``precision``, ``recall``, ``f1``
      (entity-level, as seqeval), ``accuracy`` (per token); ``per_type=True`` adds per-type scores.
    * ``question_answering``: ``{id: text}`` predictions; ``exact_match``, ``f1`` (+ splits).
    * ``multiple_choice``: logits ``(n, choices)`` or ids; ``accuracy``.
    """
    from fnet.data.tasks import _PROBLEM_ALIASES, canonical_task  # local: keep this module light

    name = canonical_task(task)
    if name == "classification":
        problem_type = _PROBLEM_ALIASES.get(task.strip().lower().replace("-", "_"), problem_type)
        if problem_type == "regression":
            x, y = _floats(predictions), _floats(references)
            return {"pearson": pearson(x, y), "spearman": spearman(x, y), "mse": float(np.mean((x - y) ** 2))}
        if problem_type == "multi_label_classification":
            return multi_label_scores(predictions, references, **options)
        p, r = _pair(predictions, references)
        k = num_labels
        if k is None:
            shape = np.shape(predictions)
            k = shape[-1] if len(shape) == 2 else len(np.unique(np.concatenate([p, r])))
        out = {"accuracy": accuracy(p, r), "f1_macro": f1_score(p, r, average="macro"),
               "matthews_correlation": matthews_corrcoef(p, r)}
        out["f1"] = f1_score(p, r, average="binary") if k <= 2 else out["f1_macro"]
        return out
    if name == "token_classification":
        scores = entity_scores(predictions, references, per_type=bool(options.get("per_type", False)))
        scores["accuracy"] = token_accuracy(predictions, references)
        return scores
    if name == "question_answering":
        return squad_scores(predictions, references)
    return {"accuracy": accuracy(predictions, references)}
