"""`fnet evaluate`: score a `fnet finetune` folder on a labelled file, on any device (:mod:`fnet.harness`).

Writes ``metrics.json`` (task metrics, and for softmax classifiers ECE/NLL/Brier, Monte-Carlo dropout
and the saved temperature: :mod:`fnet.calibration`) and ``predictions.jsonl``. Under torchrun each
rank runs a share of the rows and rank 0 scores and writes.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from fnet.apps.task_model import (InferenceOptions, load_labelled, mark_records, run_task_model, token_counts)
from fnet.options import option, require
from fnet.tasks.folder import write_jsonl, write_metrics

if TYPE_CHECKING:
    import numpy as np
    import torch

    from fnet.calibration import TemperatureScaling
    from fnet.data.features import Features
    from fnet.harness import Run

__all__ = ["EvaluateConfig", "evaluate"]


@dataclass
class EvaluateConfig(InferenceOptions):
    """`fnet evaluate`: score a fine-tuned directory on a labelled file."""

    model: str | None = option(None, "folder written by `fnet finetune`, or its Hub id (owner/name[@revision]) "
                                     "(required)")
    data: str | None = option(None, "labelled file in the task's format (required)")
    output: str | None = option(None, "new folder for metrics.json and predictions.jsonl (default: a new folder "
                                      "beside the model, MODEL-eval-DATA; never the model's own folder)")
    max_examples: int | None = option(None, "score only the first N examples")
    mc_samples: int = option(0, "also measure calibration of N-pass Monte-Carlo dropout (mean of the softmaxes)",
                             metavar="N")
    seed: int = option(0, "seed of the dropout masks (with --mc-samples)")
    calibration_bins: int = option(15, "equal-width confidence bins of the expected calibration error (ECE)",
                                   metavar="N")
    bootstrap: int = option(0, "bootstrap resamples for 95% confidence intervals of the calibration measures "
                               "(0: none)", metavar="N")
    reliability_plot: str | None = option(None, "write a reliability diagram (PNG) of the calibration measured",
                                          metavar="FILE.png")
    calibrated: bool = option(True, "use the temperature saved by `fnet calibrate` (temperature.json) when the "
                                    "model has one (--no-calibrated: plain softmax)")
    overwrite: bool = option(False, "replace what --output holds")
    reader: dict[str, Any] = option(help="reader options, over those recorded in fnet_task.json", cli=False,
                                    default_factory=dict)

    def inputs(self) -> dict[str, Any]:
        """What the evaluation reads (flag -> path): its output may not overlap any of them."""
        return {"--model": self.model, "--data": self.data}

    def validate(self) -> None:
        from fnet.calibration import check_measure_flags

        require(self, "model", "data")
        check_measure_flags(self.calibration_bins, self.bootstrap, self.batch_size, bins_flag="--calibration-bins")
        if self.mc_samples < 0 or self.mc_samples == 1:
            raise ValueError(f"--mc-samples must be 0 (off) or >= 2, got {self.mc_samples}")
        if self.output:
            from fnet import run_folder

            run_folder.check_claim(self.output, "evaluate", overwrite=self.overwrite, inputs=self.inputs())
        self.validate_inference()
        if not self.output and not Path(self.model).exists():
            from fnet.hub import is_hub_id

            if is_hub_id(str(self.model)):
                raise ValueError(f"--model {self.model} is a Hub id: pass --output DIR for metrics.json and "
                                 "predictions.jsonl (they are never written into the Hub cache)")


def default_output(model: str | Path, data: str | Path) -> Path:
    """A new folder beside the model for an evaluation without ``--output``: ``MODEL-eval-DATA``, then
    ``-2``, ``-3``, ... (an existing folder is never reused: the evaluation writes into a folder of its own)."""
    model, data = Path(model), Path(data)
    base = model.parent / f"{model.name}-eval-{data.stem}"
    path, n = base, 1
    while os.path.lexists(path):
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _calibration_summary(config: EvaluateConfig, model: "torch.nn.Module", features: "Features",
                         logits: "np.ndarray | None", problem_type: str | None, scaling: "TemperatureScaling | None",
                         run: "Run") -> dict[str, Any]:
    """ECE (with bins), NLL and Brier of the softmax, the fitted temperature and MC dropout."""
    import torch

    from fnet.calibration import (calibration_report, calibration_targets, mc_dropout_probabilities,
                                  plot_reliability_diagram, softmax)

    targets = calibration_targets(logits, features, problem_type)
    if targets is None:
        if config.mc_samples or config.reliability_plot:
            raise ValueError("--mc-samples and --reliability-plot need gold class labels of a softmax classifier "
                             "(classification, token classification, multiple choice) in --data")
        return {}
    flat, gold = targets
    bins = config.calibration_bins
    probabilities = {"softmax": softmax(flat)}
    if scaling is not None:
        probabilities["temperature_scaled"] = softmax(flat, scaling.temperature)
    if config.mc_samples:
        if model.config.hidden_dropout_prob == 0:
            raise ValueError("the model has hidden_dropout_prob=0, so --mc-samples passes would all be equal")
        torch.manual_seed(config.seed)
        sampled = run_task_model(model, features, config, run, mc_samples=config.mc_samples)["logits"]
        sampled = calibration_targets(sampled, features, problem_type)[0]  # (s, N, C)
        probabilities["mc_dropout"] = mc_dropout_probabilities(sampled)
        if scaling is not None:
            probabilities["mc_dropout_temperature_scaled"] = mc_dropout_probabilities(sampled, scaling.temperature)
    reports = {name: calibration_report(p, gold, bins, config.bootstrap, seed=config.seed)
               for name, p in probabilities.items()}
    if config.reliability_plot:
        plot_reliability_diagram({name: r.bins for name, r in reports.items()}, config.reliability_plot,
                                 title=f"{Path(config.data).name} ({len(gold)} predictions)")
    used = reports["temperature_scaled" if scaling is not None else "softmax"]
    return {
        "eval_ece": used.ece, "eval_nll": used.nll, "eval_brier": used.brier,
        "calibration": {"bins": bins, "predictions": len(gold),
                        "temperature": scaling.temperature if scaling is not None else None,
                        **{name: r.to_dict() for name, r in reports.items()}},
    }


def evaluate(config: EvaluateConfig) -> dict[str, Any]:
    """Score a fine-tuned directory on a labelled file; writes metrics.json and predictions.jsonl."""
    from fnet import harness

    config.validate()
    with harness.start(config, command="evaluate") as run:
        return _evaluate(config, run)


def _evaluate(config: EvaluateConfig, run: "Run") -> dict[str, Any]:
    task, examples, features = load_labelled(config, run)
    family, model, tokenizer, info, scaling = task.family, task.model, task.tokenizer, task.info, task.scaling
    problem_type = model.config.problem_type
    started = time.perf_counter()
    outputs = run_task_model(model, features, config, run)
    seconds = time.perf_counter() - started
    raw_logits = outputs.get("logits")
    if scaling is not None:
        outputs = {**outputs, "logits": outputs["logits"] / scaling.temperature}
    scores, records = family.score(examples, features, outputs, info.label_names, problem_type=problem_type,
                                   max_answer_length=info.max_answer_length)
    truncated = mark_records(records, token_counts(examples, features, tokenizer), info.seq_len)
    summary = {"task": family.name, "data": str(config.data), "examples": len(examples),
               "seconds": round(seconds, 2), "truncated": truncated, "seq_len": info.seq_len,
               "quantize": config.quantize, **scores,
               **_calibration_summary(config, model, features, raw_logits, problem_type, scaling, run)}
    if run.is_main:  # under torchrun rank 0 writes
        with _evaluation_folder(config) as out_dir:
            summary["output"] = str(Path(config.output) if config.output else out_dir)
            write_metrics(out_dir, summary)
            write_jsonl(out_dir / "predictions.jsonl", records)
    return summary


@contextlib.contextmanager
def _evaluation_folder(config: EvaluateConfig) -> Iterator[Path]:
    """Where evaluate writes: the model folder, or ``--output`` claimed as fnet.run_folder says."""
    from fnet import run_folder

    output = config.output or default_output(config.model, config.data)
    with run_folder.claim(output, "evaluate", overwrite=config.overwrite, inputs=config.inputs()) as out:
        yield out.path
