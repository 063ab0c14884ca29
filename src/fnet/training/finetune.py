"""Fine-tuning, evaluation and prediction for any task family (see :mod:`fnet.tasks`).

One runner per job, all sharing the training loop of pretraining (:mod:`fnet.training.loop`):

* :func:`finetune` reads train/validation files, builds (or loads) the task model, trains with an
  evaluation per epoch, keeps the best model, and writes a model directory that also holds the
  tokenizer, ``fnet_task.json`` (how to read inputs), ``metrics.json`` and ``predictions.jsonl``;
* :func:`evaluate` scores such a directory on a labelled file;
* :func:`predict` labels new inputs, optionally with Monte-Carlo dropout (``mc_samples``) for a
  mean probability and its standard deviation per label.

Everything task-specific (reading, featurizing, scoring, the model class) is asked of the task's
family; nothing here compares task names.

Legend: s Monte-Carlo samples, b rows, n sequence length, k labels.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from fnet.config import PRESETS, FNetConfig
from fnet.data.features import LABEL_KEYS, MODEL_KEYS, Features
from fnet.inference import LengthBuckets, trim_padding
from fnet.io import atomic_write_text
from fnet.optimize import (QUANTIZE_CHOICES, QUANTIZE_HELP, compile_for_inference, optimize_for_inference,
                           optimize_for_training)
from fnet.options import option, require
from fnet.run_folder import check_output_path
from fnet.tasks import TaskFamily, cli_choices, get_family

__all__ = ["FinetuneConfig", "InferenceOptions", "EvaluateConfig", "PredictConfig", "TaskInfo", "finetune", "evaluate", "predict",
           "task_info", "TASK_INFO_NAME"]

logger = logging.getLogger(__name__)

TASK_INFO_NAME = "fnet_task.json"


# what FinetuneConfig.resolved() chooses for options left unset (the reasons are in its docstring)
PRETRAINED_DEFAULTS = {"lr": 1e-4, "warmup_ratio": 0.1, "epochs": 3.0}
SCRATCH_DEFAULTS = {"lr": 1e-3, "warmup_ratio": 0.1, "epochs": 3.0}
# ELECTRA's fine-tuning rates by model width (Clark et al. 2020, Small / Base / Large)
PRETRAINED_LR_BY_WIDTH = ((256, 3e-4), (768, 1e-4), (1024, 5e-5))
MIN_STEPS = 300  # optimizer steps a small training set is stretched to (by more epochs)
MAX_EPOCHS = 20


def _rate(lr: float) -> str:
    return f"{lr:.0e}".replace("e-0", "e-")  # 3e-4, as the literature writes rates


_LR_BY_WIDTH_HELP = ", ".join(f"{_rate(lr)} at hidden {width}" for width, lr in PRETRAINED_LR_BY_WIDTH)


@dataclass
class FinetuneConfig:
    """Everything a fine-tuning run needs; each field is also a `fnet finetune` flag (``reader``:
    the reader options of the task's family, a ``[reader]`` table in a run file)."""

    task: str | None = option(None, "task family (required)", choices=cli_choices())
    model: str | None = option(None, "model folder (pretrained/converted), Hub id (owner/name[@revision]) or preset "
                                     "name (required)")
    tokenizer: str | None = option(None, "tokenizer folder or Hub id (default: the model's)")
    train: str | None = option(None, "training file (required)")
    validation: str | None = option(None, "validation file: evaluated each epoch, selects the best epoch")
    output: str | None = option(None, "output directory (required)")
    epochs: float | None = option(None, f"passes over the training data (default: {SCRATCH_DEFAULTS['epochs']:g}, "
                                        f"more for a small training set so that it gets {MIN_STEPS} optimizer "
                                        f"steps, at most {MAX_EPOCHS} passes)")
    lr: float | None = option(None, f"peak learning rate (default: from a model directory (pretrained), by the "
                                    f"model's width: {_LR_BY_WIDTH_HELP}, interpolated between; "
                                    f"{_rate(SCRATCH_DEFAULTS['lr'])} from a preset (random init))")
    batch_size: int = option(16, "examples per optimizer step")
    grad_accum: int = option(1, "micro-batches per optimizer step (the batch is split over them)")
    seq_len: int = option(128, "tokens per input (QA: per window); longer inputs are truncated or windowed")
    stride: int | None = option(None, "QA: overlap of consecutive windows, in tokens (default: min(128, seq-len // 4), "
                                      "which fits every --seq-len)")
    max_answer_length: int = option(30, "QA: longest answer, in tokens")
    warmup_ratio: float | None = option(None, "fraction of steps with linear warmup (default: 0.1)")
    weight_decay: float = option(0.01, "AdamW decay (never on biases and norms)")
    seed: int = option(0, "all randomness: init, shuffling, dropout")
    bf16: bool = option(False, "bfloat16 autocast")
    early_stopping: int = option(0, "stop after this many evaluations without improvement (0: off)",
                                 metavar="EPOCHS")
    time_budget: float = option(0.0, "stop training after this many minutes (the best epoch so far is kept); the "
                                     "lr schedule warms up and decays within them; 0: no limit")
    max_train_examples: int | None = option(None, "use only the first N training examples")
    max_eval_examples: int | None = option(None, "use only the first N validation examples")
    threads: int | None = option(None, "torch threads")
    progress: bool = option(True, "progress bar")
    overwrite: bool = option(False, "replace what --output holds (another model, even --model); the old folder "
                                    "stays intact until this run finishes")
    reader: dict[str, Any] = option(help="reader options of the task's family (columns, format, ...)", cli=False,
                                    default_factory=dict)

    def family(self) -> TaskFamily:
        return get_family(self.task or "")

    def validate(self) -> TaskFamily:
        """All cross-field checks, in one place; returns the task's family."""
        require(self, "task", "model", "train", "output")
        try:
            family = self.family()
        except ValueError as err:
            raise ValueError(f"--task: {err}") from None
        family.options.of(self.reader, where="reader options")
        if self.batch_size < 1 or self.grad_accum < 1 or self.batch_size % self.grad_accum:
            raise ValueError(f"--batch-size {self.batch_size} must be a positive multiple of --grad-accum "
                             f"{self.grad_accum} (each optimizer step splits the batch into equal micro-batches)")
        if self.time_budget < 0:
            raise ValueError(f"--time-budget must be >= 0 (0: no limit), got {self.time_budget}")
        if self.epochs is not None and self.epochs <= 0:
            raise ValueError(f"--epochs must be > 0, got {self.epochs}")
        if self.lr is not None and self.lr <= 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")
        if self.warmup_ratio is not None and not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.seq_len < 8:
            raise ValueError(f"--seq-len must be >= 8, got {self.seq_len}")
        if self.stride is not None and not 0 <= self.stride < self.seq_len // 2 - 2:
            raise ValueError(f"--stride {self.stride} must be >= 0 and below half of --seq-len {self.seq_len} minus 2 "
                             f"(a window keeps at least that much context); omit --stride for "
                             f"{default_stride(self.seq_len)}")
        from fnet import run_folder
        from fnet.hub import is_hub_id

        if self.model not in PRESETS and not Path(self.model).exists() and (
                not is_hub_id(self.model) or self.model.startswith((".", "/", "~"))):
            raise FileNotFoundError(f"--model {self.model}: no such model folder (and not a Hugging Face Hub id or a "
                                    f"preset: {', '.join(PRESETS)})")
        run_folder.check_claim(self.output, "finetune", overwrite=self.overwrite,
                               inputs={"--model": self.model if self.model not in PRESETS else None,
                                       "--tokenizer": self.tokenizer})
        return family

    def from_scratch(self) -> bool:
        """True when ``model`` names a preset (random init), False for a model directory."""
        return self.model in PRESETS

    def resolved(self, steps_per_epoch: int | None = None, hidden_size: int | None = None) -> "FinetuneConfig":
        """This config with the options left at None chosen by how the run starts (explicit values win).

        From pretrained weights the rate follows the model's width (``hidden_size``, when known):
        ELECTRA's published fine-tuning rates (Clark et al. 2020: Small, d=256, 3e-4; Base, d=768,
        1e-4; Large, d=1024, 5e-5), interpolated log-linearly between them and held beyond them
        (:func:`pretrained_lr`); 1e-4 when the width is unknown. Narrow models need higher rates:
        fnet-mini pretrained on corpus/en gains +3.4 points over scratch at 300 SST-2 labels with
        3e-4, and 1e-4 loses 6 points at 1,000 labels (benchmarks/results/transfer/long). From
        random init (a preset) there is nothing to keep: lr 1e-3 (benchmarks/results/transfer).
        Warmup 10% of the steps in both (BERT). Epochs: 3 (BERT's 2-4), raised for a small training set to reach ``MIN_STEPS`` optimizer steps, at most
        ``MAX_EPOCHS`` (few-sample fine-tuning needs more steps, not fewer: Mosbach et al. 2021,
        Zhang et al. 2021); ``steps_per_epoch`` is needed for that, else 3.
        """
        start = SCRATCH_DEFAULTS if self.from_scratch() else PRETRAINED_DEFAULTS
        if not self.from_scratch() and hidden_size:
            start = {**start, "lr": pretrained_lr(hidden_size)}
        epochs = self.epochs
        if epochs is None:
            epochs = start["epochs"]
            if steps_per_epoch:
                epochs = min(MAX_EPOCHS, max(epochs, math.ceil(MIN_STEPS / steps_per_epoch)))
        return dataclasses.replace(
            self, epochs=float(epochs), lr=start["lr"] if self.lr is None else self.lr,
            warmup_ratio=start["warmup_ratio"] if self.warmup_ratio is None else self.warmup_ratio)




def pretrained_lr(hidden_size: int) -> float:
    """Fine-tuning rate for pretrained weights of width ``hidden_size``: ``PRETRAINED_LR_BY_WIDTH``
    interpolated log-linearly in both width and rate, held at the end points outside them."""
    points = PRETRAINED_LR_BY_WIDTH
    if hidden_size <= points[0][0]:
        return points[0][1]
    for (w0, lr0), (w1, lr1) in zip(points, points[1:]):
        if hidden_size <= w1:
            t = math.log(hidden_size / w0) / math.log(w1 / w0)
            return float(round(math.exp(math.log(lr0) + t * math.log(lr1 / lr0)), 7))
    return points[-1][1]


def default_stride(seq_len: int) -> int:
    """QA window overlap when --stride is not given: a quarter of the window, at most 128 tokens.
    Questions are cut to half the window (tasks.question_answering), so it always fits."""
    return min(128, seq_len // 4)


@dataclass
class InferenceOptions:
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


@dataclass
class EvaluateConfig(InferenceOptions):
    """`fnet evaluate`: score a fine-tuned directory on a labelled file."""

    model: str | None = option(None, "folder written by `fnet finetune`, or its Hub id (owner/name[@revision]) "
                                     "(required)")
    data: str | None = option(None, "labelled file in the task's format (required)")
    output: str | None = option(None, "where metrics.json and predictions.jsonl go (default: the model directory)")
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

    def validate(self) -> None:
        from fnet.calibration import check_measure_flags

        require(self, "model", "data")
        check_measure_flags(self.calibration_bins, self.bootstrap, self.batch_size, bins_flag="--calibration-bins")
        if self.mc_samples < 0 or self.mc_samples == 1:
            raise ValueError(f"--mc-samples must be 0 (off) or >= 2, got {self.mc_samples}")
        if self.output:
            from fnet import run_folder

            if Path(self.output).resolve() == Path(self.model).resolve():
                raise ValueError("--output is the --model folder: omit --output to write metrics.json and "
                                 "predictions.jsonl there")
            run_folder.check_claim(self.output, "evaluate", overwrite=self.overwrite)
        self.validate_inference()
        if not self.output and not Path(self.model).exists():
            from fnet.hub import is_hub_id

            if is_hub_id(str(self.model)):
                raise ValueError(f"--model {self.model} is a Hub id: pass --output DIR for metrics.json and "
                                 "predictions.jsonl (they are never written into the Hub cache)")


@dataclass
class PredictConfig(InferenceOptions):
    """`fnet predict`: label raw texts or a file with a fine-tuned directory."""

    model: str | None = option(None, "folder written by `fnet finetune`, or its Hub id (owner/name[@revision]) "
                                     "(required)")
    texts: list[str] = option(help="texts to classify or tag", cli=False, default_factory=list)
    input: str | None = option(None, "input file")
    output: str | None = option(None, "write JSON lines here instead of stdout")
    mc_samples: int = option(0, "N stochastic passes with dropout on: mean probability and its std per label",
                             metavar="N")
    seed: int = option(0, "seed of the dropout masks (with --mc-samples)")
    calibrated: bool = option(True, "use the temperature saved by `fnet calibrate` (temperature.json) when the "
                                    "model has one, on every pass under --mc-samples (--no-calibrated: plain softmax)")
    reader: dict[str, Any] = option(help="reader options, over those recorded in fnet_task.json", cli=False,
                                    default_factory=dict)

    def validate(self) -> None:
        require(self, "model")
        if self.output:
            check_output_path(self.output, want="file")
        self.validate_inference()
        if self.mc_samples < 0:
            raise ValueError(f"--mc-samples must be >= 0, got {self.mc_samples}")
        if self.mc_samples == 1:
            raise ValueError("--mc-samples 1 gives no spread; use 0 (deterministic) or at least 2")


# ----------------------------------------------------------------------------- fnet_task.json


@dataclass
class TaskInfo:
    """What `fnet finetune` records in ``fnet_task.json``: how to read and featurize inputs."""

    task: str  # the family's canonical name
    seq_len: int
    stride: int
    max_answer_length: int
    reader: dict[str, Any]  # the reader options given at training time
    label_names: list[str]

    def family(self) -> TaskFamily:
        return get_family(self.task)

    def save(self, directory: Path) -> None:
        atomic_write_text(directory / TASK_INFO_NAME, json.dumps(dataclasses.asdict(self), indent=2) + "\n")


def task_info(model_dir: str | os.PathLike) -> TaskInfo:
    """What `fnet finetune` recorded about a directory (or a Hub id of one): task, input length, reader
    options, labels."""
    from fnet.hub import resolve

    path = resolve(model_dir, flag="--model") / TASK_INFO_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir} has no {TASK_INFO_NAME}: it was not written by `fnet finetune`")
    info = json.loads(path.read_text(encoding="utf-8"))
    known = {f.name for f in dataclasses.fields(TaskInfo)}
    return TaskInfo(**{k: v for k, v in info.items() if k in known})


# ----------------------------------------------------------------------------- small helpers


def _load_tokenizer(tokenizer: str | os.PathLike | None, model: str | os.PathLike | None,
                    hint: str = "pass --tokenizer DIR|ID"):
    """``--tokenizer`` when given, else the tokenizer saved with ``--model`` (a folder or a Hub id; any kind)."""
    from fnet.tokenization import AutoTokenizer, TokenizerFileError

    if tokenizer:
        return AutoTokenizer.from_pretrained(tokenizer, flag="--tokenizer")
    if not model:
        raise ValueError("no tokenizer: pass --tokenizer DIR|ID (e.g. one made by `fnet tokenizer train`)")
    try:
        return AutoTokenizer.from_pretrained(model, flag="--model")
    except TokenizerFileError as err:
        raise TokenizerFileError(f"{err}; {hint}") from None


def _slice(examples: Any, limit: int | None) -> Any:
    """The first ``limit`` examples of any reader's result."""
    if limit is None or len(examples) <= limit:
        return examples
    values = {}
    for f in dataclasses.fields(examples):
        value = getattr(examples, f.name)
        values[f.name] = value[:limit] if isinstance(value, list) and len(value) == len(examples) else value
    return type(examples)(**values)


def _read(family: TaskFamily, path: str, reader: dict[str, Any], limit: int | None,
          inherited: dict[str, Any] | None = None) -> Any:
    """Read a split; ``inherited`` options (labels, problem type of the training split or the saved
    model) apply unless the reader options set them."""
    options = family.options.of({**(inherited or {}), **reader}, where="reader options")
    examples = family.read(path, options)
    if len(examples) == 0:
        raise ValueError(f"{path} holds no examples for task {family.cli_name}")
    return _slice(examples, limit)


def _batch(features: Features, rows: np.ndarray | list[int] | slice) -> dict[str, torch.Tensor]:
    """Rows of a feature table, cut to the longest real length among them (pads beyond it are
    dropped; with the attention mask passed, the kept pads do not change any output)."""
    batch = {k: v[rows] for k, v in features.items() if k in MODEL_KEYS or k in LABEL_KEYS}
    per_token = [k for k, v in batch.items() if k in MODEL_KEYS or (k == "labels" and v.dim() == batch["attention_mask"].dim())]
    return trim_padding(batch, keys=per_token)


@torch.no_grad()
def _logits(model, features: Features, batch_size: int, mc_samples: int = 0, max_tokens: int = 16384,
            progress: bool = False) -> dict[str, np.ndarray]:
    """Run ``model`` over all feature rows; returns ``logits`` / ``start_logits`` / ``end_logits`` in row order.

    Rows go in length buckets of at most ``batch_size`` rows and ``max_tokens`` padded tokens
    (:class:`fnet.inference.LengthBuckets`), each cut to its longest real length; per-token outputs
    are padded back to the feature length (QA logits with -1e4, so padding is never picked as an
    answer). With ``mc_samples`` > 0 dropout stays on and each array gains a leading axis of that many samples.
    """
    passes = max(1, mc_samples)
    model.train(mc_samples > 0)
    full = features["input_ids"].shape[-1]
    buckets = LengthBuckets({k: v for k, v in features.items() if k in MODEL_KEYS}, max_tokens=max_tokens,
                            max_rows=batch_size, progress=progress, desc="predicting")
    chunks: dict[str, list[np.ndarray]] = {}
    try:
        for _, inputs in buckets:
            samples: dict[str, list[np.ndarray]] = {}
            for _ in range(passes):
                out = model(**inputs)
                for key in ("logits", "start_logits", "end_logits"):
                    value = getattr(out, key, None)
                    if value is None:
                        continue
                    value = value.float().cpu().numpy()
                    per_token = key != "logits" or value.ndim == 3  # (b, n[, k])
                    if per_token and value.shape[1] < full:
                        pad = [(0, 0)] * value.ndim
                        pad[1] = (0, full - value.shape[1])
                        value = np.pad(value, pad, constant_values=-1e4 if key != "logits" else 0.0)
                    samples.setdefault(key, []).append(value)
            for key, values in samples.items():
                chunks.setdefault(key, []).append(np.stack(values))  # (s, b, ...)
    finally:
        model.eval()
    result = {key: buckets.restore(values, axis=1) for key, values in chunks.items()}
    logger.info("inference: %(texts)d rows, %(tokens)d tokens in %(seconds).2f s (%(tokens_per_s).0f tokens/s)",
                buckets.stats)
    return result if mc_samples else {key: value[0] for key, value in result.items()}


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def _write_metrics(directory: Path, summary: dict[str, Any]) -> None:
    atomic_write_text(directory / "metrics.json", json.dumps(summary, indent=2) + "\n")


# ----------------------------------------------------------------------------- fine-tuning


def _build_model(family: TaskFamily, config: FinetuneConfig, tokenizer, label_info: dict[str, Any]):
    """The task model to train: a preset's seeded init or the saved model's weights; with the CPU
    kernels (oneDNN GEMMs in the training steps, the fused inference kernels in the evaluations)."""
    cls = family.model_class()
    if config.model in PRESETS:
        model_config = FNetConfig.from_preset(
            config.model, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
            max_position_embeddings=max(512, config.seq_len), **label_info)
        torch.manual_seed(config.seed)
        model = cls(model_config)
    else:
        model = cls.from_pretrained(config.model, ignore_mismatched_sizes=True, **label_info)
        if model.config.vocab_size < len(tokenizer):
            raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but the model only "
                             f"{model.config.vocab_size}; use the tokenizer the model was trained with")
        if config.seq_len > model.config.max_position_embeddings:
            logger.warning("extending the position table from %d to %d positions (new rows copy the trained ones) "
                           "for --seq-len %d", model.config.max_position_embeddings, config.seq_len, config.seq_len)
            model.resize_position_embeddings(config.seq_len, init="copy")
    return optimize_for_training(optimize_for_inference(model))


def finetune(config: FinetuneConfig) -> dict[str, Any]:
    """Train a task model; returns the final validation metrics (and where things were written).

    The output folder is claimed (:func:`fnet.run_folder.claim`): a folder holding anything is refused
    unless ``overwrite``, a second run on it refuses, and a failed run leaves nothing behind.
    """
    from fnet import run_folder

    family = config.validate()
    if config.threads:
        torch.set_num_threads(config.threads)
    model_dir = config.model if config.model not in PRESETS else None
    tokenizer = _load_tokenizer(config.tokenizer, model_dir)
    if model_dir and config.tokenizer:  # a pretrained model reads ids of the tokenizer it was trained with
        run_folder.check_tokenizer(model_dir, "--model", tokenizer, config.tokenizer)
    with run_folder.claim(config.output, "finetune", overwrite=config.overwrite,
                          inputs={"--model": model_dir, "--tokenizer": config.tokenizer}) as out:
        out.record(task=family.name, tokenizer=tokenizer.fingerprint())
        return _finetune(config, family, tokenizer, out.path)


def _finetune(config: FinetuneConfig, family: TaskFamily, tokenizer: Any, output: Path) -> dict[str, Any]:
    """The run of :func:`finetune`, writing under the claimed folder ``output``."""
    from fnet.data.collate import ListDataset, StepBatches
    from fnet.training.loop import Trainer, TrainerConfig
    from fnet.training.optim import OptimConfig, build_optimizer, build_scheduler

    started = time.perf_counter()
    if config.stride is None:
        config = dataclasses.replace(config, stride=default_stride(config.seq_len))
    train_ex = _read(family, config.train, config.reader, config.max_train_examples)
    label_info, label_names = family.label_info(train_ex)
    val_ex = None
    if config.validation:
        inherited = family.inherited_options(getattr(train_ex, "label_names", None),
                                             getattr(train_ex, "problem_type", None))
        val_ex = _read(family, config.validation, config.reader, config.max_eval_examples, inherited)
    train_feats = family.featurize(train_ex, tokenizer, config.seq_len, stride=config.stride)
    val_feats = family.featurize(val_ex, tokenizer, config.seq_len, stride=config.stride) if val_ex is not None else None
    model = _build_model(family, config, tokenizer, label_info)
    problem_type = model.config.problem_type

    micro = config.batch_size // config.grad_accum
    dataset = ListDataset(list(range(train_feats.num_rows)), lambda idx: _batch(train_feats, idx))
    data = StepBatches(dataset, micro_batch_size=micro, grad_accum=config.grad_accum, seed=config.seed)
    config = config.resolved(data.steps_per_epoch, model.config.hidden_size)  # lr, warmup, epochs by the start
    logger.info("fine-tuning %s: lr %g, warmup %.0f%%, %g epochs", "from scratch" if config.from_scratch()
                else "from pretrained weights", config.lr, 100 * config.warmup_ratio, config.epochs)
    max_steps = max(1, math.ceil(config.epochs * data.steps_per_epoch))
    optim = OptimConfig(lr=config.lr, weight_decay=config.weight_decay,
                        warmup_steps=int(config.warmup_ratio * max_steps))
    optimizer = build_optimizer(model, optim)
    scheduler = build_scheduler(optimizer, optim, max_steps)

    def score(m) -> tuple[dict[str, float], list[dict[str, Any]]]:
        outputs = _logits(m, val_feats, batch_size=max(32, config.batch_size))
        return family.score(val_ex, val_feats, outputs, label_names, problem_type=problem_type,
                            max_answer_length=config.max_answer_length)

    validating = val_feats is not None
    trainer_config = TrainerConfig(
        max_steps=max_steps, output_dir=str(output / "training"), seed=config.seed, bf16=config.bf16,
        log_every=max(1, min(50, data.steps_per_epoch // 4)), eval_every_epoch=validating,
        eval_at_end=validating, best_metric=family.best_metric(problem_type) if validating else None,
        early_stopping_patience=config.early_stopping if validating else 0,
        progress=config.progress, keep_last=1, max_time_s=60.0 * config.time_budget,
    )
    trainer = Trainer(model, optimizer, data, trainer_config, scheduler=scheduler,
                      evaluate=(lambda m: score(m)[0]) if validating else (lambda m: {}))
    result = trainer.train()
    train_seconds = time.perf_counter() - started

    best_dir = output / "training" / "best"
    if validating and (best_dir / "model.safetensors").is_file():
        model = optimize_for_inference(family.model_class().from_pretrained(best_dir))
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    TaskInfo(task=family.name, seq_len=config.seq_len, stride=config.stride,
             max_answer_length=config.max_answer_length, reader=config.reader, label_names=label_names).save(output)
    summary: dict[str, Any] = {"task": family.name, "train_examples": len(train_ex), "steps": result.step,
                               "train_seconds": round(train_seconds, 1), "best_step": result.best_step,
                               "stopped_early": result.stopped_early}
    if validating:
        scores, records = score(model)
        summary.update(scores)
        _write_jsonl(output / "predictions.jsonl", records)
    _write_metrics(output, summary)
    return summary


# ----------------------------------------------------------------------------- calibration (fnet.calibration)


def calibration_targets(logits: np.ndarray | None, features: Features, problem_type: str | None
                        ) -> tuple[np.ndarray, np.ndarray] | None:
    """Logits ([s,] N, C) and gold class ids (N,) of every labelled prediction made by a softmax
    (sequence classification, multiple choice, tokens); None for other outputs or without gold."""
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


def _temperature(model_dir: str | os.PathLike, model, problem_type: str | None):
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


def _calibration_summary(config: EvaluateConfig, model, features: Features, logits: np.ndarray | None,
                         problem_type: str | None, scaling) -> dict[str, Any]:
    """ECE (with bins), NLL and Brier of the softmax, the fitted temperature and MC dropout."""
    from fnet.calibration import calibration_report, mc_dropout_probabilities, plot_reliability_diagram, softmax

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
        sampled = _run(model, features, config, mc_samples=config.mc_samples)["logits"]
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


# ----------------------------------------------------------------------------- evaluate / predict


@dataclass
class LoadedTask:
    """A `fnet finetune` output folder, loaded for inference."""

    family: TaskFamily
    model: Any  # the task model, with optimize_for_inference (and int8 / compile when asked) applied
    tokenizer: Any
    info: TaskInfo
    scaling: Any = None  # temperature.json's TemperatureScaling (checked against the weights as saved), or None


def _load_task_dir(model_dir: str | os.PathLike, options: InferenceOptions | None = None) -> LoadedTask:
    from fnet.hub import resolve

    model_dir = resolve(model_dir, flag="--model")  # a folder, or a Hub id of a `fnet finetune` output
    info = task_info(model_dir)
    family = info.family()
    model = family.model_class().from_pretrained(model_dir)
    if not info.label_names:  # an fnet_task.json without labels: the model config's (unused by span/choice tasks)
        info.label_names = [model.config.labels()[i] for i in range(model.config.num_labels)]
    # before any fast path: the fingerprint is of the weights as saved, and a bad file fails before any work
    scaling = (_temperature(model_dir, model, model.config.problem_type)
               if getattr(options, "calibrated", False) else None)
    model = optimize_for_inference(model, quantize_weights=options.quantize if options else None)
    if options is not None and options.compile:
        model = compile_for_inference(model)
    tokenizer = _load_tokenizer(None, model_dir, hint="the folder was not written by `fnet finetune`, or its "
                                "tokenizer files were removed: copy them back into it")
    return LoadedTask(family, model, tokenizer, info, scaling)


def load_labelled(config: Any) -> tuple[LoadedTask, Any, Features]:
    """(the loaded task, examples, features) of ``config.model`` on ``config.data`` (evaluate,
    calibrate); inference options (int8, compile, temperature) apply when ``config`` has them."""
    task = _load_task_dir(config.model, config if isinstance(config, InferenceOptions) else None)
    examples = _read(task.family, config.data, {**task.info.reader, **config.reader}, config.max_examples,
                     task.family.inherited_options(task.info.label_names, task.model.config.problem_type))
    return task, examples, task.family.featurize(examples, task.tokenizer, task.info.seq_len, stride=task.info.stride)


def _run(model, features: Features, options: InferenceOptions, mc_samples: int = 0) -> dict[str, np.ndarray]:
    return _logits(model, features, options.batch_size, mc_samples=mc_samples, max_tokens=options.max_tokens,
                   progress=options.progress)


def _token_counts(examples: Any, features: Features, tokenizer) -> list[int] | None:
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


def _mark(records: list[dict[str, Any]], counts: list[int] | None, seq_len: int) -> int:
    """Number every record (``index``) and flag truncation (``tokens``, ``truncated``); returns how many were cut."""
    cut = 0
    for i, record in enumerate(records):
        record["index"] = i
        if counts is not None:
            record["tokens"] = counts[i]
            record["truncated"] = counts[i] > seq_len
            cut += record["truncated"]
    return cut


def evaluate(config: EvaluateConfig) -> dict[str, Any]:
    """Score a fine-tuned directory on a labelled file; writes metrics.json and predictions.jsonl."""
    config.validate()
    task, examples, features = load_labelled(config)
    family, model, tokenizer, info, scaling = task.family, task.model, task.tokenizer, task.info, task.scaling
    problem_type = model.config.problem_type
    started = time.perf_counter()
    outputs = _run(model, features, config)
    seconds = time.perf_counter() - started
    raw_logits = outputs.get("logits")
    if scaling is not None:
        outputs = {**outputs, "logits": outputs["logits"] / scaling.temperature}
    scores, records = family.score(examples, features, outputs, info.label_names, problem_type=problem_type,
                                   max_answer_length=info.max_answer_length)
    truncated = _mark(records, _token_counts(examples, features, tokenizer), info.seq_len)
    summary = {"task": family.name, "data": str(config.data), "examples": len(examples),
               "seconds": round(seconds, 2), "truncated": truncated, "seq_len": info.seq_len,
               "quantize": config.quantize, **scores,
               **_calibration_summary(config, model, features, raw_logits, problem_type, scaling)}
    with _evaluation_folder(config) as out_dir:
        _write_metrics(out_dir, summary)
        _write_jsonl(out_dir / "predictions.jsonl", records)
    return summary


@contextlib.contextmanager
def _evaluation_folder(config: EvaluateConfig) -> Iterator[Path]:
    """Where evaluate writes: the model folder, or ``--output`` claimed as fnet.run_folder says."""
    from fnet import run_folder

    if not config.output:
        yield Path(config.model)
        return
    with run_folder.claim(config.output, "evaluate", overwrite=config.overwrite) as out:
        yield out.path


EMPTY_TEXT = "empty text: no prediction"  # the ``skipped`` reason of a blank input line or an empty text


def _inputs_for_prediction(family: TaskFamily, config: PredictConfig, info: TaskInfo
                           ) -> tuple[Any, list[int], list[str] | None]:
    """Examples to predict, the input positions they came from, and all input texts (None for a task file).

    Command-line texts, a plain .txt file (one text per line; every line counts, blank ones included),
    or a task file. Empty or blank texts are left out of the examples; their positions are missing
    from the list, and `predict` gives them a ``skipped`` record.
    """
    texts = config.texts
    if config.input and Path(config.input).suffix.lower() != ".txt":
        examples = _read(family, config.input, {**info.reader, **config.reader}, None)
        return examples, list(range(len(examples))), None
    if config.input:
        try:
            texts = Path(config.input).read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as err:
            raise ValueError(f"{config.input} is not valid UTF-8 ({err})") from err
    if not texts:
        raise ValueError(f"{config.input} is empty" if config.input else "give texts to predict, or --input FILE")
    kept = [i for i, text in enumerate(texts) if text.strip()]
    return family.examples_from_texts([texts[i] for i in kept], info.label_names), kept, list(texts)


def predict(config: PredictConfig) -> list[dict[str, Any]]:
    """Predictions for raw texts (families with text input) or an input file (any family).

    One record per input, in input order, each with its ``index`` (0-based; for a .txt file, the
    line number - 1). An empty or blank text gets ``{"index", "text", "prediction": None, "skipped":
    reason}`` instead of a label. Records of text inputs carry ``tokens`` (before truncation) and
    ``truncated`` (longer than the model's ``seq_len``, so only the first tokens were read).

    With ``mc_samples`` = N > 0, N stochastic passes with dropout on give, per label, the mean
    probability (``probabilities``) and its standard deviation (``std``).
    """
    config.validate()
    task = _load_task_dir(config.model, config)
    family, model, info = task.family, task.model, task.info
    if config.mc_samples and model.config.hidden_dropout_prob == 0:
        raise ValueError("the model has hidden_dropout_prob=0, so Monte-Carlo dropout samples would all be equal")
    if config.mc_samples and not family.spread:
        from fnet.tasks import FAMILIES

        allowed = ", ".join(f.cli_name for f in FAMILIES.values() if f.spread)
        raise ValueError(f"--mc-samples is supported for {allowed}")
    examples, positions, texts = _inputs_for_prediction(family, config, info)
    records = _predict_records(task, examples, config) if positions else []
    return records if texts is None else _aligned(records, positions, texts)


def _predict_records(task: LoadedTask, examples: Any, config: PredictConfig) -> list[dict[str, Any]]:
    family, model, tokenizer, info, scaling = task.family, task.model, task.tokenizer, task.info, task.scaling
    problem_type = model.config.problem_type
    features = family.featurize(examples, tokenizer, info.seq_len, stride=info.stride)
    torch.manual_seed(config.seed)
    outputs = _run(model, features, config, mc_samples=config.mc_samples)
    if scaling is not None:  # per pass: softmax(logits_s / T), then the mean over passes
        outputs = {**outputs, "logits": outputs["logits"] / scaling.temperature}
    if not config.mc_samples:
        records = family.score(examples, features, outputs, info.label_names, problem_type=problem_type,
                               max_answer_length=info.max_answer_length)[1]
    else:
        probs = family.probabilities(outputs["logits"], problem_type)  # (s, b, [n,] k)
        mean_logits = np.log(np.clip(probs.mean(0), 1e-12, None))
        _, records = family.score(examples, features, {"logits": mean_logits}, info.label_names,
                                  problem_type=problem_type, max_answer_length=info.max_answer_length)
        mean, std = probs.mean(0), probs.std(0, ddof=1)
        for i, record in enumerate(records):
            family.add_spread(record, mean[i], std[i], info.label_names)
            record["mc_samples"] = config.mc_samples
    _mark(records, _token_counts(examples, features, tokenizer), info.seq_len)
    return records


def _aligned(records: list[dict[str, Any]], positions: list[int], texts: list[str]) -> list[dict[str, Any]]:
    """One record per input text: the predictions at their positions, ``skipped`` records for empty texts."""
    out: list[dict[str, Any]] = [{"index": i, "text": text, "prediction": None, "skipped": EMPTY_TEXT}
                                 for i, text in enumerate(texts)]
    for record, position in zip(records, positions):
        record["index"] = position
        out[position] = record
    return out
