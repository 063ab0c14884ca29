"""Metrics against hand-computed values and the reference tools (seqeval; scikit-learn / SciPy
when installed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import SHARED_DATA
from fnet.tasks import compute_metrics
from fnet.tasks.question_answering import normalize_answer, squad_f1, squad_scores
from fnet.tasks.token_classification import entity_scores, get_entities, token_accuracy
from fnet.tasks.metrics import (
    accuracy,
    f1_score,
    matthews_corrcoef,
    multi_label_scores,
    pearson,
    rankdata,
    spearman,
)

SHARED = SHARED_DATA  # ../shared/data, or $FNET_SHARED_DATA (tests/conftest.py)


# --------------------------------------------------------------------------------------------------
# classification, hand-computed
# --------------------------------------------------------------------------------------------------


def test_binary_scores_hand_computed():
    refs = [1, 1, 1, 0, 0, 0, 0, 1]
    preds = [1, 0, 1, 0, 1, 0, 0, 1]
    # tp=3 fp=1 fn=1 tn=3
    assert accuracy(preds, refs) == pytest.approx(6 / 8)
    assert f1_score(preds, refs) == pytest.approx(0.75)
    assert matthews_corrcoef(preds, refs) == pytest.approx((3 * 3 - 1 * 1) / math.sqrt(4 * 4 * 4 * 4))
    # logits are argmaxed
    logits = np.array([[0.0, 1.0] if p else [1.0, 0.0] for p in preds])
    assert accuracy(logits, refs) == pytest.approx(0.75)


def test_macro_f1_and_mcc_multiclass_hand_computed():
    refs = [0, 0, 1, 1, 2, 2]
    preds = [0, 1, 1, 1, 2, 0]
    # class 0: tp1 fp1 fn1 -> 0.5; class 1: tp2 fp1 fn0 -> 0.8; class 2: tp1 fp0 fn1 -> 2/3
    assert f1_score(preds, refs, average="macro") == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert f1_score(preds, refs, average="micro") == pytest.approx(4 / 6)
    # Gorodkin: c=4, s=6, t=(2,2,2), p=(2,3,1)
    num = 4 * 6 - (2 * 2 + 2 * 3 + 2 * 1)
    den = math.sqrt((36 - 12) * (36 - (4 + 9 + 1)))
    assert matthews_corrcoef(preds, refs) == pytest.approx(num / den)


def test_degenerate_cases():
    assert matthews_corrcoef([1, 1, 1], [1, 1, 1]) == 0.0  # undefined -> 0, as sklearn
    assert f1_score([0, 0], [0, 0]) == 0.0  # no positives anywhere -> 0 (zero_division=0)
    with pytest.raises(ValueError):
        f1_score([0, 1, 2], [0, 1, 2], average="binary")
    with pytest.raises(ValueError):
        accuracy([0, 1], [0, 1, 1])
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))


def test_rankdata_average_ties():
    assert rankdata([10, 20, 20, 5, 20]).tolist() == [2.0, 4.0, 4.0, 1.0, 4.0]
    # Spearman of a monotone transform is 1 even with ties on both sides
    x = [1, 2, 2, 3, 4, 4, 4]
    assert spearman(x, np.exp(x)) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


def test_multi_label_scores():
    logits = [[2.0, -1.0, 0.5], [-1.0, -1.0, 3.0]]
    refs = [[1, 0, 0], [0, 0, 1]]
    out = multi_label_scores(logits, refs)
    # predicted positives: (0,0),(0,2),(1,2); true: (0,0),(1,2) -> p=2/3 r=1
    assert out["f1_micro"] == pytest.approx(0.8)
    assert out["subset_accuracy"] == pytest.approx(0.5)


# --------------------------------------------------------------------------------------------------
# classification vs scikit-learn / SciPy (when installed)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_classification_matches_sklearn(seed):
    skm = pytest.importorskip("sklearn.metrics", reason="scikit-learn not installed")
    rng = np.random.default_rng(seed)
    n_classes = [2, 3, 5][seed % 3]
    refs = rng.integers(0, n_classes, size=50 + seed)
    preds = np.where(rng.random(refs.size) < 0.6, refs, rng.integers(0, n_classes, size=refs.size))
    if seed == 5:
        preds[:] = 0  # a class never predicted
    assert accuracy(preds, refs) == pytest.approx(skm.accuracy_score(refs, preds))
    assert matthews_corrcoef(preds, refs) == pytest.approx(skm.matthews_corrcoef(refs, preds))
    assert f1_score(preds, refs, average="macro") == pytest.approx(
        skm.f1_score(refs, preds, average="macro", zero_division=0))
    if n_classes == 2:
        assert f1_score(preds, refs) == pytest.approx(skm.f1_score(refs, preds, zero_division=0))


@pytest.mark.parametrize("seed", range(8))
def test_correlations_match_scipy(seed):
    stats = pytest.importorskip("scipy.stats", reason="scipy not installed")
    rng = np.random.default_rng(100 + seed)
    x = rng.integers(0, 6, size=40).astype(float)  # many ties
    y = x + rng.normal(size=40)
    if seed % 2:
        y = np.round(y)  # ties on both sides
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    assert rankdata(y).tolist() == pytest.approx(stats.rankdata(y).tolist())


# --------------------------------------------------------------------------------------------------
# entity-level scores
# --------------------------------------------------------------------------------------------------


def test_get_entities_edge_cases():
    assert get_entities(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 1), ("LOC", 3, 3)]
    assert get_entities(["I-PER", "I-PER", "O"]) == [("PER", 0, 1)]  # I- without B- starts a chunk
    assert get_entities(["B-PER", "I-LOC"]) == [("PER", 0, 0), ("LOC", 1, 1)]  # type change
    assert get_entities(["B-PER", "B-PER"]) == [("PER", 0, 0), ("PER", 1, 1)]
    assert get_entities(["O", "O"]) == []
    assert get_entities(["B-creative-work", "I-creative-work"]) == [("creative-work", 0, 1)]
    # sentences are separated: an entity at the end of one does not continue into the next
    assert get_entities([["B-PER"], ["I-PER"]]) == [("PER", 0, 0), ("PER", 2, 2)]


def test_entity_scores_hand_computed():
    refs = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    preds = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-ORG"]]
    # true: PER(0,1) LOC(3,3) ORG ; pred: PER(0,1) ORG ORG' -> tp=2, pred=3, true=3
    out = entity_scores(preds, refs, per_type=True)
    assert out["precision"] == pytest.approx(2 / 3)
    assert out["recall"] == pytest.approx(2 / 3)
    assert out["f1"] == pytest.approx(2 / 3)
    assert out["per_type"]["LOC"]["recall"] == 0.0
    assert out["per_type"]["ORG"]["precision"] == pytest.approx(0.5)
    # boundary errors count as wrong entities
    partial = entity_scores([["B-PER", "O", "O", "B-LOC"]], [refs[0]])
    assert partial["precision"] == pytest.approx(0.5) and partial["recall"] == pytest.approx(0.5)
    assert entity_scores([["O"]], [["O"]])["f1"] == 0.0  # nothing to find: 0, as seqeval
    assert token_accuracy(preds, refs) == pytest.approx(4 / 6)
    with pytest.raises(ValueError):
        entity_scores([["O"]], [["O", "O"]])


def _seqeval_scores(preds, refs):
    import warnings

    from seqeval.metrics import accuracy_score
    from seqeval.metrics import f1_score as sf1
    from seqeval.metrics import precision_score, recall_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (precision_score(refs, preds), recall_score(refs, preds), sf1(refs, preds),
                accuracy_score(refs, preds))


def _corrupt(tags, rng, rate, vocab):
    out = []
    for sent in tags:
        new = list(sent)
        for i in range(len(new)):
            u = rng.random()
            if u < rate:
                new[i] = vocab[rng.integers(len(vocab))]  # random tag, including I- without B-
            elif u < rate * 1.5 and new[i] != "O":
                prefix, typ = new[i].split("-", 1)
                new[i] = ("I-" if prefix == "B" else "B-") + typ  # B<->I flip
        out.append(new)
    return out


EDGE_CASES = [
    (["I-PER", "I-PER"], ["B-PER", "I-PER"]),
    (["B-PER", "I-LOC", "I-LOC"], ["B-PER", "I-PER", "I-LOC"]),
    (["B-PER"], ["B-PER"]),
    (["O", "O", "O"], ["O", "O", "O"]),
    (["O", "I-LOC", "B-LOC", "I-PER"], ["B-LOC", "I-LOC", "B-LOC", "O"]),
    (["B-creative-work", "I-creative-work", "I-group"], ["B-creative-work", "I-group", "I-group"]),
    (["S-PER", "B-LOC", "E-LOC", "E-LOC"], ["S-PER", "B-LOC", "I-LOC", "E-LOC"]),
]


@pytest.mark.parametrize("pred,ref", EDGE_CASES)
def test_entity_scores_equal_seqeval_edge_cases(pred, ref):
    ours = compute_metrics("ner", [pred], [ref])
    p, r, f, a = _seqeval_scores([pred], [ref])
    assert (ours["precision"], ours["recall"], ours["f1"], ours["accuracy"]) == pytest.approx((p, r, f, a))


def test_entity_scores_equal_seqeval_on_wnut17():
    path = SHARED / "ner" / "wnut17" / "dev.conll"
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    from fnet.tasks.token_classification import read_conll

    gold = read_conll(path).tags
    vocab = sorted({t for s in gold for t in s}) + ["I-person", "B-group"]
    checked = 0
    for seed in range(25):
        rng = np.random.default_rng(seed)
        rate = [0.02, 0.1, 0.3][seed % 3]
        preds = _corrupt(gold, rng, rate, vocab)
        ours = entity_scores(preds, gold)
        p, r, f, a = _seqeval_scores(preds, gold)
        assert ours["precision"] == pytest.approx(p, abs=1e-12)
        assert ours["recall"] == pytest.approx(r, abs=1e-12)
        assert ours["f1"] == pytest.approx(f, abs=1e-12)
        assert token_accuracy(preds, gold) == pytest.approx(a, abs=1e-12)
        checked += 1
    # gold against itself is perfect; all-O predictions find nothing
    assert entity_scores(gold, gold)["f1"] == 1.0
    all_o = [["O"] * len(s) for s in gold]
    assert entity_scores(all_o, gold)["recall"] == 0.0
    assert checked == 25


# --------------------------------------------------------------------------------------------------
# SQuAD
# --------------------------------------------------------------------------------------------------


def test_normalize_answer_official_rules():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words
    assert normalize_answer("  ") == ""


def test_squad_scores_hand_computed():
    refs = {"q1": ["Denver Broncos", "The Broncos"], "q2": ["in 1990"], "q3": [""]}
    preds = {"q1": "Broncos", "q2": "1990 and 1991", "q3": ""}
    out = squad_scores(preds, refs)
    # q1: EM 1 (vs "The Broncos"), F1 1; q2: EM 0, F1 p=1/3 r=1/2 -> 0.4; q3: no answer, empty -> 1
    assert out["exact_match"] == pytest.approx(100 * 2 / 3)
    assert out["f1"] == pytest.approx(100 * (1 + 0.4 + 1) / 3)
    assert out["NoAns_exact"] == 100.0 and out["HasAns_total"] == 2
    assert squad_f1("", "x") == 0.0 and squad_f1("", "") == 1.0
    # a missing prediction scores 0; an answer to an unanswerable question scores 0
    out2 = squad_scores({"q2": "In 1990.", "q3": "something"}, refs)
    assert out2["exact_match"] == pytest.approx(100 / 3) and out2["NoAns_f1"] == 0.0


def test_compute_metrics_dispatch():
    cls = compute_metrics("classification", [[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], [1, 0, 0])
    assert cls["accuracy"] == pytest.approx(2 / 3)
    assert cls["f1"] == pytest.approx(f1_score([1, 0, 1], [1, 0, 0]))
    reg = compute_metrics("regression", [1.0, 2.0, 3.0], [1.0, 2.5, 2.9])
    assert reg["spearman"] == pytest.approx(1.0) and reg["mse"] == pytest.approx((0.25 + 0.01) / 3)
    mc = compute_metrics("multiple_choice", np.eye(4)[[0, 1, 2, 3]], [0, 1, 3, 3])
    assert mc["accuracy"] == pytest.approx(0.75)
    qa = compute_metrics("qa", {"a": "x"}, {"a": ["x"]})
    assert qa["exact_match"] == 100.0
    with pytest.raises(ValueError):
        compute_metrics("translation", [], [])
