"""Calibration measures against hand-computed values; temperature scaling; the saved temperature's checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import tiny_config_kwargs

from fnet import FNetConfig, FNetForSequenceClassification
from fnet.calibration import (
    TemperatureScaling, bootstrap_intervals, brier_score, calibration_report, expected_calibration_error,
    fit_temperature, mc_dropout_probabilities, negative_log_likelihood, plot_reliability_diagram, softmax,
    weights_fingerprint,
)
from fnet.checkpoint import read_state_dict

# four examples, three labels; with 2 bins, (0, 0.5] holds example 4 and (0.5, 1] the others
PROBS = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.4, 0.6, 0.0], [0.5, 0.3, 0.2]])
LABELS = np.array([0, 1, 1, 1])


def test_ece_matches_hand_computation():
    ece, bins = expected_calibration_error(PROBS, LABELS, num_bins=2)
    # bin (0.5, 1]: confidences .9 .8 .6 (mean .7667), 2 of 3 right: |.6667 - .7667| = .1, weight 3/4
    # bin (0, 0.5]: confidence .5 (on the boundary: the lower bin), wrong: |0 - .5| = .5, weight 1/4
    assert ece == pytest.approx(0.75 * 0.1 + 0.25 * 0.5, abs=1e-12)
    assert [b.count for b in bins] == [1, 3]
    assert bins[1].confidence == pytest.approx((0.9 + 0.8 + 0.6) / 3)
    assert bins[1].accuracy == pytest.approx(2 / 3)
    assert (bins[0].lower, bins[0].upper) == (0.0, 0.5)


def test_nll_and_brier_match_hand_computation():
    assert negative_log_likelihood(PROBS, LABELS) == pytest.approx(
        -(math.log(0.9) + math.log(0.2) + math.log(0.6) + math.log(0.3)) / 4)
    # squared distances to the one-hot rows: .02, 1.28, .32, .78
    assert brier_score(PROBS, LABELS) == pytest.approx(2.4 / 4)


def test_perfectly_confident_and_right_has_zero_ece():
    probs = np.eye(3)[[0, 2, 1, 1]]
    report = calibration_report(probs, np.array([0, 2, 1, 1]))
    assert (report.ece, report.brier, report.accuracy) == (0.0, 0.0, 1.0)


def test_mc_dropout_probabilities_average_softmaxes_not_logits():
    mean = mc_dropout_probabilities(np.array([[[2.0, 0.0]], [[0.0, 0.0]]]))  # (S=2, N=1, C=2)
    assert mean.shape == (1, 2)
    np.testing.assert_allclose(mean[0], (softmax([2.0, 0.0]) + softmax([0.0, 0.0])) / 2)
    assert not np.allclose(mean[0], softmax([1.0, 0.0]))



def _overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(l); the 'model' reports 3 l, so it is over-confident by T = 3."""
    rng = np.random.default_rng(seed)
    true_logits = rng.normal(size=(n, 4)) * 1.5
    p = softmax(true_logits)
    labels = np.array([rng.choice(4, p=row) for row in p])
    return true_logits * 3.0, labels


def test_temperature_scaling_lowers_held_out_nll_of_an_overconfident_model():
    fit_logits, fit_labels = _overconfident(2000, seed=1)
    test_logits, test_labels = _overconfident(2000, seed=2)
    t = fit_temperature(fit_logits, fit_labels)
    assert 2.5 < t < 3.5, t
    before = negative_log_likelihood(softmax(test_logits), test_labels)
    after = negative_log_likelihood(softmax(test_logits, t), test_labels)
    assert after < before - 0.1, (before, after)
    ece_before, _ = expected_calibration_error(softmax(test_logits), test_labels)
    ece_after, _ = expected_calibration_error(softmax(test_logits, t), test_labels)
    assert ece_after < ece_before


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    logits, labels = _overconfident(300, seed=3)
    probs = softmax(logits)
    first = bootstrap_intervals(probs, labels, num_resamples=200, seed=7)
    assert first == bootstrap_intervals(probs, labels, num_resamples=200, seed=7)
    report = calibration_report(probs, labels)
    for name in ("ece", "nll", "brier", "accuracy"):
        low, high = first[name]
        assert low <= getattr(report, name) <= high, (name, low, getattr(report, name), high)


def _classifier(num_labels: int = 3) -> FNetForSequenceClassification:
    return FNetForSequenceClassification(FNetConfig(**tiny_config_kwargs(num_labels=num_labels))).eval()


def test_temperature_file_round_trips_and_refuses_other_weights(tmp_path):
    model = _classifier()
    model.save_pretrained(tmp_path)
    assert weights_fingerprint(model) == weights_fingerprint(read_state_dict(tmp_path))
    logits, labels = _overconfident(200, seed=4)
    scaling = TemperatureScaling.fit(model, logits[:, :3], labels % 3)
    assert scaling.nll_after <= scaling.nll_before
    scaling.save(tmp_path)
    loaded = TemperatureScaling.load(tmp_path, FNetForSequenceClassification.from_pretrained(tmp_path))
    assert loaded == scaling

    other = _classifier()  # same shapes, other weights
    with pytest.raises(ValueError, match="fitted for other weights.*fnet calibrate --model") as err:
        TemperatureScaling.load(tmp_path, other)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="fitted for 3 labels but the model has 2"):
        TemperatureScaling.load(tmp_path, _classifier(num_labels=2))
    assert TemperatureScaling.load(tmp_path / "nowhere", model) is None


def test_changing_one_weight_changes_the_fingerprint():
    model = _classifier()
    before = weights_fingerprint(model)
    with torch.no_grad():
        model.classifier.bias[0] += 1e-3
    assert weights_fingerprint(model) != before


def test_reliability_diagram_is_written(tmp_path):
    logits, labels = _overconfident(200, seed=5)
    _, raw = expected_calibration_error(softmax(logits), labels, 10)
    _, scaled = expected_calibration_error(softmax(logits, 3.0), labels, 10)
    path = plot_reliability_diagram({"softmax": raw, "temperature 3": scaled}, tmp_path / "reliability.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_calibration_targets_flatten_tokens_skip_unlabelled_and_keep_the_sample_axis():
    import torch

    from fnet.data.features import Features
    from fnet.calibration import calibration_targets

    logits = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)  # (b, n, k) token logits
    labels = torch.tensor([[1, -100, 3], [-100, 0, 2]])
    feats = Features({"input_ids": torch.zeros(2, 3, dtype=torch.long), "labels": labels})
    flat, gold = calibration_targets(logits, feats, None)
    assert gold.tolist() == [1, 3, 0, 2]
    assert flat.tolist() == [logits[0, 0].tolist(), logits[0, 2].tolist(), logits[1, 1].tolist(), logits[1, 2].tolist()]
    sampled, gold2 = calibration_targets(np.stack([logits, -logits]), feats, None)  # (s, b, n, k)
    assert sampled.shape == (2, 4, 4) and (sampled[1] == -flat).all() and gold2.tolist() == gold.tolist()
    assert calibration_targets(logits[:, 0], Features({"input_ids": labels, "labels": labels[:, 0].float()}),
                               "regression") is None
    assert calibration_targets(logits[:, 0], Features({"input_ids": labels}), None) is None  # no gold


@pytest.mark.parametrize("value", [float("inf"), 1e300, 1e-320, True, float("nan")])
def test_an_edited_temperature_file_is_refused(tmp_path, value):
    """Infinity, 1e300 or 1e-320 in temperature.json gave NaN or uniform probabilities with exit 0."""
    import json

    model = _classifier()
    model.save_pretrained(tmp_path)
    logits, labels = _overconfident(200, seed=4)
    TemperatureScaling.fit(model, logits[:, :3], labels % 3).save(tmp_path)
    data = json.loads((tmp_path / "temperature.json").read_text())
    data["temperature"] = value
    (tmp_path / "temperature.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="holds temperature .*fnet fits temperatures in"):
        TemperatureScaling.load(tmp_path, model)


def test_a_fit_at_the_edge_of_the_range_is_refused_and_the_old_fit_stays(tmp_path):
    """`fnet calibrate` on 1 row replaced a 60-example fit (T 0.052 -> 148) with a warning only."""
    model = _classifier()
    model.save_pretrained(tmp_path)
    logits, labels = _overconfident(200, seed=4)
    good = TemperatureScaling.fit(model, logits[:, :3], labels % 3)
    good.save(tmp_path)
    one_right = np.array([[5.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="1 held-out prediction.*edge of the search range.*more held-out"):
        TemperatureScaling.fit(model, one_right, np.array([0]))
    assert TemperatureScaling.load(tmp_path, model) == good
