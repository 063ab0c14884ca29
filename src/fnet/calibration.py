"""Calibration of a classifier's probabilities: ECE with its bins, NLL, Brier, temperature scaling.

Legend: N examples, C labels, S Monte-Carlo dropout samples, B bins.

A classifier is calibrated when, among the examples it gives confidence p, a fraction p is right.
The measures here take probabilities (N, C) and gold labels (N,):

* expected calibration error (Guo et al., 2017): confidences (the top probability) fall into B
  equal-width bins ``(i/B, (i+1)/B]`` (a confidence of exactly 0 goes to the first bin);
  ``ECE = sum_b (n_b / N) |accuracy_b - confidence_b|``. The bins are returned too, so a
  reliability diagram can be drawn from them (:func:`plot_reliability_diagram`).
* negative log-likelihood: mean of ``-log p[label]`` in nats (probabilities are clipped at 1e-12).
* Brier score (multi-class): mean over examples of ``sum_c (p_c - 1[c = label])^2``, in [0, 2].

Plain softmax probabilities come from :func:`softmax`; Monte-Carlo dropout probabilities are the
mean of the S per-pass softmaxes (:func:`mc_dropout_probabilities`), not the softmax of the mean
logits. :func:`bootstrap_intervals` resamples the examples (seeded) to give confidence intervals.

Temperature scaling divides the logits by one scalar T > 0 fitted on held-out data to minimise NLL
(:func:`fit_temperature`); accuracy is unchanged since the argmax is. :class:`TemperatureScaling`
is saved beside the model as ``temperature.json`` with a fingerprint of the model weights, so a
file fitted for other weights is refused instead of silently mis-scaling. `fnet calibrate` (fit and
save the temperature of a fine-tuned folder) is :mod:`fnet.apps.calibrate`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from fnet.lazy import numpy as np  # imported on first use: the CLI reads this module for its flags

from fnet.io import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:  # torch is imported where it is used, so this module imports fast
    import torch

logger = logging.getLogger(__name__)

TEMPERATURE_NAME = "temperature.json"
DEFAULT_BINS = 15
_EPS = 1e-12
# the search range of log T: T in [e^-5, e^5] ~ [0.0067, 148]; a fit at the edge is reported
_LOG_T_RANGE = (-5.0, 5.0)  # log T searched by fit_temperature; a saved T outside it was not fitted by fnet


def _inside_range(temperature: float, margin: float = 0.0) -> bool:
    """Whether ``temperature`` is finite, positive and inside the search range (by ``margin`` in log T)."""
    if not (math.isfinite(temperature) and temperature > 0):
        return False
    log_t = math.log(temperature)
    return _LOG_T_RANGE[0] + margin <= log_t <= _LOG_T_RANGE[1] - margin

__all__ = [
    "TEMPERATURE_NAME", "require_matplotlib", "ReliabilityBin", "CalibrationReport", "softmax", "mc_dropout_probabilities",
    "reliability_bins", "expected_calibration_error", "negative_log_likelihood", "brier_score",
    "calibration_report", "bootstrap_intervals", "fit_temperature", "apply_temperature", "weights_fingerprint",
    "TemperatureScaling", "plot_reliability_diagram", "calibration_targets", "check_measure_flags",
]


# ----------------------------------------------------------------------------- probabilities


def softmax(logits: Any, temperature: float = 1.0) -> np.ndarray:
    """Softmax over the last axis of ``logits / temperature`` in float64. (..., C) -> (..., C)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def mc_dropout_probabilities(sample_logits: Any, temperature: float = 1.0) -> np.ndarray:
    """Mean of the per-pass softmaxes of S dropout passes. (S, N, C) logits -> (N, C) probabilities."""
    logits = np.asarray(sample_logits)
    if logits.ndim != 3:
        raise ValueError(f"MC-dropout logits must have shape (samples, examples, labels), got {logits.shape}")
    return softmax(logits, temperature).mean(axis=0)


def _check(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    if p.ndim != 2 or y.ndim != 1 or p.shape[0] != y.shape[0]:
        raise ValueError(f"probabilities must be (N, C) and labels (N,), got {p.shape} and {y.shape}")
    if p.shape[0] == 0:
        raise ValueError("no examples to measure calibration on")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"labels must be integer label ids in [0, {p.shape[1]}), got {y[:5]}...")
    return p, y.astype(np.int64)


# ----------------------------------------------------------------------------- measures


@dataclass
class ReliabilityBin:
    """One confidence bin ``(lower, upper]``: how many examples, their mean confidence and accuracy."""

    lower: float
    upper: float
    count: int
    confidence: float  # mean top probability in the bin (0 when empty)
    accuracy: float  # fraction right in the bin (0 when empty)


def _bin_ids(confidence: np.ndarray, num_bins: int) -> np.ndarray:
    # bin i holds (i/B, (i+1)/B]; ceil maps exactly i/B to bin i-1, and 0 goes to bin 0
    return np.clip(np.ceil(confidence * num_bins).astype(np.int64) - 1, 0, num_bins - 1)


def _per_example(p: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Per-example quantities every measure is a (binned) mean of."""
    confidence = p.max(axis=1)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(y)), y] = 1.0
    return {
        "confidence": confidence,
        "correct": (p.argmax(axis=1) == y).astype(np.float64),
        "nll": -np.log(np.clip(p[np.arange(len(y)), y], _EPS, None)),
        "brier": ((p - onehot) ** 2).sum(axis=1),
    }


def _ece_from(confidence: np.ndarray, correct: np.ndarray, bins: np.ndarray, num_bins: int,
              weights: np.ndarray | None = None) -> float:
    w = np.ones_like(confidence) if weights is None else weights
    count = np.bincount(bins, weights=w, minlength=num_bins)
    conf = np.bincount(bins, weights=w * confidence, minlength=num_bins)
    acc = np.bincount(bins, weights=w * correct, minlength=num_bins)
    return float(np.abs(acc - conf).sum() / count.sum())  # sum_b n_b/N |acc_b - conf_b|


def reliability_bins(probs: Any, labels: Any, num_bins: int = DEFAULT_BINS) -> list[ReliabilityBin]:
    """The B equal-width confidence bins of probabilities (N, C) against labels (N,)."""
    if not isinstance(num_bins, int) or num_bins < 1:
        raise ValueError(f"--calibration-bins must be a positive int, got {num_bins!r}")
    p, y = _check(probs, labels)
    per = _per_example(p, y)
    ids = _bin_ids(per["confidence"], num_bins)
    out = []
    for i in range(num_bins):
        inside = ids == i
        n = int(inside.sum())
        out.append(ReliabilityBin(
            lower=i / num_bins, upper=(i + 1) / num_bins, count=n,
            confidence=float(per["confidence"][inside].mean()) if n else 0.0,
            accuracy=float(per["correct"][inside].mean()) if n else 0.0,
        ))
    return out


def expected_calibration_error(probs: Any, labels: Any, num_bins: int = DEFAULT_BINS) -> tuple[float, list[ReliabilityBin]]:
    """ECE (a fraction in [0, 1]) and its bins."""
    bins = reliability_bins(probs, labels, num_bins)
    total = sum(b.count for b in bins)
    return sum(b.count / total * abs(b.accuracy - b.confidence) for b in bins), bins


def negative_log_likelihood(probs: Any, labels: Any) -> float:
    """Mean ``-log p[label]`` in nats."""
    return float(_per_example(*_check(probs, labels))["nll"].mean())


def brier_score(probs: Any, labels: Any) -> float:
    """Mean over examples of ``sum_c (p_c - onehot_c)^2`` (multi-class Brier, in [0, 2])."""
    return float(_per_example(*_check(probs, labels))["brier"].mean())


@dataclass
class CalibrationReport:
    """Accuracy and the calibration measures of one set of probabilities, with the ECE bins."""

    num_examples: int
    accuracy: float
    ece: float
    nll: float
    brier: float
    bins: list[ReliabilityBin] = field(default_factory=list)
    intervals: dict[str, tuple[float, float]] | None = None  # bootstrap CIs of ece/nll/brier/accuracy

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibration_report(probs: Any, labels: Any, num_bins: int = DEFAULT_BINS, bootstrap: int = 0,
                       confidence: float = 0.95, seed: int = 0) -> CalibrationReport:
    """Every measure of probabilities (N, C) against labels (N,); ``bootstrap`` > 0 adds CIs."""
    p, y = _check(probs, labels)
    per = _per_example(p, y)
    ece, bins = expected_calibration_error(p, y, num_bins)
    report = CalibrationReport(
        num_examples=len(y), accuracy=float(per["correct"].mean()), ece=ece, nll=float(per["nll"].mean()),
        brier=float(per["brier"].mean()), bins=bins,
    )
    if bootstrap:
        report.intervals = bootstrap_intervals(p, y, bootstrap, confidence, seed, num_bins)
    return report


def bootstrap_intervals(probs: Any, labels: Any, num_resamples: int = 1000, confidence: float = 0.95,
                        seed: int = 0, num_bins: int = DEFAULT_BINS) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of ECE, NLL, Brier and accuracy (examples resampled with replacement).

    Each resample is a multinomial weighting of the N examples, so every measure is a weighted mean
    of the per-example quantities computed once.
    """
    if not isinstance(num_resamples, int) or num_resamples < 2:
        raise ValueError(f"--bootstrap must be an int >= 2, got {num_resamples!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"the confidence level must be in (0, 1), got {confidence}")
    p, y = _check(probs, labels)
    per = _per_example(p, y)
    ids = _bin_ids(per["confidence"], num_bins)
    rng = np.random.default_rng(seed)
    n = len(y)
    values: dict[str, list[float]] = {"ece": [], "nll": [], "brier": [], "accuracy": []}
    for _ in range(num_resamples):
        weights = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)  # (N,)
        values["ece"].append(_ece_from(per["confidence"], per["correct"], ids, num_bins, weights))
        for name, key in (("nll", "nll"), ("brier", "brier"), ("accuracy", "correct")):
            values[name].append(float((weights * per[key]).sum() / n))
    tail = (1 - confidence) / 2 * 100
    return {k: (float(np.percentile(v, tail)), float(np.percentile(v, 100 - tail))) for k, v in values.items()}


# ----------------------------------------------------------------------------- temperature scaling


def apply_temperature(logits: Any, temperature: float) -> np.ndarray:
    """Probabilities of logits (..., C) at temperature T: softmax(logits / T)."""
    return softmax(logits, temperature)


def _nll_at(logits: np.ndarray, labels: np.ndarray, log_t: float) -> float:
    z = logits / math.exp(log_t)
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float((log_norm - z[np.arange(len(labels)), labels]).mean())


def fit_temperature(logits: Any, labels: Any, tolerance: float = 1e-6) -> float:
    """The T > 0 that minimises the NLL of softmax(logits / T) on held-out (logits (N, C), labels (N,)).

    NLL is convex in 1/T (a log-sum-exp of functions linear in 1/T, minus a linear term), hence
    unimodal in log T, so a golden-section search over log T finds the minimum without tuning.
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"temperature scaling needs logits (N, C), got shape {z.shape}")
    _, y = _check(z, labels)
    low, high = _LOG_T_RANGE
    ratio = (math.sqrt(5) - 1) / 2
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = _nll_at(z, y, c), _nll_at(z, y, d)
    while b - a > tolerance:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = _nll_at(z, y, c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = _nll_at(z, y, d)
    log_t = (a + b) / 2
    if min(log_t - low, high - log_t) < 1e-3:
        logger.warning("the fitted temperature %.4g is at the edge of the search range; the held-out data "
                       "may be too small or all predictions right", math.exp(log_t))
    return math.exp(log_t)


def weights_fingerprint(weights: "torch.nn.Module | Mapping[str, torch.Tensor]") -> str:
    """SHA-256 over the weights as float32 (sorted names, shapes, values): a model's identity.

    Takes a model (its transformers-layout state dict: tied and aliased tensors once) or a state
    dict as read from a model directory; both give the same fingerprint for the same weights.
    """
    import torch

    if isinstance(weights, torch.nn.Module):
        from fnet.checkpoint import export_state_dict

        weights = export_state_dict(weights)
    digest = hashlib.sha256()
    for name in sorted(weights):
        if name.endswith("predictions.decoder.bias"):  # alias of predictions.bias, written once
            continue
        tensor = weights[name].detach().to("cpu", torch.float32).contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


@dataclass
class TemperatureScaling:
    """A fitted temperature, the labels it applies to and the fingerprint of the weights it was fitted on."""

    temperature: float
    num_labels: int
    labels: list[str]
    weights_sha256: str
    nll_before: float | None = None  # held-out NLL at T = 1
    nll_after: float | None = None  # held-out NLL at the fitted T
    num_examples: int | None = None  # held-out examples it was fitted on

    @classmethod
    def fit(cls, model: "torch.nn.Module", logits: Any, labels: Any) -> "TemperatureScaling":
        """Fit on held-out logits (N, C) and gold labels (N,) of ``model``'s classifier."""
        z = np.asarray(logits, dtype=np.float64)
        t = fit_temperature(z, labels)
        if not _inside_range(t, margin=1e-3):
            raise ValueError(f"the temperature fitted on {z.shape[0]} held-out prediction(s) is {t:.4g}, at the edge of "
                             f"the search range [{math.exp(_LOG_T_RANGE[0]):.3g}, {math.exp(_LOG_T_RANGE[1]):.3g}]: "
                             "too few examples, or all predicted right, to fit one; nothing was saved: give --data "
                             "more held-out examples")
        names = model.config.labels()
        return cls(
            temperature=t, num_labels=model.config.num_labels, labels=[names[i] for i in range(len(names))],
            weights_sha256=weights_fingerprint(model), nll_before=negative_log_likelihood(softmax(z), labels),
            nll_after=negative_log_likelihood(softmax(z, t), labels), num_examples=int(z.shape[0]),
        )

    def probabilities(self, logits: Any) -> np.ndarray:
        return softmax(logits, self.temperature)

    def save(self, model_dir: str | os.PathLike) -> Path:
        """Write ``temperature.json`` into the model directory (atomically)."""
        return atomic_write_text(Path(model_dir) / TEMPERATURE_NAME, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, model_dir: str | os.PathLike, model: "torch.nn.Module") -> "TemperatureScaling | None":
        """The temperature saved beside ``model`` (None when there is none); refused if fitted for other weights."""
        path = Path(model_dir) / TEMPERATURE_NAME
        if not path.is_file():
            return None
        fix = f"re-fit it with `fnet calibrate --model {model_dir} --data FILE` or delete {path}"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            scaling = cls(**data)
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as err:
            raise ValueError(f"{path} is not a temperature file fnet wrote ({err}); {fix}") from None
        if isinstance(scaling.temperature, bool) or not isinstance(scaling.temperature, (int, float)) \
                or not _inside_range(scaling.temperature):
            raise ValueError(f"{path} holds temperature {scaling.temperature!r}; fnet fits temperatures in "
                             f"[{math.exp(_LOG_T_RANGE[0]):.3g}, {math.exp(_LOG_T_RANGE[1]):.3g}]; {fix}")
        if scaling.num_labels != model.config.num_labels:
            raise ValueError(f"{path} was fitted for {scaling.num_labels} labels but the model has "
                             f"{model.config.num_labels}; {fix}")
        if scaling.weights_sha256 != weights_fingerprint(model):
            raise ValueError(f"{path} was fitted for other weights than the model in {model_dir}; {fix}")
        return scaling


# ----------------------------------------------------------------------------- reliability diagram


def require_matplotlib(flag: str) -> None:
    """One line naming ``flag`` and the install when matplotlib is missing (checked before any work)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ValueError(f"{flag} needs matplotlib, which is not installed: `pip install matplotlib`, or leave out "
                         f"{flag}") from None


def plot_reliability_diagram(curves: Mapping[str, list[ReliabilityBin]], path: str | os.PathLike,
                             title: str = "Reliability diagram") -> Path:
    """Accuracy against confidence per bin, one line per named set of bins (e.g. softmax, MC
    dropout, temperature), with the diagonal of perfect calibration and the bin counts below.
    Writes a PNG (atomically) and returns its path. Needs matplotlib."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    for name, bins in curves.items():
        filled = [b for b in bins if b.count]
        top.plot([b.confidence for b in filled], [b.accuracy for b in filled], marker="o", label=name)
        width = bins[0].upper - bins[0].lower
        bottom.bar([b.lower + width / 2 for b in bins], [b.count for b in bins], width=width, alpha=0.5, label=name)
    top.set_ylabel("accuracy")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_title(title)
    top.legend(loc="upper left", fontsize=8)
    bottom.set_xlabel("confidence (top probability)")
    bottom.set_ylabel("examples")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return atomic_write_bytes(Path(path), buffer.getvalue())


# ----------------------------------------------------------------------------- what is measured


def calibration_targets(logits: np.ndarray | None, features: Mapping[str, Any], problem_type: str | None
                        ) -> tuple[np.ndarray, np.ndarray] | None:
    """Logits ([s,] N, C) and gold class ids (N,) of every labelled prediction made by a softmax
    (sequence classification, multiple choice, tokens); None for other outputs or without gold."""
    import torch

    gold = features.get("labels")
    if logits is None or gold is None or problem_type in ("regression", "multi_label_classification") \
            or gold.dtype != torch.long or logits.ndim < 2:
        return None
    gold = gold.numpy()
    lead = logits.ndim - 1 - gold.ndim  # 1 with a leading MC-samples axis
    if lead not in (0, 1) or logits.shape[lead:-1] != gold.shape:
        return None
    keep = gold.reshape(-1) >= 0  # -100: tokens without a label
    flat = logits.reshape(*logits.shape[:lead], -1, logits.shape[-1])[..., keep, :]
    return flat, gold.reshape(-1)[keep]


def check_measure_flags(bins: int, bootstrap: int, batch_size: int, bins_flag: str) -> None:
    """One-line errors for the bin count, the bootstrap resamples (0: off) and the batch size."""
    if bins < 1:
        raise ValueError(f"{bins_flag} must be >= 1, got {bins}")
    if bootstrap < 0 or bootstrap == 1:
        raise ValueError(f"--bootstrap must be 0 (off) or >= 2, got {bootstrap}")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
