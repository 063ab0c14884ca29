"""Fine-tuning, evaluation and prediction for the four task families.

One runner per job, all sharing the training loop of pretraining (:mod:`fnet.training.loop`):

* :func:`finetune` reads train/validation files, builds (or loads) the task model, trains with an
  evaluation per epoch, keeps the best model, and writes a model directory that also holds the
  tokenizer, ``fnet_task.json`` (how to read inputs), ``metrics.json`` and ``predictions.jsonl``;
* :func:`evaluate` scores such a directory on a labelled file;
* :func:`predict` labels new inputs, optionally with Monte-Carlo dropout (``mc_samples``) for a
  mean probability and its standard deviation per label.

Legend: b batch, n sequence length, c choices, k labels.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fnet.checkpoint import atomic_write_text
from fnet.config import PRESETS, FNetConfig
from fnet.data import tasks as task_data
from fnet.data.features import Features

TASK_INFO_NAME = "fnet_task.json"
MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")
LABEL_KEYS = ("labels", "start_positions", "end_positions")
TASK_CHOICES = ("classification", "token-classification", "question-answering", "multiple-choice")

# the metric that selects the best epoch, per task
BEST_METRIC = {
    "classification": "eval_accuracy",
    "regression": "eval_pearson",
    "multi_label": "eval_f1_micro",
    "token_classification": "eval_f1",
    "question_answering": "eval_f1",
    "multiple_choice": "eval_accuracy",
}


def _model_class(task: str):
    import fnet

    return {
        "classification": fnet.FNetForSequenceClassification,
        "token_classification": fnet.FNetForTokenClassification,
        "question_answering": fnet.FNetForQuestionAnswering,
        "multiple_choice": fnet.FNetForMultipleChoice,
    }[task]


@dataclass
class FinetuneOptions:
    """Everything a fine-tuning run needs; the CLI fills it from its flags."""

    task: str  # classification | token-classification | question-answering | multiple-choice
    model: str  # a model directory (pretrained or converted) or a preset name (training from scratch)
    train: str  # training file
    validation: str | None = None  # validation file (evaluated every epoch; selects the best epoch)
    output: str = "runs/finetune"  # output model directory
    tokenizer: str | None = None  # tokenizer directory; default: the model directory
    epochs: float = 3.0  # passes over the training data
    lr: float = 5e-5  # peak learning rate
    batch_size: int = 16  # examples per optimizer step
    grad_accum: int = 1  # micro-batches per optimizer step (batch_size is split over them)
    seq_len: int = 128  # tokens per input (QA: per window); longer inputs are truncated or windowed
    stride: int = 128  # QA: overlap between consecutive windows of a long context, in tokens
    max_answer_length: int = 30  # QA: longest answer span, in tokens
    warmup_ratio: float = 0.1  # fraction of steps with linear warmup
    weight_decay: float = 0.01  # AdamW decay (never on biases and norms)
    seed: int = 0  # all randomness: init, shuffling, dropout
    bf16: bool = False  # bfloat16 autocast
    early_stopping: int = 0  # stop after this many epochs without improvement (0: off)
    max_train_examples: int | None = None  # use only the first N training examples
    max_eval_examples: int | None = None  # use only the first N validation examples
    threads: int | None = None  # torch threads
    progress: bool = True  # progress bar
    reader: dict[str, Any] = field(default_factory=dict)  # reader options (columns, format, delimiter)

    def canonical_task(self) -> str:
        return task_data.canonical_task(self.task)

    def validate(self) -> None:
        if self.batch_size < 1 or self.grad_accum < 1 or self.batch_size % self.grad_accum:
            raise ValueError(f"batch_size={self.batch_size} must be a positive multiple of grad_accum={self.grad_accum} "
                             "(each optimizer step splits the batch into grad_accum equal micro-batches)")
        if self.epochs <= 0 or self.seq_len < 8:
            raise ValueError(f"epochs must be > 0 and seq_len >= 8, got {self.epochs} and {self.seq_len}")


# ----------------------------------------------------------------------------- small helpers


def _load_tokenizer(*candidates: str | os.PathLike | None):
    from fnet.tokenization import FNetTokenizer

    for candidate in candidates:
        if candidate and (Path(candidate) / "spiece.model").is_file():
            return FNetTokenizer.from_pretrained(candidate)
    named = [str(c) for c in candidates if c]
    raise FileNotFoundError(
        f"no tokenizer (spiece.model) in {named}; pass --tokenizer DIR (e.g. one made by `fnet tokenizer train`)"
    )


def _slice(examples: Any, limit: int | None) -> Any:
    """The first ``limit`` examples of any reader's result."""
    if limit is None or len(examples) <= limit:
        return examples
    import dataclasses

    values = {}
    for f in dataclasses.fields(examples):
        value = getattr(examples, f.name)
        values[f.name] = value[:limit] if isinstance(value, list) and len(value) == len(examples) else value
    return type(examples)(**values)


def _read(task: str, path: str, reader: dict[str, Any], limit: int | None, label_names=None,
          problem_type: str | None = None):
    """Read a split; later splits get the training split's label list and problem type, so that
    e.g. a dev set whose regression targets happen to be whole numbers is not read as classes."""
    options = dict(reader)
    if task in ("classification", "token_classification") and label_names:
        options.setdefault("label_names", label_names)
    if task == "classification" and problem_type:
        options.setdefault("problem_type", problem_type)
    examples = task_data.load_task_examples(task, path, **options)
    if len(examples) == 0:
        raise ValueError(f"{path} holds no examples for task {task}")
    return _slice(examples, limit)


def _features(task: str, examples: Any, tokenizer, seq_len: int, stride: int) -> Features:
    options: dict[str, Any] = {}
    if task == "question_answering":
        options["stride"] = stride
    return task_data.featurize(task, examples, tokenizer, max_length=seq_len, **options)


def _batch(features: Features, rows: np.ndarray | list[int] | slice) -> dict[str, torch.Tensor]:
    """Rows of a feature table, cut to the longest real length among them (pads beyond it are
    dropped; with the attention mask passed, the kept pads do not change any output)."""
    batch = {k: v[rows] for k, v in features.items() if k in MODEL_INPUTS or k in LABEL_KEYS}
    mask = batch["attention_mask"]
    longest = int(mask.reshape(-1, mask.shape[-1]).sum(-1).max().clamp(min=1))
    for key in list(batch):
        if key in MODEL_INPUTS or (key == "labels" and batch[key].dim() == mask.dim()):
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
            inputs = {k: v for k, v in batch.items() if k in MODEL_INPUTS}
            samples: dict[str, list[np.ndarray]] = {}
            for _ in range(passes):
                out = model(**inputs)
                for key in ("logits", "start_logits", "end_logits"):
                    value = getattr(out, key, None)
                    if value is None:
                        continue
                    value = value.float().cpu().numpy()
                    per_token = key != "logits" or value.ndim == 3  # (rows, n[, k])
                    if per_token and value.shape[1] < full:
                        pad = [(0, 0)] * value.ndim
                        pad[1] = (0, full - value.shape[1])
                        value = np.pad(value, pad, constant_values=-1e4 if key != "logits" else 0.0)
                    samples.setdefault(key, []).append(value)
            for key, values in samples.items():
                chunks.setdefault(key, []).append(np.stack(values))  # (passes, rows, ...)
    finally:
        model.eval()
    result = {key: np.concatenate(values, axis=1) for key, values in chunks.items()}
    return result if mc_samples else {key: value[0] for key, value in result.items()}


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# ----------------------------------------------------------------------------- scoring


def _score(task: str, problem_type: str | None, examples: Any, features: Features, outputs: dict[str, np.ndarray],
           label_names: list[str], max_answer_length: int) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Metrics (``eval_*``) and one prediction record per example."""
    from fnet.training import metrics as M

    records: list[dict[str, Any]] = []
    if task == "classification":
        logits = outputs["logits"]
        gold = features.get("labels")
        if problem_type == "regression":
            pred = logits[:, 0]
            records = [{"prediction": float(p)} for p in pred]
            scores = M.compute_metrics("regression", pred, gold.numpy()) if gold is not None else {}
        elif problem_type == "multi_label_classification":
            probs = _sigmoid(logits)
            pred = (probs >= 0.5).astype(int)
            records = [{"labels": [label_names[j] for j in np.nonzero(row)[0]],
                        "probabilities": {label_names[j]: float(p) for j, p in enumerate(prow)}}
                       for row, prow in zip(pred, probs)]
            scores = M.compute_metrics("multi_label", pred, gold.numpy().astype(int)) if gold is not None else {}
        else:
            probs = _softmax(logits)
            pred = probs.argmax(-1)
            records = [{"label": label_names[int(p)], "probabilities": {label_names[j]: float(q) for j, q in enumerate(row)}}
                       for p, row in zip(pred, probs)]
            scores = M.compute_metrics("classification", pred, gold.numpy(), num_labels=len(label_names)) if gold is not None else {}
        for record, text in zip(records, examples.texts):
            record["text"] = text
    elif task == "token_classification":
        tags = task_data.token_predictions_to_tags(outputs["logits"], features, label_names)
        records = [{"tokens": toks, "tags": t} for toks, t in zip(examples.sentences, tags)]
        gold = [list(t) for t in examples.tags] if getattr(examples, "tags", None) else None
        scores = M.compute_metrics("token_classification", tags, gold) if gold and any(gold) else {}
    elif task == "question_answering":
        # null answers only where the data has unanswerable questions: COVID-QA carries SQuAD v2's
        # is_impossible field but every question has an answer, and an undertrained model's CLS
        # score (the target of most windows) would otherwise win everywhere
        allow_null = bool(examples.version_2_with_negative) and any(ex.is_impossible for ex in examples)
        answers = task_data.postprocess_qa_predictions(
            examples, features, outputs["start_logits"], outputs["end_logits"], max_answer_length=max_answer_length,
            version_2_with_negative=allow_null)
        records = [{"id": ex.id, "question": ex.question, "answer": answers[ex.id]} for ex in examples]
        from fnet.data.qa import gold_texts

        golds = gold_texts(examples)
        scores = M.compute_metrics("question_answering", answers, golds) if golds else {}
    else:  # multiple choice
        probs = _softmax(outputs["logits"])
        pred = probs.argmax(-1)
        records = [{"choice": int(p), "probabilities": [float(q) for q in row]} for p, row in zip(pred, probs)]
        gold = features.get("labels")
        scores = M.compute_metrics("multiple_choice", pred, gold.numpy()) if gold is not None else {}
    return {f"eval_{k}": float(v) for k, v in scores.items()}, records


# ----------------------------------------------------------------------------- fine-tuning


def _build_model(task: str, options: FinetuneOptions, tokenizer, label_info: dict[str, Any]):
    cls = _model_class(task)
    overrides = dict(label_info)
    if options.model in PRESETS:
        config = FNetConfig.from_preset(
            options.model, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
            max_position_embeddings=max(512, options.seq_len), **overrides)
        torch.manual_seed(options.seed)
        return cls(config)
    if not Path(options.model).is_dir():
        raise FileNotFoundError(
            f"--model {options.model!r} is neither a model directory nor a preset ({', '.join(PRESETS)})")
    model = cls.from_pretrained(options.model, ignore_mismatched_sizes=True, **overrides)
    if model.config.vocab_size < len(tokenizer):
        raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but the model only {model.config.vocab_size}; "
                         "use the tokenizer the model was trained with")
    if options.seq_len > model.config.max_position_embeddings:
        print(f"note: extending the position table from {model.config.max_position_embeddings} to "
              f"{options.seq_len} positions (new rows copy the trained ones) for --seq-len {options.seq_len}")
        model.resize_position_embeddings(options.seq_len, init="copy")
    return model


def _label_info(task: str, examples: Any) -> tuple[dict[str, Any], list[str]]:
    if task == "classification":
        names = list(examples.label_names or [])
        if examples.problem_type == "regression":
            return {"num_labels": 1, "problem_type": "regression"}, ["score"]
        return ({"id2label": dict(enumerate(names)), "problem_type": examples.problem_type}, names)
    if task == "token_classification":
        names = list(examples.label_names)
        return {"id2label": dict(enumerate(names))}, names
    return {}, []


def finetune(options: FinetuneOptions) -> dict[str, Any]:
    """Train a task model; returns the final validation metrics (and where things were written)."""
    from fnet.data.collate import ListDataset, StepBatches
    from fnet.training.loop import Trainer, TrainerConfig
    from fnet.training.optim import OptimConfig, build_optimizer, build_scheduler

    task = options.canonical_task()
    options.validate()
    if options.threads:
        torch.set_num_threads(options.threads)
    output = Path(options.output)
    output.mkdir(parents=True, exist_ok=True)
    tokenizer = _load_tokenizer(options.tokenizer, options.model if options.model not in PRESETS else None)
    started = time.perf_counter()
    train_ex = _read(task, options.train, options.reader, options.max_train_examples)
    label_info, label_names = _label_info(task, train_ex)
    val_ex = None
    if options.validation:
        val_ex = _read(task, options.validation, options.reader, options.max_eval_examples,
                       label_names=getattr(train_ex, "label_names", None),
                       problem_type=getattr(train_ex, "problem_type", None))
    train_feats = _features(task, train_ex, tokenizer, options.seq_len, options.stride)
    val_feats = _features(task, val_ex, tokenizer, options.seq_len, options.stride) if val_ex is not None else None
    model = _build_model(task, options, tokenizer, label_info)
    problem_type = model.config.problem_type if task == "classification" else None

    micro = options.batch_size // options.grad_accum
    rows = list(range(train_feats.num_rows))
    dataset = ListDataset(rows, lambda idx: _batch(train_feats, idx))
    data = StepBatches(dataset, micro_batch_size=micro, grad_accum=options.grad_accum, seed=options.seed)
    max_steps = max(1, math.ceil(options.epochs * data.steps_per_epoch))
    optim = OptimConfig(lr=options.lr, weight_decay=options.weight_decay,
                        warmup_steps=int(options.warmup_ratio * max_steps))
    optimizer = build_optimizer(model, optim)
    scheduler = build_scheduler(optimizer, optim, max_steps)
    best_key = BEST_METRIC["regression" if problem_type == "regression" else
                           "multi_label" if problem_type == "multi_label_classification" else task]

    def evaluate(m) -> dict[str, float]:
        if val_feats is None:
            return {}
        outputs = _logits(m, val_feats, batch_size=max(32, options.batch_size))
        scores, _ = _score(task, problem_type, val_ex, val_feats, outputs, label_names, options.max_answer_length)
        return scores

    trainer_config = TrainerConfig(
        max_steps=max_steps, output_dir=str(output / "training"), seed=options.seed, bf16=options.bf16,
        log_every=max(1, min(50, data.steps_per_epoch // 4)), eval_every_epoch=val_feats is not None,
        eval_at_end=val_feats is not None, best_metric=best_key if val_feats is not None else None,
        early_stopping_patience=options.early_stopping if val_feats is not None else 0,
        progress=options.progress, keep_last=1,
    )
    trainer = Trainer(model, optimizer, data, trainer_config, scheduler=scheduler, evaluate=evaluate)
    result = trainer.train()
    train_seconds = time.perf_counter() - started

    best_dir = output / "training" / "best"
    if val_feats is not None and (best_dir / "model.safetensors").is_file():
        model = _model_class(task).from_pretrained(best_dir)
    _save_directory(model, tokenizer, output, task, options, label_names)
    summary: dict[str, Any] = {"task": task, "train_examples": len(train_ex), "steps": result.step,
                               "train_seconds": round(train_seconds, 1), "best_step": result.best_step,
                               "stopped_early": result.stopped_early}
    if val_feats is not None:
        outputs = _logits(model, val_feats, batch_size=max(32, options.batch_size))
        scores, records = _score(task, problem_type, val_ex, val_feats, outputs, label_names, options.max_answer_length)
        summary.update(scores)
        _write_jsonl(output / "predictions.jsonl", records)
    atomic_write_text(output / "metrics.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _save_directory(model, tokenizer, output: Path, task: str, options: FinetuneOptions, label_names: list[str]):
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    info = {"task": task, "seq_len": options.seq_len, "stride": options.stride,
            "max_answer_length": options.max_answer_length, "reader": options.reader, "label_names": label_names}
    atomic_write_text(output / TASK_INFO_NAME, json.dumps(info, indent=2) + "\n")


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


# ----------------------------------------------------------------------------- evaluate / predict


def _task_info(model_dir: str | os.PathLike) -> dict[str, Any]:
    """What `fnet finetune` recorded about a directory: task, input length, reader options, labels."""
    path = Path(model_dir) / TASK_INFO_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir} has no {TASK_INFO_NAME}: it was not written by `fnet finetune`")
    return json.loads(path.read_text(encoding="utf-8"))


def task_of(model_dir: str | os.PathLike) -> str:
    """The task a directory written by `fnet finetune` was trained for."""
    return _task_info(model_dir)["task"]


def _load_task_dir(model_dir: str | os.PathLike):
    info = _task_info(model_dir)
    model = _model_class(info["task"]).from_pretrained(model_dir)
    if not info["label_names"] and info["task"] in ("classification", "token_classification"):
        info["label_names"] = [model.config.labels()[i] for i in range(model.config.num_labels)]
    return model, _load_tokenizer(model_dir), info


def evaluate(model_dir: str, data: str, output: str | None = None, batch_size: int = 32,
             max_examples: int | None = None, reader: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score a fine-tuned directory on a labelled file; writes metrics.json and predictions.jsonl."""
    model, tokenizer, info = _load_task_dir(model_dir)
    task = info["task"]
    examples = _read(task, data, {**info["reader"], **(reader or {})}, max_examples,
                     label_names=info["label_names"] if model.config.problem_type != "regression" else None,
                     problem_type=model.config.problem_type if task == "classification" else None)
    features = _features(task, examples, tokenizer, info["seq_len"], info["stride"])
    started = time.perf_counter()
    outputs = _logits(model, features, batch_size)
    seconds = time.perf_counter() - started
    scores, records = _score(task, model.config.problem_type if task == "classification" else None, examples,
                             features, outputs, info["label_names"], info["max_answer_length"])
    out_dir = Path(output or model_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {"task": task, "data": str(data), "examples": len(examples), "seconds": round(seconds, 2), **scores}
    atomic_write_text(out_dir / "metrics.json", json.dumps(summary, indent=2) + "\n")
    _write_jsonl(out_dir / "predictions.jsonl", records)
    return summary


def predict(model_dir: str, texts: list[str] | None = None, input_file: str | None = None, mc_samples: int = 0,
            batch_size: int = 32, reader: dict[str, Any] | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """Predictions for raw texts (classification, token classification) or an input file (any task).

    With ``mc_samples`` = N > 0, N stochastic passes with dropout on give, per label, the mean
    probability (``probabilities``) and its standard deviation (``std``).
    """
    model, tokenizer, info = _load_task_dir(model_dir)
    task = info["task"]
    label_names = info["label_names"]
    if mc_samples < 0:
        raise ValueError(f"--mc-samples must be >= 0, got {mc_samples}")
    if mc_samples == 1:
        raise ValueError("--mc-samples 1 gives no spread; use 0 (deterministic) or at least 2")
    if mc_samples and model.config.hidden_dropout_prob == 0:
        raise ValueError("the model has hidden_dropout_prob=0, so Monte-Carlo dropout samples would all be equal")
    examples = _inputs_for_prediction(task, texts, input_file, {**info["reader"], **(reader or {})}, label_names)
    features = _features(task, examples, tokenizer, info["seq_len"], info["stride"])
    torch.manual_seed(seed)
    outputs = _logits(model, features, batch_size, mc_samples=mc_samples)
    if not mc_samples:
        _, records = _score(task, model.config.problem_type if task == "classification" else None, examples,
                            features, outputs, label_names, info["max_answer_length"])
        return records
    if task == "question_answering":
        raise ValueError("--mc-samples is supported for classification, token classification and multiple choice")
    probs = _sigmoid(outputs["logits"]) if model.config.problem_type == "multi_label_classification" \
        else _softmax(outputs["logits"])  # (s, rows, [n,] k)
    mean_logits = np.log(np.clip(probs.mean(0), 1e-12, None))
    _, records = _score(task, model.config.problem_type if task == "classification" else None, examples,
                        features, {"logits": mean_logits}, label_names, info["max_answer_length"])
    mean, std = probs.mean(0), probs.std(0, ddof=1)
    for i, record in enumerate(records):
        if task == "classification":
            record["probabilities"] = {label_names[j]: float(mean[i, j]) for j in range(mean.shape[-1])}
            record["std"] = {label_names[j]: float(std[i, j]) for j in range(std.shape[-1])}
        elif task == "multiple_choice":
            record["probabilities"] = [float(p) for p in mean[i]]
            record["std"] = [float(s) for s in std[i]]
        record["mc_samples"] = mc_samples
    return records


def _inputs_for_prediction(task: str, texts, input_file, reader, label_names):
    """Examples to predict: command-line texts, a plain .txt file (one text per line), or a task file."""
    from fnet.data.readers import ClassificationExamples, TokenClassificationExamples

    if input_file and Path(input_file).suffix.lower() != ".txt":
        return task_data.load_task_examples(task, input_file, **reader)
    if input_file:
        try:
            lines = Path(input_file).read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as err:
            raise ValueError(f"{input_file} is not valid UTF-8 ({err})") from err
        texts = [line for line in lines if line.strip()]
    if not texts:
        raise ValueError("give texts to predict, or --input FILE")
    if task == "classification":
        return ClassificationExamples(texts=list(texts), pairs=None, labels=[], label_names=label_names,
                                      problem_type="single_label_classification")
    if task == "token_classification":
        words = [t.split() for t in texts]
        return TokenClassificationExamples(sentences=words, tags=[["O"] * len(w) for w in words],
                                           label_names=label_names)
    raise ValueError(f"{task} needs structured input: pass --input FILE in the task's format "
                     "(SQuAD JSON for question answering, CSV/JSON lines for multiple choice)")
