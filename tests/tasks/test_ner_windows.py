"""Sentences longer than the input length: overlapping windows, every word scored, most-context decoding."""

from __future__ import annotations

import numpy as np
import pytest

from fnet.tasks import featurize, get_family
from fnet.tasks.token_classification import TokenClassificationExamples, token_predictions_to_tags, window_overlap
from test_readers import make_tokenizer


def _long_sentence():
    words = [f"w{i % 7}" if i % 5 else "fox" for i in range(60)]  # some words split into several pieces
    tags = ["B-X" if w == "fox" else "O" for w in words]
    short = (["the", "fox"], ["O", "B-X"])
    return TokenClassificationExamples(sentences=[short[0], words, short[0]], tags=[short[1], tags, short[1]],
                                       label_names=["O", "B-X"])


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer("wordpiece")


def test_long_sentence_is_windowed_and_every_word_is_labelled_once_per_window(tokenizer):
    ex = _long_sentence()
    feats = featurize("ner", ex, tokenizer, max_length=16, stride=6)
    rows = feats.meta["row_sample"]
    assert rows.count(0) == 1 and rows.count(2) == 1 and rows.count(1) > 3
    assert feats.meta["long_sentences"] == 1
    assert window_overlap(16, 6) == 6 and window_overlap(16, 128) == 7  # at most half a window
    # consecutive windows of the long sentence share `overlap` tokens
    long_rows = [i for i, k in enumerate(rows) if k == 1]
    ids = [feats["input_ids"][i][feats["attention_mask"][i].bool()].tolist()[1:-1] for i in long_rows]
    for a, b in zip(ids, ids[1:]):
        assert a[-6:] == b[:6]
    # every word is labelled in some window, with its own tag; decoding gold ids gives the gold tags
    covered = {feats.meta["word_ids"][i][t] for i in long_rows for t, lab in enumerate(feats["labels"][i].tolist())
               if lab != -100}
    assert covered == set(range(60))
    assert token_predictions_to_tags(feats["labels"].clamp(min=0), feats) == ex.tags


def test_each_word_takes_the_window_where_it_has_most_context(tokenizer):
    ex = _long_sentence()
    feats = featurize("ner", ex, tokenizer, max_length=16, stride=6)
    names = ["O"] + [f"B-row{i}" for i in range(feats.num_rows)]
    # row i predicts "B-row<i>" everywhere: the decoded tag names the window each word was read from
    preds = np.tile(np.arange(1, feats.num_rows + 1)[:, None], (1, feats["input_ids"].shape[1]))
    decoded = token_predictions_to_tags(preds, feats, names)[1]
    for w, tag in enumerate(decoded):
        chosen = int(tag[len("B-row"):])
        contexts = {}
        for i, (k, wids) in enumerate(zip(feats.meta["row_sample"], feats.meta["word_ids"])):
            if k != 1 or w not in wids:
                continue
            t = wids.index(w)
            if not feats.meta["first_token"][i][t]:
                continue
            real = [j for j, x in enumerate(wids) if x is not None]
            contexts[i] = min(t - real[0], real[-1] - t)
        assert contexts[chosen] == max(contexts.values()), (w, contexts, chosen)
    # words in an overlap are read where they sit mid-window, not at a window's edge
    assert len(set(decoded)) > 1 and any(len(c) > 1 for c in [decoded])


def test_scores_count_long_sentences_and_all_words(tokenizer):
    ex = _long_sentence()
    family = get_family("ner")
    feats = featurize("ner", ex, tokenizer, max_length=16, stride=6)
    logits = np.eye(2)[feats["labels"].clamp(min=0).numpy()]  # (b, n, k): the gold tags
    scores, records = family.score(ex, feats, {"logits": logits}, ex.label_names)
    assert scores["eval_long_sentences"] == 1.0
    assert scores["eval_f1"] == 1.0 and scores["eval_support"] == 2 + 12
    assert [r["tags"] for r in records] == ex.tags
