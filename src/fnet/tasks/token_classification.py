"""Token classification (NER, tagging): CoNLL files, sub-token alignment, entity-level F1.

Reader: one token per line, the tag in a column, blank lines between sentences. Featurization
labels the first sub-token of each word (later ones get ``-100``); a sentence longer than the
input length is split into overlapping windows, and decoding takes each word's tag from its first
sub-token in the window where it has the most context, so every word is scored. Metrics are
entity-level precision / recall / F1 identical to ``seqeval``'s default (conlleval-style, lenient)
mode, and token accuracy.

Legend: b rows, n tokens, k tags.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from fnet.lazy import numpy as np  # imported on first use: the CLI reads this module for its flags

from fnet.data.features import IGNORE_INDEX, Features, model_inputs
from fnet.data.rows import file_error
from fnet.options import option
from fnet.tasks.base import ExportHead, ReaderOptions, TaskFamily, eval_scores
import fnet.tasks.metrics as M

if TYPE_CHECKING:
    from fnet.data.tokenizer import Tokenizer

__all__ = ["TokenClassificationExamples", "TokenClassificationReaderOptions", "read_conll",
           "featurize_token_classification", "window_overlap", "word_ids_from_offsets", "token_predictions_to_tags",
           "get_entities", "entity_scores", "token_accuracy", "TokenClassification"]


@dataclass
class TokenClassificationExamples:
    """Sentences as word lists with one tag per word; ``label_names`` is the tag vocabulary."""

    sentences: list[list[str]]
    tags: list[list[str]]
    label_names: list[str]
    source: str = ""

    def __len__(self) -> int:
        return len(self.sentences)

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.label_names)}

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.label_names))



@dataclass
class TokenClassificationReaderOptions(ReaderOptions):
    """How to read a CoNLL file (no CLI flags: CoNLL has one layout)."""

    token_column: int = option(0, "field holding the token", cli=False)
    tag_column: int = option(-1, "field holding the tag (default: the last)", cli=False)
    # the tag vocabulary (a tag outside it is an error); default: O, then the seen tags by type
    label_names: list[str] | None = option(None, "the tag list, in id order", cli=False)
    validate_tags: bool = option(True, "every tag must be O or B-/I-/E-/S- + type", cli=False)
    encoding: str = option("utf-8", "text encoding of the file", cli=False)


# --------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------

_TAG_RE = re.compile(r"^(O|[BIES]-\S+)$")
_PREFIX_ORDER = {"B": 0, "I": 1, "E": 2, "S": 3}


def _sort_tags(tags: set[str]) -> list[str]:
    """``O`` first, then by entity type, ``B`` before ``I`` (before ``E``, ``S``)."""
    def key(t: str) -> tuple:
        if t == "O":
            return (0, "", 0)
        prefix, _, typ = t.partition("-")
        return (1, typ, _PREFIX_ORDER.get(prefix, 9), t)
    return sorted(tags, key=key)


def read_conll(path: str | Path, options: TokenClassificationReaderOptions | None = None,
               **overrides: Any) -> TokenClassificationExamples:
    """Read CoNLL-style token tagging data (options: :class:`TokenClassificationReaderOptions`, or
    its fields as keywords).

    One token per line, fields separated by whitespace or tabs, the tag in ``tag_column`` (last by
    default); a blank line ends a sentence; ``-DOCSTART-`` lines are skipped. With ``validate_tags``
    every tag must be ``O`` or ``B-``/``I-``/``E-``/``S-`` + type. ``label_names`` fixes the tag
    vocabulary (a tag outside it is an error); by default it is ``O`` then the seen tags by type.
    """
    options = dataclasses.replace(options or TokenClassificationReaderOptions(), **overrides)
    token_column, tag_column, label_names = options.token_column, options.tag_column, options.label_names
    path = Path(path)
    sentences: list[list[str]] = []
    all_tags: list[list[str]] = []
    words: list[str] = []
    tags: list[str] = []
    known = set(label_names) if label_names is not None else None
    ncols: int | None = None

    def flush() -> None:
        nonlocal words, tags
        if words:
            sentences.append(words)
            all_tags.append(tags)
        words, tags = [], []

    with open(path, encoding=options.encoding) as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\n").rstrip("\r")
            if not line.strip():
                flush()
                continue
            fields = line.split("\t") if "\t" in line else line.split()
            fields = [x.strip() for x in fields]
            if fields[0].startswith("-DOCSTART-"):
                flush()
                continue
            if len(fields) < 2:
                raise file_error(path, lineno, f"expected a token and a tag, found {len(fields)} field(s): {line!r}")
            if ncols is None:
                ncols = len(fields)
            elif len(fields) != ncols:
                raise file_error(path, lineno, f"expected {ncols} fields like the lines before, found {len(fields)}")
            try:
                token, tag = fields[token_column], fields[tag_column]
            except IndexError:
                raise file_error(path, lineno, f"no column {tag_column} / {token_column} in {len(fields)} fields") from None
            if not token:
                raise file_error(path, lineno, "empty token")
            if options.validate_tags and not _TAG_RE.match(tag):
                raise file_error(path, lineno, f"bad tag {tag!r}: expected O or B-/I-/E-/S- followed by a type")
            if known is not None and tag not in known:
                raise file_error(path, lineno, f"unknown tag {tag!r} (known: {sorted(known)})")
            words.append(token)
            tags.append(tag)
    flush()
    if not sentences:
        raise file_error(path, None, "no sentences")
    names = list(label_names) if label_names is not None else _sort_tags({t for ts in all_tags for t in ts} | {"O"})
    return TokenClassificationExamples(sentences=sentences, tags=all_tags, label_names=names, source=str(path))


# --------------------------------------------------------------------------------------------------
# featurization and decoding
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


def window_overlap(max_length: int, stride: int) -> int:
    """Tokens shared by consecutive windows of a long sentence: ``stride``, at most half a window (so
    every window moves on by at least half its length)."""
    return max(0, min(stride, (max_length - 2) // 2))


def featurize_token_classification(
    examples: TokenClassificationExamples,
    tokenizer: Tokenizer,
    max_length: int = 128,
    *,
    stride: int = 128,
    padding: str | bool = "max_length",
    label_all_subtokens: bool = False,
) -> Features:
    """Tokenize ``" ".join(words)`` per sentence and align word tags to sub-tokens.

    A sentence longer than ``max_length`` tokens becomes several rows (windows) that overlap by
    :func:`window_overlap` tokens, so every word is read and scored; each window is a training row.
    The first sub-token of each word gets the word's tag id; later sub-tokens (unless
    ``label_all_subtokens``; a window that starts inside a word labels none of its pieces), special
    tokens and padding get ``-100``. Words that produce no sub-token (dropped characters) get no label;
    decoding predicts ``O`` for them. ``meta``: ``word_ids`` (token -> word, per row), ``row_sample``
    (row -> sentence), ``first_token`` (per row, True where a token is its word's first sub-token),
    ``num_words`` and ``long_sentences`` (sentences split into windows).
    """
    import torch

    label2id = examples.label2id
    texts = [" ".join(words) for words in examples.sentences]
    enc = tokenizer(
        texts,
        padding=padding,
        truncation=True,
        max_length=max_length,
        stride=window_overlap(max_length, stride),
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        return_tensors="pt",
    )
    offsets = enc["offset_mapping"].tolist()
    row_sample = [int(s) for s in enc["overflow_to_sample_mapping"].tolist()]
    all_word_ids = [word_ids_from_offsets(examples.sentences[k], offsets[i], enc.sequence_ids(i))
                    for i, k in enumerate(row_sample)]
    # a word's first sub-token is the one that starts earliest in the text, whichever window holds it
    first_start: dict[tuple[int, int], int] = {}
    for i, k in enumerate(row_sample):
        for t, wid in enumerate(all_word_ids[i]):
            if wid is not None:
                key = (k, wid)
                first_start[key] = min(first_start.get(key, offsets[i][t][0]), offsets[i][t][0])
    first_token: list[list[bool]] = []
    for i, k in enumerate(row_sample):
        marked: set[int] = set()  # pieces of one character share its offsets: only the first one counts
        row_first = []
        for t, wid in enumerate(all_word_ids[i]):
            is_first = wid is not None and wid not in marked and offsets[i][t][0] == first_start[(k, wid)]
            if is_first:
                marked.add(wid)
            row_first.append(is_first)
        first_token.append(row_first)
    labels: list[list[int]] = []
    for i, k in enumerate(row_sample):
        tags = examples.tags[k] if examples.tags else None
        row: list[int] = []
        for t, wid in enumerate(all_word_ids[i]):
            if wid is None or tags is None or not (first_token[i][t] or label_all_subtokens):
                row.append(IGNORE_INDEX)
            else:
                row.append(label2id[tags[wid]])
        labels.append(row)
    windows = collections.Counter(row_sample)
    feats = Features(model_inputs(enc, getattr(tokenizer, "pad_token_id", None)),
                     meta={"word_ids": all_word_ids, "row_sample": row_sample, "first_token": first_token,
                           "num_words": [len(w) for w in examples.sentences],
                           "long_sentences": sum(1 for c in windows.values() if c > 1),
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
    array or nested lists). Each word takes the prediction at its first sub-token; when a long
    sentence was split into windows, from the window where that sub-token has the most context (the
    most tokens of the window on its shorter side). Words without a sub-token get ``default``. The
    result lines up with the original sentences, ready for :func:`fnet.tasks.metrics.entity_scores`.
    """
    import numpy as np

    meta = features.meta if isinstance(features, Features) else features
    names = list(label_names if label_names is not None else meta["label_names"])
    arr = predictions.detach().cpu().numpy() if hasattr(predictions, "detach") else np.asarray(predictions)
    if arr.ndim == 3:
        arr = arr.argmax(-1)
    word_ids = meta["word_ids"]
    row_sample = meta.get("row_sample", list(range(len(word_ids))))
    first_token = meta.get("first_token")
    out = [[default] * n for n in meta["num_words"]]
    best_context = [[-1] * n for n in meta["num_words"]]
    for i, (wids, k) in enumerate(zip(word_ids, row_sample)):
        real = [t for t, wid in enumerate(wids) if wid is not None]
        if not real:
            continue
        lo, hi = real[0], real[-1]  # the window's text tokens
        seen: set[int] = set()
        for t, wid in enumerate(wids):
            if wid is None or wid in seen or (first_token is not None and not first_token[i][t]):
                continue
            seen.add(wid)
            context = min(t - lo, hi - t)
            if context > best_context[k][wid]:
                best_context[k][wid] = context
                out[k][wid] = names[int(arr[i, t])]
    return out



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
    precision, recall, f1 = M.prf(tp, n_pred, n_true)
    out: dict[str, Any] = {"precision": precision, "recall": recall, "f1": f1, "support": n_true}
    if per_type:
        out["per_type"] = {}
        for t in types:
            p_, r_, f_ = M.prf(len(true_by_type[t] & pred_by_type[t]), len(pred_by_type[t]), len(true_by_type[t]))
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
# the family
# --------------------------------------------------------------------------------------------------


def token_classification_metrics(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]], *,
                                 per_type: bool = False, **options: Any) -> dict[str, Any]:
    """Tag-string sequences: ``precision``, ``recall``, ``f1`` (entity-level, as seqeval) and
    ``accuracy`` (per token); ``per_type=True`` adds per-type scores."""
    del options  # no other option applies to tags
    scores = entity_scores(predictions, references, per_type=per_type)
    scores["accuracy"] = token_accuracy(predictions, references)
    return scores


class TokenClassification(TaskFamily):
    name = "token_classification"
    aliases = {"ner": {}, "tagging": {}}
    model_class_name = "FNetForTokenClassification"
    options = TokenClassificationReaderOptions
    examples_type = TokenClassificationExamples
    export = ExportHead("token-classification", ("logits",))
    text_input = True

    def read(self, path: Any, options: TokenClassificationReaderOptions) -> TokenClassificationExamples:
        return read_conll(path, options)

    def featurize(self, examples: TokenClassificationExamples, tokenizer: Tokenizer, max_length: int = 128, *,
                  stride: int = 128, **options: Any) -> Features:
        return featurize_token_classification(examples, tokenizer, max_length, stride=stride, **options)

    def examples_from_texts(self, texts: Sequence[str], label_names: list[str]) -> TokenClassificationExamples:
        words = [t.split() for t in texts]
        return TokenClassificationExamples(sentences=words, tags=[["O"] * len(w) for w in words],
                                           label_names=label_names)

    def label_info(self, examples: TokenClassificationExamples) -> tuple[dict[str, Any], list[str]]:
        names = list(examples.label_names)
        return {"id2label": dict(enumerate(names))}, names

    def inherited_options(self, label_names: list[str] | None, problem_type: str | None) -> dict[str, Any]:
        del problem_type  # tags have one problem type
        return {"label_names": label_names} if label_names else {}

    def best_metric(self, problem_type: str | None) -> str:
        del problem_type
        return "eval_f1"

    def metrics(self, predictions: Any, references: Any, **options: Any) -> dict[str, Any]:
        return token_classification_metrics(predictions, references, **options)

    def score(self, examples: TokenClassificationExamples, features: Features, outputs: dict[str, np.ndarray],
              label_names: list[str], *, problem_type: str | None = None, max_answer_length: int = 30
              ) -> tuple[dict[str, float], list[dict]]:
        del problem_type, max_answer_length  # tags: one problem type, no spans
        tags = token_predictions_to_tags(outputs["logits"], features, label_names)  # logits (b, n, k)
        records: list[dict[str, Any]] = [{"tokens": toks, "tags": t} for toks, t in zip(examples.sentences, tags)]
        gold = [list(t) for t in examples.tags] if getattr(examples, "tags", None) else None
        scores = token_classification_metrics(tags, gold) if gold and any(gold) else {}
        if scores:
            scores["long_sentences"] = features.meta.get("long_sentences", 0)  # split into windows
        return eval_scores(scores), records
