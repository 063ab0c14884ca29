"""`fnet calibrate`: fit temperature scaling of a `fnet finetune` folder on held-out labelled data and
save it there as ``temperature.json`` (the measures and the fit are :mod:`fnet.calibration`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fnet.apps.task_model import load_labelled
from fnet.calibration import (DEFAULT_BINS, TemperatureScaling, calibration_report, calibration_targets,
                              check_measure_flags, plot_reliability_diagram, require_matplotlib, softmax)
from fnet.harness import DeviceOptions
from fnet.inference import task_logits
from fnet.options import option, require

__all__ = ["CalibrateConfig", "calibrate"]


@dataclass
class CalibrateConfig(DeviceOptions):
    """`fnet calibrate`: fit temperature scaling on held-out labelled data, save it with the model."""

    model: str | None = option(None, "directory written by `fnet finetune` (required); temperature.json goes here")
    data: str | None = option(None, "held-out labelled file in the task's format, not used for training (required)")
    bins: int = option(DEFAULT_BINS, "equal-width confidence bins of the expected calibration error", metavar="N")
    bootstrap: int = option(0, "bootstrap resamples for 95% confidence intervals of ECE/NLL/Brier (0: none)",
                            metavar="N")
    plot: str | None = option(None, "write a reliability diagram (before and after) to this PNG", metavar="FILE.png")
    batch_size: int = option(32, "examples per forward pass")
    max_examples: int | None = option(None, "use only the first N examples of --data")
    seed: int = option(0, "seed of the bootstrap resamples")
    reader: dict[str, Any] = option(help="reader options, over those recorded in fnet_task.json", cli=False,
                                    default_factory=dict)

    def validate(self) -> None:
        require(self, "model", "data")
        check_measure_flags(self.bins, self.bootstrap, self.batch_size, bins_flag="--bins")
        self.check_device_options()


def calibrate(config: CalibrateConfig) -> dict[str, Any]:
    """Fit the temperature of a fine-tuned directory on ``config.data`` and save ``temperature.json`` there.

    Returns the temperature and the held-out measures before (T = 1) and after, each a
    :class:`CalibrationReport` dict (bins; with ``bootstrap``, 95% intervals).
    """
    from fnet import harness

    config.validate()
    if not Path(config.model).is_dir():
        raise ValueError(f"--model {config.model} is not a local folder; calibrate writes temperature.json into the "
                         "model folder: download it first")
    if config.plot:  # before any work, and before temperature.json is replaced
        require_matplotlib("--plot")
    with harness.start(config, command="calibrate") as run:
        task, _, features = load_labelled(config, run)
        logits = task_logits(task.model, features, config.batch_size, run=run).get("logits")
    family, model = task.family, task.model
    problem_type = model.config.problem_type
    targets = calibration_targets(logits, features, problem_type)
    if targets is None:
        raise ValueError(f"temperature scaling needs a softmax classifier (classification, token classification, "
                         f"multiple choice) and gold class labels in --data; {config.model} is {family.cli_name}"
                         f"{f' ({problem_type})' if problem_type else ''}")
    logits, gold = targets
    scaling = TemperatureScaling.fit(model, logits, gold)
    before, after = (calibration_report(softmax(logits, t), gold, config.bins, config.bootstrap, seed=config.seed)
                     for t in (1.0, scaling.temperature))
    if not run.is_main:  # under torchrun rank 0 writes
        return {}
    path = scaling.save(config.model)
    if config.plot:
        plot_reliability_diagram({"softmax": before.bins, f"temperature {scaling.temperature:.3g}": after.bins},
                                 config.plot, title=f"{Path(config.data).name} ({len(gold)} predictions)")
    return {"temperature": scaling.temperature, "file": str(path), "predictions": int(len(gold)),
            "before": before.to_dict(), "after": after.to_dict()}
