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
from fnet.io import atomic_write_text
from fnet.optimize import optimize_for_inference
from fnet.options import flag_name, option
from fnet.run_folder import check_output_path
from fnet.tasks import TaskFamily, cli_choices, get_family

__all__ = ["FinetuneConfig", "EvaluateConfig", "PredictConfig", "TaskInfo", "finetune", "evaluate", "predict",
           "task_info", "TASK_INFO_NAME"]

logger = logging.getLogger(__name__)

TASK_INFO_NAME = "fnet_task.json"


def _flag(cls: type, name: str) -> str:
    """The CLI flag of a config field, for error messages."""
    return flag_name(next(f for f in dataclasses.fields(cls) if f.name == name))


def _require(config: Any, *names: str) -> None:
    for name in names:
        if getattr(config, name) in (None, ""):
            raise ValueError(f"{_flag(type(config), name)} is required")


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
    epochs: float = option(3.0, "passes over the training data")
    lr: float = option(5e-5, "peak learning rate")
    batch_size: int = option(16, "examples per optimizer step")
    grad_accum: int = option(1, "micro-batches per optimizer step (the batch is split over them)")
    seq_len: int = option(128, "tokens per input (QA: per window); longer inputs are truncated or windowed")
    stride: int | None = option(None, "QA: overlap of consecutive windows, in tokens (default: min(128, seq-len // 4), "
                                      "which fits every --seq-len)")
    max_answer_length: int = option(30, "QA: longest answer, in tokens")
    warmup_ratio: float = option(0.1, "fraction of steps with linear warmup")
    weight_decay: float = option(0.01, "AdamW decay (never on biases and norms)")
    seed: int = option(0, "all randomness: init, shuffling, dropout")
    bf16: bool = option(False, "bfloat16 autocast")
    early_stopping: int = option(0, "stop after this many evaluations without improvement (0: off)",
                                 metavar="EPOCHS")
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
        _require(self, "task", "model", "train", "output")
        try:
            family = self.family()
        except ValueError as err:
            raise ValueError(f"--task: {err}") from None
        family.options.of(self.reader, where="reader options")
        if self.batch_size < 1 or self.grad_accum < 1 or self.batch_size % self.grad_accum:
            raise ValueError(f"--batch-size {self.batch_size} must be a positive multiple of --grad-accum "
                             f"{self.grad_accum} (each optimizer step splits the batch into equal micro-batches)")
        if self.epochs <= 0:
            raise ValueError(f"--epochs must be > 0, got {self.epochs}")
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


def default_stride(seq_len: int) -> int:
    """QA window overlap when --stride is not given: a quarter of the window, at most 128 tokens.
    Questions are cut to half the window (tasks.question_answering), so it always fits."""
    return min(128, seq_len // 4)


@dataclass
class EvaluateConfig:
    """`fnet evaluate`: score a fine-tuned directory on a labelled file."""

    model: str | None = option(None, "folder written by `fnet finetune`, or its Hub id (owner/name[@revision]) "
                                     "(required)")
    data: str | None = option(None, "labelled file in the task's format (required)")
    output: str | None = option(None, "where metrics.json and predictions.jsonl go (default: the model directory)")
    batch_size: int = option(32, "examples per forward pass")
    max_examples: int | None = option(None, "score only the first N examples")
    overwrite: bool = option(False, "replace what --output holds")
    reader: dict[str, Any] = option(help="reader options, over those recorded in fnet_task.json", cli=False,
                                    default_factory=dict)

    def validate(self) -> None:
        _require(self, "model", "data")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.output:
            from fnet import run_folder

            if Path(self.output).resolve() == Path(self.model).resolve():
                raise ValueError("--output is the --model folder: omit --output to write metrics.json and "
                                 "predictions.jsonl there")
            run_folder.check_claim(self.output, "evaluate", overwrite=self.overwrite)


@dataclass
class PredictConfig:
    """`fnet predict`: label raw texts or a file with a fine-tuned directory."""

    model: str | None = option(None, "folder written by `fnet finetune`, or its Hub id (owner/name[@revision]) "
                                     "(required)")
    texts: list[str] = option(help="texts to classify or tag", cli=False, default_factory=list)
    input: str | None = option(None, "input file")
    output: str | None = option(None, "write JSON lines here instead of stdout")
    mc_samples: int = option(0, "N stochastic passes with dropout on: mean probability and its std per label",
                             metavar="N")
    batch_size: int = option(32, "examples per forward pass")
    seed: int = option(0, "seed of the dropout masks (with --mc-samples)")
    reader: dict[str, Any] = option(help="reader options, over those recorded in fnet_task.json", cli=False,
                                    default_factory=dict)

    def validate(self) -> None:
        _require(self, "model")
        if self.output:
            check_output_path(self.output, want="file")
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
    mask = batch["attention_mask"]
    longest = int(mask.reshape(-1, mask.shape[-1]).sum(-1).max().clamp(min=1))
    for key in list(batch):
        if key in MODEL_KEYS or (key == "labels" and batch[key].dim() == mask.dim()):
            batch[key] = batch[key][..., :longest]
    return batch


@torch.no_grad()
def _logits(model, features: Features, batch_size: int, mc_samples: int = 0) -> dict[str, np.ndarray]:
    """Run ``model`` over all feature rows; returns ``logits`` / ``start_logits`` / ``end_logits``.

    Batches are cut to their longest real length (see :func:`_batch`); per-token outputs are padded
    back to the feature length (QA logits with -1e4, so padding is never picked as an answer). With
    ``mc_samples`` > 0 dropout stays on and each array gains a leading axis of that many samples.
    """
    passes = max(1, mc_samples)
    model.train(mc_samples > 0)
    full = features["input_ids"].shape[-1]
    chunks: dict[str, list[np.ndarray]] = {}
    try:
        for start in range(0, features.num_rows, batch_size):
            batch = _batch(features, slice(start, start + batch_size))
            inputs = {k: v for k, v in batch.items() if k in MODEL_KEYS}
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
    result = {key: np.concatenate(values, axis=1) for key, values in chunks.items()}
    return result if mc_samples else {key: value[0] for key, value in result.items()}


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def _write_metrics(directory: Path, summary: dict[str, Any]) -> None:
    atomic_write_text(directory / "metrics.json", json.dumps(summary, indent=2) + "\n")


# ----------------------------------------------------------------------------- fine-tuning


def _build_model(family: TaskFamily, config: FinetuneConfig, tokenizer, label_info: dict[str, Any]):
    cls = family.model_class()
    if config.model in PRESETS:
        model_config = FNetConfig.from_preset(
            config.model, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
            max_position_embeddings=max(512, config.seq_len), **label_info)
        torch.manual_seed(config.seed)
        return cls(model_config)
    model = cls.from_pretrained(config.model, ignore_mismatched_sizes=True, **label_info)
    if model.config.vocab_size < len(tokenizer):
        raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but the model only {model.config.vocab_size}; "
                         "use the tokenizer the model was trained with")
    if config.seq_len > model.config.max_position_embeddings:
        logger.warning("extending the position table from %d to %d positions (new rows copy the trained ones) "
                       "for --seq-len %d", model.config.max_position_embeddings, config.seq_len, config.seq_len)
        model.resize_position_embeddings(config.seq_len, init="copy")
    return model


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
    # fused inference kernels for the evaluations; training steps keep the reference path
    model = optimize_for_inference(_build_model(family, config, tokenizer, label_info))
    problem_type = model.config.problem_type

    micro = config.batch_size // config.grad_accum
    dataset = ListDataset(list(range(train_feats.num_rows)), lambda idx: _batch(train_feats, idx))
    data = StepBatches(dataset, micro_batch_size=micro, grad_accum=config.grad_accum, seed=config.seed)
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
        progress=config.progress, keep_last=1,
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


# ----------------------------------------------------------------------------- evaluate / predict


def _load_task_dir(model_dir: str | os.PathLike):
    from fnet.hub import resolve

    model_dir = resolve(model_dir, flag="--model")  # a folder, or a Hub id of a `fnet finetune` output
    info = task_info(model_dir)
    family = info.family()
    model = optimize_for_inference(family.model_class().from_pretrained(model_dir))
    if not info.label_names:  # an fnet_task.json without labels: the model config's (unused by span/choice tasks)
        info.label_names = [model.config.labels()[i] for i in range(model.config.num_labels)]
    tokenizer = _load_tokenizer(None, model_dir, hint="the folder was not written by `fnet finetune`, or its "
                                "tokenizer files were removed: copy them back into it")
    return family, model, tokenizer, info


def evaluate(config: EvaluateConfig) -> dict[str, Any]:
    """Score a fine-tuned directory on a labelled file; writes metrics.json and predictions.jsonl."""
    config.validate()
    family, model, tokenizer, info = _load_task_dir(config.model)
    problem_type = model.config.problem_type
    examples = _read(family, config.data, {**info.reader, **config.reader}, config.max_examples,
                     family.inherited_options(info.label_names, problem_type))
    features = family.featurize(examples, tokenizer, info.seq_len, stride=info.stride)
    started = time.perf_counter()
    outputs = _logits(model, features, config.batch_size)
    seconds = time.perf_counter() - started
    scores, records = family.score(examples, features, outputs, info.label_names, problem_type=problem_type,
                                   max_answer_length=info.max_answer_length)
    summary = {"task": family.name, "data": str(config.data), "examples": len(examples),
               "seconds": round(seconds, 2), **scores}
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


def _inputs_for_prediction(family: TaskFamily, config: PredictConfig, info: TaskInfo) -> Any:
    """Examples to predict: command-line texts, a plain .txt file (one text per line), or a task file."""
    texts = config.texts
    if config.input and Path(config.input).suffix.lower() != ".txt":
        return _read(family, config.input, {**info.reader, **config.reader}, None)
    if config.input:
        try:
            lines = Path(config.input).read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as err:
            raise ValueError(f"{config.input} is not valid UTF-8 ({err})") from err
        texts = [line for line in lines if line.strip()]
    if not texts:
        raise ValueError("give texts to predict, or --input FILE")
    return family.examples_from_texts(texts, info.label_names)


def predict(config: PredictConfig) -> list[dict[str, Any]]:
    """Predictions for raw texts (families with text input) or an input file (any family).

    With ``mc_samples`` = N > 0, N stochastic passes with dropout on give, per label, the mean
    probability (``probabilities``) and its standard deviation (``std``).
    """
    config.validate()
    family, model, tokenizer, info = _load_task_dir(config.model)
    problem_type = model.config.problem_type
    if config.mc_samples and model.config.hidden_dropout_prob == 0:
        raise ValueError("the model has hidden_dropout_prob=0, so Monte-Carlo dropout samples would all be equal")
    examples = _inputs_for_prediction(family, config, info)
    features = family.featurize(examples, tokenizer, info.seq_len, stride=info.stride)
    torch.manual_seed(config.seed)
    outputs = _logits(model, features, config.batch_size, mc_samples=config.mc_samples)
    if not config.mc_samples:
        return family.score(examples, features, outputs, info.label_names, problem_type=problem_type,
                            max_answer_length=info.max_answer_length)[1]
    if not family.spread:
        from fnet.tasks import FAMILIES

        allowed = ", ".join(f.cli_name for f in FAMILIES.values() if f.spread)
        raise ValueError(f"--mc-samples is supported for {allowed}")
    probs = family.probabilities(outputs["logits"], problem_type)  # (s, b, [n,] k)
    mean_logits = np.log(np.clip(probs.mean(0), 1e-12, None))
    _, records = family.score(examples, features, {"logits": mean_logits}, info.label_names,
                              problem_type=problem_type, max_answer_length=info.max_answer_length)
    mean, std = probs.mean(0), probs.std(0, ddof=1)
    for i, record in enumerate(records):
        family.add_spread(record, mean[i], std[i], info.label_names)
        record["mc_samples"] = config.mc_samples
    return records
