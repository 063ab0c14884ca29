"""A `fnet finetune` output folder loaded for inference, and the options every inference command shares.

:class:`InferenceOptions` (batching, int8, compile, progress, and from :class:`fnet.harness.DeviceOptions`
the device, precision and threads) is inherited by the configs of `fnet evaluate` and `fnet predict`;
:func:`load_task` loads the folder's model (on the run's device, with the inference fast paths), its
tokenizer, ``fnet_task.json`` and ``temperature.json``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fnet.harness import QUANTIZE_CHOICES, QUANTIZE_HELP, DeviceOptions
from fnet.options import option
from fnet.tasks.base import TaskFamily
from fnet.tasks.folder import TaskInfo, load_tokenizer, read_split, task_info

if TYPE_CHECKING:
    import numpy as np
    import torch

    from fnet.calibration import TemperatureScaling
    from fnet.data.features import Features
    from fnet.harness import Run
    from fnet.data.tokenizer import SavedTokenizer

__all__ = ["InferenceOptions", "LoadedTask", "load_task", "load_labelled", "run_task_model", "token_counts",
           "mark_records"]

logger = logging.getLogger(__name__)


@dataclass
class InferenceOptions(DeviceOptions):
    """How `fnet evaluate` and `fnet predict` run the model (fields shared by both configs)."""

    batch_size: int = option(32, "most examples per forward pass (inputs are batched by length; see --max-tokens)")
    max_tokens: int = option(16384, "most padded tokens per forward pass: inputs are sorted by length and cut "
                             "into batches of about this many tokens (lower it to use less memory)")
    quantize: str | None = option(None, QUANTIZE_HELP, choices=QUANTIZE_CHOICES)
    compile: bool = option(False, "torch.compile the model (the Fourier transform stays eager); "
                           "compiles once per run, see BENCHMARKS.md for when it pays")
    progress: bool = option(True, "progress bar in texts/s and tokens/s on stderr")

    def validate_inference(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.max_tokens < 1:
            raise ValueError(f"--max-tokens must be >= 1, got {self.max_tokens}")
        self.check_device_options()


@dataclass
class LoadedTask:
    """A `fnet finetune` output folder, loaded for inference."""

    family: TaskFamily
    model: "torch.nn.Module"  # the task model, with optimize_for_inference (and int8 / compile when asked) applied
    tokenizer: "SavedTokenizer"
    info: TaskInfo
    scaling: "TemperatureScaling | None" = None  # temperature.json (checked against the weights as saved), or None


def _temperature(model_dir: str | os.PathLike, model: "torch.nn.Module",
                 problem_type: str | None) -> "TemperatureScaling | None":
    """The :class:`fnet.calibration.TemperatureScaling` saved beside the model, or None."""
    from fnet.calibration import TemperatureScaling

    scaling = TemperatureScaling.load(model_dir, model)
    if scaling is not None:
        logger.info("dividing the logits by the temperature %.4g of %s/temperature.json", scaling.temperature,
                    model_dir)
    if scaling is not None and problem_type in ("regression", "multi_label_classification"):
        raise ValueError(f"{model_dir} holds a temperature file but its {problem_type} outputs have no softmax "
                         "to scale; delete temperature.json")
    return scaling


def load_task(model_dir: str | os.PathLike, options: InferenceOptions | None = None,
              run: "Run | None" = None) -> LoadedTask:
    """Load a `fnet finetune` folder (or its Hub id) onto ``run``'s device (default: the CPU), with the
    inference fast paths, int8 weights (``options.quantize``) and ``torch.compile`` when asked."""
    from fnet.harness import check_quantize_device
    from fnet.hub import resolve
    from fnet.optimize import compile_for_inference, optimize_for_inference

    model_dir = resolve(model_dir, flag="--model")  # a folder, or a Hub id of a `fnet finetune` output
    info = task_info(model_dir)
    family = info.family()
    model = family.model_class().from_pretrained(model_dir, strict=True)
    if not info.label_names:  # an fnet_task.json without labels: the model config's (unused by span/choice tasks)
        info.label_names = [model.config.labels()[i] for i in range(model.config.num_labels)]
    # before any fast path: the fingerprint is of the weights as saved, and a bad file fails before any work
    scaling = (_temperature(model_dir, model, model.config.problem_type)
               if getattr(options, "calibrated", False) else None)
    quantize = options.quantize if options else None
    if run is not None:
        check_quantize_device(quantize, run.device)
        model = model.to(run.device)
    model = optimize_for_inference(model, quantize_weights=quantize)
    if options is not None and options.compile:
        model = compile_for_inference(model)
    tokenizer = load_tokenizer(None, model_dir, hint="the folder was not written by `fnet finetune`, or its "
                               "tokenizer files were removed: copy them back into it")
    return LoadedTask(family, model, tokenizer, info, scaling)


def load_labelled(config: Any, run: "Run | None" = None) -> tuple[LoadedTask, Any, "Features"]:
    """(the loaded task, examples, features) of ``config.model`` on ``config.data`` (evaluate,
    calibrate); inference options (int8, compile, temperature) apply when ``config`` has them."""
    task = load_task(config.model, config if isinstance(config, InferenceOptions) else None, run)
    examples = read_split(task.family, config.data, {**task.info.reader, **config.reader}, config.max_examples,
                          task.family.inherited_options(task.info.label_names, task.model.config.problem_type))
    return task, examples, task.family.featurize(examples, task.tokenizer, task.info.seq_len, stride=task.info.stride)


def run_task_model(model: "torch.nn.Module", features: "Features", options: InferenceOptions, run: "Run | None",
                   mc_samples: int = 0) -> dict[str, "np.ndarray"]:
    """:func:`fnet.inference.task_logits` with the command's batching options."""
    from fnet.inference import task_logits

    return task_logits(model, features, options.batch_size, mc_samples=mc_samples, max_tokens=options.max_tokens,
                       progress=options.progress, run=run)


def token_counts(examples: Any, features: "Features", tokenizer: "SavedTokenizer") -> list[int] | None:
    """Tokens each example has before truncation, where one feature row is one example with text
    (classification-style families); None otherwise. Only rows that fill the whole length can have
    been truncated, so only those are tokenized again, without truncation."""
    texts = getattr(examples, "texts", None)
    if not isinstance(texts, list) or features.num_rows != len(texts) or not texts or not isinstance(texts[0], str):
        return None
    mask = features["attention_mask"]
    counts = mask.sum(-1).tolist()
    full = [i for i, n in enumerate(counts) if n == mask.shape[-1]]
    if full:
        pairs = getattr(examples, "pairs", None)
        enc = tokenizer([texts[i] for i in full], [pairs[i] for i in full] if pairs else None, truncation=False,
                        verbose=False)  # counting only: the model never sees these
        for i, ids in zip(full, enc["input_ids"]):
            counts[i] = len(ids)
    return counts


def mark_records(records: list[dict[str, Any]], counts: list[int] | None, seq_len: int) -> int:
    """Number every record (``index``) and flag truncation (``tokens``, ``truncated``); returns how many were cut."""
    cut = 0
    for i, record in enumerate(records):
        record["index"] = i
        if counts is not None:
            record["tokens"] = counts[i]
            record["truncated"] = counts[i] > seq_len
            cut += record["truncated"]
    return cut
