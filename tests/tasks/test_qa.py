"""SQuAD reader, sliding-window QA featurization and n-best span decoding.

The headline check feeds "gold" logits (a large value at the gold start / end token of each window,
CLS elsewhere) through featurization and post-processing and requires the decoded text to equal
the gold answer for every answerable question whose answer lies fully inside some window and whose
ends fall on token boundaries (a token-level decoder cannot produce "nfluenza" out of "influenza";
the counts of such gold spans are printed). Decoded spans are stripped of surrounding whitespace
(SentencePiece offsets include the space before ``▁word``; COVID-QA gold texts carry stray spaces),
so gold is compared after ``str.strip()`` and nothing else.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from fnet.tasks.question_answering import (
    QAExample,
    QAExamples,
    answer_char_span,
    gold_texts,
    postprocess_qa_predictions,
    prepare_qa_features,
    read_squad,
    squad_scores,
)
from conftest import SHARED_DATA

SHARED = SHARED_DATA  # ../shared/data, or $FNET_SHARED_DATA (tests/conftest.py)

CORPUS = [
    "The Denver Broncos defeated the Carolina Panthers in Super Bowl 50 to earn their third title.",
    "The game was played on February 7, 2016, at Levi's Stadium in Santa Clara, California.",
    "Mother-to-child transmission is the main cause of HIV-1 infection in children worldwide.",
    "Coronaviruses are enveloped viruses with a positive-sense single-stranded RNA genome.",
    "Who won the game? Where was it played? What is the main cause of the infection?",
] * 4


def make_tokenizer(kind: str, corpus, vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
    if kind == "unigram":  # SentencePiece-like: "▁word" offsets include the preceding space
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>")
    else:  # BERT-like WordPiece
        tok = Tokenizer(models.WordPiece(unk_token="<unk>"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials)
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, cls_token="[CLS]", sep_token="[SEP]", pad_token="<pad>", unk_token="<unk>",
        mask_token="[MASK]", model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


@pytest.fixture(scope="module", params=["unigram", "wordpiece"])
def small_tokenizer(request):
    return make_tokenizer(request.param, CORPUS, 200)


def write_json(tmp_path: Path, name: str, obj) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(obj, indent=1), encoding="utf-8")
    return path


def squad_doc(qas, context="The Denver Broncos won Super Bowl 50 in Santa Clara."):
    return {"version": "v2.0", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}


# --------------------------------------------------------------------------------------------------
# reader
# --------------------------------------------------------------------------------------------------


def test_read_squad_v1_and_v2(tmp_path):
    qas = [{"id": "a", "question": "Who won?", "answers": [{"text": "Denver Broncos", "answer_start": 4}]},
           {"id": 7, "question": "Who lost?", "answers": [], "is_impossible": True}]
    ex = read_squad(write_json(tmp_path, "s.json", squad_doc(qas)))
    assert ex.version_2_with_negative
    assert [e.id for e in ex] == ["a", "7"]  # ids are strings
    assert ex[1].is_impossible and ex[1].answers == []
    v1 = read_squad(write_json(tmp_path, "v1.json", squad_doc(qas[:1])))
    assert not v1.version_2_with_negative and v1[0].answers == [{"text": "Denver Broncos", "answer_start": 4}]


def test_answer_mismatch_error_fix_and_skip(tmp_path):
    qas = [{"id": "q1", "question": "Who won?", "answers": [{"text": "Denver Broncos", "answer_start": 5}]}]
    path = write_json(tmp_path, "m.json", squad_doc(qas))
    with pytest.raises(ValueError) as err:
        read_squad(path)
    msg = str(err.value)
    assert str(path) in msg and "data[0].paragraphs[0].qas[0].answers[0]" in msg and "'q1'" in msg
    assert "'Denver Broncos'" in msg and "'enver Broncos '" in msg and "--answer-mismatch fix" in msg
    fixed = read_squad(path, on_mismatch="fix")
    assert fixed[0].answers == [{"text": "Denver Broncos", "answer_start": 4}] and fixed.fixed == 1
    assert "answer_start 5 -> 4" in fixed.problems[0]
    far = [{"id": "q1", "question": "Who?", "answers": [{"text": "Clara", "answer_start": 2},
                                                         {"text": "Denver", "answer_start": 4}]}]
    far_path = write_json(tmp_path, "far.json", squad_doc(far))
    kept = read_squad(far_path, on_mismatch="fix", max_shift=10)  # "Clara" is 42 chars away: dropped
    assert kept[0].answers == [{"text": "Denver", "answer_start": 4}] and kept.skipped == 1
    assert read_squad(far_path, on_mismatch="fix", max_shift=64)[0].answers[0]["answer_start"] == 46
    skipped = read_squad(far_path, on_mismatch="skip")
    assert len(skipped[0].answers) == 1 and skipped.skipped == 1


@pytest.mark.parametrize("qas,where,what", [
    ([{"id": "a", "question": " ", "answers": []}], "qas[0]", "empty 'question'"),
    ([{"id": "a", "question": "q", "answers": []}], "qas[0]", "answerable question with no answers"),
    ([{"id": "a", "question": "q", "answers": [{"text": "The", "answer_start": -3}]}], "answers[0]",
     "bad answer_start -3"),
    ([{"id": "a", "question": "q", "answers": [{"text": "The"}]}], "answers[0]", "'answer_start'"),
    ([{"id": "a", "question": "q", "answers": [{"text": "The", "answer_start": 0}]},
      {"id": "a", "question": "q", "answers": [{"text": "The", "answer_start": 0}]}], "qas[1]", "duplicate"),
    ([{"question": "q", "answers": []}], "qas[0]", "missing 'id'"),
])
def test_squad_malformed(tmp_path, qas, where, what):
    path = write_json(tmp_path, "bad.json", squad_doc(qas))
    with pytest.raises(ValueError) as err:
        read_squad(path)
    assert str(path) in str(err.value) and where in str(err.value) and what in str(err.value), str(err.value)


def test_squad_invalid_json_names_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"data": [\n  {"paragraphs": []},\n  oops\n]}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.json:3: invalid JSON"):
        read_squad(path)
    with pytest.raises(ValueError, match="'data' list"):
        read_squad(write_json(tmp_path, "nodata.json", {"version": 1}))


# --------------------------------------------------------------------------------------------------
# windows
# --------------------------------------------------------------------------------------------------

LONG_CONTEXT = " ".join(
    f"Sentence {i} says the Denver Broncos played game {i} in Santa Clara." for i in range(40)
)


def _examples():
    target = "game 23 in Santa Clara"
    start = LONG_CONTEXT.index(target)
    return [
        QAExample(id="ans", question="  Where was game 23 played?", context=LONG_CONTEXT,
                  answers=[{"text": target, "answer_start": start}]),
        QAExample(id="none", question="Who sang?", context=LONG_CONTEXT, answers=[], is_impossible=True),
    ]


def test_windows_overlap_and_targets(small_tokenizer):
    tok = small_tokenizer
    exs = _examples()
    max_length, stride = 64, 16
    feats = prepare_qa_features(exs, tok, max_length=max_length, stride=stride)
    meta = feats.meta
    n = feats.num_rows
    assert feats["input_ids"].shape[1] == max_length and n > 6
    assert meta["example_id"].count("ans") > 3 and meta["example_id"].count("none") > 3
    assert meta["example_id"] == ["ans" if k == 0 else "none" for k in meta["example_index"]]
    ids = feats["input_ids"].tolist()
    starts, ends = feats["start_positions"].tolist(), feats["end_positions"].tolist()
    hits = 0
    prev_ctx = None
    for i in range(n):
        offs = meta["offset_mapping"][i]
        assert len(offs) == max_length
        assert meta["cls_index"][i] == 0 and ids[i][0] == tok.cls_token_id
        ctx_tokens = [t for t, o in enumerate(offs) if o is not None]
        # the question and the special tokens carry no offsets: context tokens come after the first SEP
        assert ctx_tokens[0] > ids[i].index(tok.sep_token_id)
        ctx_ids = [ids[i][t] for t in ctx_tokens]
        if prev_ctx is not None and meta["example_index"][i] == meta["example_index"][i - 1]:
            assert prev_ctx[-stride:] == ctx_ids[:stride]  # consecutive windows share `stride` tokens
        prev_ctx = ctx_ids
        ex = exs[meta["example_index"][i]]
        if ex.is_impossible:
            assert starts[i] == ends[i] == 0
            continue
        a, b = answer_char_span(ex.answers[0])
        inside = offs[ctx_tokens[0]][0] <= a and b <= offs[ctx_tokens[-1]][1]
        if inside:
            hits += 1
            assert LONG_CONTEXT[offs[starts[i]][0]:offs[ends[i]][1]].strip() == ex.answers[0]["text"]
        else:
            assert starts[i] == ends[i] == 0
    assert hits >= 1
    # decoding the gold targets recovers the answer; the unanswerable question gets "" in v2 mode
    s = np.full((n, max_length), -5.0)
    e = np.full((n, max_length), -5.0)
    s[np.arange(n), starts] = 5.0
    e[np.arange(n), ends] = 5.0
    preds = postprocess_qa_predictions(exs, feats, s, e, version_2_with_negative=True)
    assert preds == {"ans": "game 23 in Santa Clara", "none": ""}


# --------------------------------------------------------------------------------------------------
# n-best decoding on hand-made windows
# --------------------------------------------------------------------------------------------------

CONTEXT = "alpha beta gamma delta epsilon"
#          0     6    11    17    23


def _meta(windows):
    """Two-window layout by hand: token 0 = CLS, tokens 1-2 = question, then context words."""
    spans = [(0, 5), (6, 10), (11, 16), (17, 22), (23, 30)]
    offsets, index = [], []
    for words in windows:
        row = [None, None, None] + [spans[w] for w in words]
        offsets.append(row + [None] * (8 - len(row)))
        index.append(0)
    return {"example_index": index, "example_id": ["x"] * len(windows), "offset_mapping": offsets,
            "cls_index": [0] * len(windows)}


def _logits(n_windows, marks):
    arr = np.zeros((n_windows, 8))
    for (w, t), v in marks.items():
        arr[w, t] = v
    return arr


EX = [QAExample(id="x", question="q", context=CONTEXT, answers=[])]


def test_decoding_prefers_best_valid_span_across_windows():
    meta = _meta([[0, 1, 2], [2, 3, 4]])  # window 1 token 3 = "gamma", token 5 = "epsilon"
    start = _logits(2, {(0, 1): 9.0, (0, 4): 3.0, (1, 3): 4.0})  # (0,1) is a question token: ignored
    end = _logits(2, {(0, 2): 9.0, (0, 4): 1.0, (1, 5): 4.5})
    assert postprocess_qa_predictions(EX, meta, start, end) == {"x": "gamma delta epsilon"}
    # 3 tokens is too long for max_answer_length=2: "delta epsilon" (0 + 4.5) beats "gamma" (3 + 1)
    assert postprocess_qa_predictions(EX, meta, start, end, max_answer_length=2)["x"] == "delta epsilon"
    assert postprocess_qa_predictions(EX, meta, start, end, max_answer_length=1)["x"] == "epsilon"
    # an end before the start is never paired: (epsilon -> gamma) would score 20
    start2 = _logits(2, {(1, 5): 10.0})
    end2 = _logits(2, {(1, 3): 10.0, (1, 5): 1.0})
    assert postprocess_qa_predictions(EX, meta, start2, end2, max_answer_length=5)["x"] == "epsilon"


def test_null_score_threshold_v2():
    meta = _meta([[0, 1, 2, 3]])
    start = _logits(1, {(0, 0): 4.0, (0, 4): 3.0})
    end = _logits(1, {(0, 0): 4.0, (0, 5): 3.0})  # null 8 vs span "beta gamma" 6
    assert postprocess_qa_predictions(EX, meta, start, end, version_2_with_negative=True)["x"] == ""
    assert postprocess_qa_predictions(EX, meta, start, end, version_2_with_negative=True,
                                      null_score_diff_threshold=2.5)["x"] == "beta gamma"
    assert postprocess_qa_predictions(EX, meta, start, end, version_2_with_negative=False)["x"] == "beta gamma"
    preds, nbest = postprocess_qa_predictions(EX, meta, start, end, version_2_with_negative=True,
                                              return_nbest=True, n_best_size=3)
    assert nbest["x"][0]["text"] == "" and nbest["x"][0]["score"] == 8.0
    assert nbest["x"][1] == {"text": "beta gamma", "score": 6.0, "start_logit": 3.0, "end_logit": 3.0, "window": 0}
    scores = [c["score"] for c in nbest["x"]]
    assert scores == sorted(scores, reverse=True)


def test_null_score_is_the_smallest_over_windows():
    # window 0: null 3+3=6, best span 1.5+1.5=3; window 1: null -1-1=-2, best span 2+2=4.
    # The example's null score is the smallest (-2), so the span (4) wins; using the first or the
    # largest window null score (6) would wrongly answer "".
    meta = _meta([[0, 1], [2, 3]])
    start = _logits(2, {(0, 0): 3.0, (0, 3): 1.5, (1, 0): -1.0, (1, 4): 2.0})
    end = _logits(2, {(0, 0): 3.0, (0, 4): 1.5, (1, 0): -1.0, (1, 4): 2.0})
    assert postprocess_qa_predictions(EX, meta, start, end, version_2_with_negative=True)["x"] == "delta"


def test_decoding_rejects_mismatched_logits():
    meta = _meta([[0, 1]])
    with pytest.raises(ValueError):
        postprocess_qa_predictions(EX, meta, np.zeros((2, 8)), np.zeros((2, 8)))


# --------------------------------------------------------------------------------------------------
# gold spans recovered on real files
# --------------------------------------------------------------------------------------------------


def _shared(rel: str) -> Path:
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"{path} is absent (shared data is only on development and CI machines)")
    return path


@pytest.fixture(scope="module", params=["unigram", "wordpiece"])
def real_tokenizer(request):
    botchan = SHARED / "corpus" / "en" / "botchan.txt"
    corpus = botchan.read_text(encoding="utf-8").splitlines() if botchan.exists() else CORPUS
    return make_tokenizer(request.param, corpus, 4000)


def _gold_recovery(examples: QAExamples, tokenizer, max_length: int, stride: int, groups: int | None = None):
    """(questions, fully inside a window, of those on token boundaries, recovered exactly)."""
    by_context: dict[str, list[QAExample]] = {}
    for ex in examples:
        for k, answer in enumerate(ex.answers):  # every gold answer becomes its own target
            one = QAExample(id=f"{ex.id}#{k}", question=ex.question, context=ex.context, answers=[answer])
            by_context.setdefault(ex.context, []).append(one)
    items = list(by_context.values())
    if groups is not None:
        items = items[:: max(1, len(items) // groups)]
    batch: list[QAExample] = []
    total = inside = aligned = recovered = 0
    failures = []

    def run(batch):
        nonlocal total, inside, aligned, recovered
        feats = prepare_qa_features(batch, tokenizer, max_length=max_length, stride=stride)
        starts = feats["start_positions"].numpy()
        ends = feats["end_positions"].numpy()
        n, length = feats["input_ids"].shape
        s = np.zeros((n, length))
        e = np.zeros((n, length))
        s[np.arange(n), starts] = 10.0
        e[np.arange(n), ends] = 10.0
        preds = postprocess_qa_predictions(batch, feats, s, e, max_answer_length=max_length,
                                           version_2_with_negative=True)
        window = {}
        for i in range(n):
            if starts[i] != feats.meta["cls_index"][i]:
                window.setdefault(feats.meta["example_index"][i], i)
        for j, ex in enumerate(batch):
            total += 1
            if j not in window:
                continue
            inside += 1
            i = window[j]
            offs = feats.meta["offset_mapping"][i]
            a, b = answer_char_span(ex.answers[0])
            s0, e1 = offs[starts[i]][0], offs[ends[i]][1]
            on_boundaries = s0 <= a and not ex.context[s0:a].strip() and e1 == b
            gold = ex.answers[0]["text"].strip()
            if on_boundaries:
                aligned += 1
                if preds[ex.id] == gold:
                    recovered += 1
                else:
                    failures.append((ex.id, preds[ex.id], gold))

    for group in items:
        batch.extend(group)
        if len(batch) >= 64:
            run(batch)
            batch = []
    if batch:
        run(batch)
    return total, inside, aligned, recovered, failures


def test_gold_spans_recovered_xquad(real_tokenizer):
    examples = read_squad(_shared("qa/xquad_en.json"))
    total, inside, aligned, recovered, failures = _gold_recovery(examples, real_tokenizer, 384, 128)
    print(f"xquad_en: {total} answers, {inside} inside a window, {aligned} on token boundaries, "
          f"{recovered} recovered exactly")
    assert total == 1190 and inside == total
    assert failures == [] and recovered == aligned
    assert aligned >= 0.9 * total


def test_gold_spans_recovered_covid_qa(real_tokenizer):
    path = _shared("qa/covid_qa.json")
    examples = read_squad(path, on_mismatch="fix")  # 234 offsets off by 1-3 characters are repaired
    assert examples.fixed == 234 and examples.skipped == 0
    full = os.environ.get("FNET_QA_FULL") == "1"
    total, inside, aligned, recovered, failures = _gold_recovery(
        examples, real_tokenizer, 512, 128, groups=None if full else 6)
    print(f"covid_qa{'' if full else ' (every 16th of 98 articles; FNET_QA_FULL=1 for all)'}: {total} answers, "
          f"{inside} inside a window, {aligned} on token boundaries, {recovered} recovered exactly")
    assert failures == [] and recovered == aligned
    assert inside >= 0.95 * total and aligned >= 0.8 * total


def test_squad_scores_of_gold_decoding_are_perfect(real_tokenizer):
    examples = read_squad(_shared("qa/xquad_en.json"))
    subset = QAExamples(examples=examples.examples[:150], version_2_with_negative=False)
    feats = prepare_qa_features(subset, real_tokenizer, max_length=256, stride=64)
    n, length = feats["input_ids"].shape
    s = np.zeros((n, length))
    e = np.zeros((n, length))
    s[np.arange(n), feats["start_positions"].numpy()] = 10.0
    e[np.arange(n), feats["end_positions"].numpy()] = 10.0
    preds = postprocess_qa_predictions(subset, feats, s, e, max_answer_length=64)
    scores = squad_scores(preds, gold_texts(subset))
    # token-level decoding loses at most a few mis-aligned characters ("powiats." vs "powiats")
    assert scores["f1"] > 95.0 and scores["exact_match"] > 80.0


def test_gold_spans_recovered_with_fnet_tokenizer():
    """The project's own SentencePiece tokenizer (real 1k-piece model) through the same check."""
    model = _shared("tokenizers/sentencepiece_test_en_1k.model")
    from fnet.tokenization import FNetTokenizer

    examples = read_squad(_shared("qa/xquad_en.json"))
    titles = set(list(dict.fromkeys(ex.title for ex in examples))[:10])  # the first ten articles
    subset = QAExamples(examples=[ex for ex in examples if ex.title in titles], version_2_with_negative=False)
    total, inside, aligned, recovered, failures = _gold_recovery(subset, FNetTokenizer(model), 384, 128)
    print(f"xquad_en with FNetTokenizer: {total} answers, {inside} inside, {aligned} aligned, {recovered} recovered")
    assert total >= 250 and inside == total and failures == [] and recovered == aligned >= 0.95 * total
