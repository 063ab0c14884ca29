"""Task-specific distillation: a BERT fine-tuned on your labels, then a fast FNet student trained on
its answers (:func:`task_distill`, ``fnet distill --task classification``).

This is the second stage of DistilBERT (Sanh et al. 2019) and TinyBERT (Jiao et al. 2020), the one
that made small students match their teachers on a task:

1. **The teacher learns the task.** The BERT-family ``--teacher`` is fine-tuned on ``--train`` with
   ``fnet finetune`` (its own defaults: lr by width, warmup, best epoch on ``--validation``) into
   ``OUTPUT/teacher``. A ``--teacher`` that already is a ``fnet finetune`` folder is used as it is.
2. **The student copies the teacher.** An FNet student is built from the fine-tuned teacher as
   ``fnet distill`` builds one (:func:`fnet.training.distill.student_from_teacher`: embeddings,
   feed-forward and norms copied, attention replaced by Fourier mixing with LayerScale), and the
   teacher's pooler and classifier are copied too, so the student starts as a damaged copy of the
   fine-tuned teacher. It then trains on the labelled texts, and on any unlabelled in-domain text
   (``--train-files``), against :func:`task_distillation_loss`: the teacher's soft labels
   (temperature-scaled KL), the gold labels where there are some, and the teacher's hidden states.

The output folder is an ordinary ``fnet finetune`` folder (model, tokenizer, ``fnet_task.json``,
``metrics.json``), so ``fnet predict`` and ``fnet evaluate`` take it as is; ``OUTPUT/teacher`` is
the fine-tuned teacher, the same kind of folder. Training runs on the one
:class:`fnet.training.loop.Trainer` on the run harness (``--device``, ``--precision``, torchrun's
DDP): checkpoints, ``--resume`` (a finished teacher is reused; a stopped teacher or student continues
from its newest checkpoint), ``--time-budget``, batches grouped by length.

Legend: b rows, k labels, n tokens, d hidden size.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar, Sequence

from fnet.harness import CPU_BF16_HELP, PRECISIONS
from fnet.options import option, require, require_at_least
from fnet.training.run_options import RunOptions

logger = logging.getLogger(__name__)

__all__ = ["TaskDistillConfig", "task_distill", "soft_label_loss", "task_distillation_loss", "student_task_model",
           "TEACHER_DIR"]

TASKS = ("classification",)  # single-label sequence classification: what has a softmax to distil
TEACHER_DIR = "teacher"  # OUTPUT/teacher: the fine-tuned teacher


@dataclass
class TaskDistillConfig(RunOptions):
    """Options of ``fnet distill --task``: a fine-tuned teacher and an FNet student of it."""

    cpu_bf16: ClassVar[bool] = True  # bf16 by default on a CPU with hardware bfloat16 (see fnet.harness)
    precision: str | None = option(None, CPU_BF16_HELP, choices=PRECISIONS)

    task: str | None = option(None, "task-specific distillation: fine-tune --teacher on the labels of --train, then "
                                    "train the FNet student on its answers (only classification); without --task, "
                                    "fnet distill is the general distillation on unlabelled text",
                              choices=TASKS)
    teacher: str | None = option(None, "the BERT-family teacher: a model folder or Hub id, pretrained (fine-tuned "
                                       "here into OUTPUT/teacher) or a `fnet finetune` folder of it (used as is)")
    train: str | None = option(None, "with --task: the labelled training file (CSV/TSV/JSON lines, as fnet finetune "
                                     "reads it)")
    validation: str | None = option(None, "with --task: labelled file that picks the teacher's and the student's "
                                          "best epoch and is scored in metrics.json")
    train_files: list[str] | None = option(None, "with --task: optional unlabelled in-domain text, one text per "
                                                 "line; the student learns the teacher's answers on it too")
    output: str | None = option(None, "output folder")
    seq_len: int = option(128, "tokens per input ([CLS] and [SEP] included); longer inputs are truncated")
    batch_size: int = option(32, "texts per optimizer step")
    epochs: float = option(3.0, "with --task: the student's passes over the texts")
    lr: float = option(4e-4, "with --task: the student's peak learning rate")
    warmup_ratio: float = option(0.06, "with --task: share of the student's steps with linear warmup")
    temperature: float = option(2.0, "with --task: softmax temperature of the soft-label loss (Hinton et al.)")
    soft_weight: float = option(1.0, "with --task: weight of the KL to the teacher's soft labels (times T^2)")
    label_weight: float = option(0.0, "with --task: weight of the cross-entropy with the gold labels")
    hidden_weight: float = option(1.0, "with --task: weight of the MSE to the teacher's hidden states (every layer)")
    teacher_epochs: float | None = option(None, "with --task: the teacher's fine-tuning passes (default: fnet "
                                                "finetune's)")
    teacher_lr: float | None = option(None, "with --task: the teacher's fine-tuning rate (default: fnet finetune's, "
                                            "by the teacher's width)")
    teacher_time_budget: float = option(0.0, "with --task: stop the teacher's fine-tuning after this many minutes "
                                             "(its best epoch so far is kept; 0: no limit)")
    max_train_examples: int | None = option(None, "with --task: use only the first N labelled examples (teacher "
                                                  "and student)")
    teacher_train_examples: int | None = option(None, "with --task: the teacher is fine-tuned on only the first N "
                                                      "labelled examples (the costly stage); the student still "
                                                      "learns the teacher's answers, and the gold labels, on all")
    max_texts: int | None = option(None, "use at most this many unlabelled texts, the first ones read")
    time_budget: float = option(0.0, "stop the student after this many minutes of training; the lr schedule fits "
                                     "the budget (0: no limit)")
    layers: int | None = option(None, "student layers (default: the teacher's)")
    attention_layers: int = option(0, "keep the teacher's attention in this many top layers (an FNet hybrid)")
    layer_scale: float = option(1e-3, "initial LayerScale gain of the student's Fourier sublayers (0: none)")
    seed: int = option(0, "seed of the shuffling, dropout and the new weights")
    group_by_length: bool = option(True, "batches of texts of about one length, for the teacher's fine-tuning and "
                                         "the student (less padding, faster on varied lengths; "
                                         "--no-group-by-length: random batches)")
    save_every: int = option(200, "steps between checkpoints: the teacher's in OUTPUT/teacher/training/checkpoints, "
                                  "the student's in OUTPUT/checkpoints (0: the teacher at each epoch's end, the student "
                                  "never)")
    reader: dict[str, Any] = option(help="reader options of the labelled files (columns, format, ...)", cli=False,
                                    default_factory=dict)

    def checked(self) -> "TaskDistillConfig":
        """Raise ``ValueError`` naming the flag to change."""
        require(self, "task", "teacher", "train", "output")
        if self.task not in TASKS:
            raise ValueError(f"--task {self.task!r}: task-specific distillation supports {', '.join(TASKS)}")
        require_at_least(self, 1, "batch_size")
        self.check_run_options()
        if self.seq_len < 8:
            raise ValueError(f"--seq-len must be >= 8, got {self.seq_len}")
        for name in ("epochs", "lr", "temperature"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        for name in ("soft_weight", "label_weight", "hidden_weight", "time_budget", "teacher_time_budget",
                     "layer_scale"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.soft_weight + self.label_weight + self.hidden_weight == 0:
            raise ValueError("--soft-weight, --label-weight and --hidden-weight are all 0: nothing to learn")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.attention_layers < 0:
            raise ValueError(f"--attention-layers must be >= 0, got {self.attention_layers}")
        for name in ("max_train_examples", "teacher_train_examples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        return self

    def teacher_examples(self) -> int | None:
        """How many of the first labelled examples the teacher is fine-tuned on (None: all)."""
        caps = [n for n in (self.max_train_examples, self.teacher_train_examples) if n is not None]
        return min(caps) if caps else None


# ----------------------------------------------------------------------------- the objective


def soft_label_loss(student_logits, teacher_logits, temperature: float):
    """``T^2 * KL(softmax(t / T) || softmax(s / T))``, mean over rows: (b, k) logits -> scalar.

    The ``T^2`` keeps the gradient's size independent of ``T`` (Hinton et al. 2015)."""
    import torch.nn.functional as F

    log_p_student = F.log_softmax(student_logits.float() / temperature, dim=-1)  # (b, k)
    log_p_teacher = F.log_softmax(teacher_logits.float() / temperature, dim=-1)  # (b, k)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(-1)  # (b,)
    return kl.mean() * temperature ** 2


def task_distillation_loss(student_out: Any, teacher_out: Any, labels: Any, attention_mask: Any,
                           layer_map: Sequence[int], temperature: float = 2.0, soft_weight: float = 1.0,
                           label_weight: float = 0.0, hidden_weight: float = 1.0):
    """(loss, stats) of a student classifier against its teacher on one batch.

    ``soft_weight * soft_label_loss + label_weight * CE(gold) + hidden_weight * hidden MSE``; the
    cross-entropy is over rows with a label (``labels >= 0``; unlabelled text has -100), the hidden
    MSE is :func:`fnet.training.distill.distillation_loss`'s (every student layer against its teacher
    layer, real tokens only; needs both outputs run with ``output_hidden_states=True``). ``stats``:
    each term, and how often the student's top class is the teacher's (``agreement``).
    """
    import torch
    import torch.nn.functional as F

    from fnet.training.distill import distillation_loss

    soft = soft_label_loss(student_out.logits, teacher_out.logits, temperature)
    loss = soft_weight * soft
    stats = {"soft": float(soft.detach()),
             "agreement": float((student_out.logits.argmax(-1) == teacher_out.logits.argmax(-1)).float().mean())}
    labelled = labels >= 0
    if label_weight and bool(labelled.any()):
        gold = F.cross_entropy(student_out.logits.float()[labelled], labels[labelled])
        loss = loss + label_weight * gold
        stats["gold_ce"] = float(gold.detach())
    if hidden_weight:
        def as_encoder(out):  # distillation_loss reads an encoder's output
            return SimpleNamespace(hidden_states=out.hidden_states, last_hidden_state=out.hidden_states[-1])

        hidden, hidden_stats = distillation_loss(as_encoder(student_out), as_encoder(teacher_out), attention_mask,
                                                 layer_map, targets="hidden")
        loss = loss + hidden_weight * hidden
        stats["hidden_mse"] = hidden_stats["hidden_mse"]
    return loss, stats


# ----------------------------------------------------------------------------- the student


def student_task_model(teacher: Any, layers: int | None = None, layer_scale: float | None = None,
                       attention_layers: int = 0):
    """An FNet ``FNetForSequenceClassification`` made from a fine-tuned BERT-family one: the encoder as
    :func:`fnet.training.distill.student_from_teacher` makes it, the pooler and classifier copied.
    Returns ``(student, report)``."""
    from fnet.modeling import FNetForSequenceClassification
    from fnet.training.distill import student_from_teacher

    encoder, report = student_from_teacher(teacher.fnet, layers, None, layer_scale, attention_layers)
    student = FNetForSequenceClassification(encoder.config)
    student.fnet.load_state_dict(encoder.state_dict())
    student.classifier.load_state_dict(teacher.classifier.state_dict())
    return student, report


# ----------------------------------------------------------------------------- the run


def _is_finetuned(folder: Path) -> bool:
    from fnet.tasks.folder import TASK_INFO_NAME

    return (folder / TASK_INFO_NAME).is_file() and (folder / "config.json").is_file()


def _teacher(config: TaskDistillConfig, out: Path, precision: str) -> Path:
    """The fine-tuned teacher's folder: ``--teacher`` when it is one, OUTPUT/teacher when a previous run
    finished it (--resume), else fine-tuned now with fnet finetune's defaults (continuing from the
    checkpoints of a stopped run; under torchrun, data-parallel like the student)."""
    from fnet import run_folder
    from fnet.hub import resolve
    from fnet.training.finetune import FinetuneConfig, finetune

    given = resolve(config.teacher, what="teacher model", flag="--teacher")
    if _is_finetuned(given):
        logger.info("teacher: %s is already fine-tuned (fnet_task.json): used as is", given)
        return given
    folder = out / TEACHER_DIR
    marker = run_folder.read_marker(folder) or {}
    if _is_finetuned(folder) and marker.get("state") == "complete":
        logger.info("teacher: reusing the fine-tuned teacher in %s", folder)
        return folder
    logger.info("teacher: fine-tuning %s on %s into %s%s", config.teacher, config.train, folder,
                " (continuing from its checkpoints)" if folder.exists() else "")
    summary = finetune(FinetuneConfig(
        task=config.task, model=str(given), train=config.train, validation=config.validation, output=str(folder),
        epochs=config.teacher_epochs, lr=config.teacher_lr, batch_size=config.batch_size, seq_len=config.seq_len,
        seed=config.seed, threads=config.threads,
        max_train_examples=config.teacher_examples(),
        device=config.device, precision=precision, group_by_length=config.group_by_length,
        time_budget=config.teacher_time_budget, save_every=config.save_every, keep_last=config.keep_last,
        resume=True,  # an unfinished teacher (this run was stopped) continues from its newest checkpoint
        progress=config.progress, reader=dict(config.reader)))
    logger.info("teacher fine-tuned: %s", {k: v for k, v in summary.items() if k.startswith("eval_")})
    return folder


def _unlabelled_features(config: TaskDistillConfig, family: Any, tokenizer: Any, label_names: list[str]):
    from fnet.data.features import IGNORE_INDEX
    from fnet.training.distill import _read_lines

    import torch

    texts = [line for name in config.train_files or [] for line in _read_lines(name)]
    texts = texts[: config.max_texts] if config.max_texts else texts
    if not texts:
        return None
    feats = family.featurize(family.examples_from_texts(texts, label_names), tokenizer, config.seq_len)
    feats["labels"] = torch.full((feats.num_rows,), IGNORE_INDEX, dtype=torch.long)
    return feats


def task_distill(config: TaskDistillConfig, callbacks: Sequence[Any] = ()) -> dict[str, Any]:
    """Fine-tune ``config.teacher`` on the labels and distil it into an FNet student in ``config.output``.

    Returns the summary written to ``OUTPUT/distill_summary.json``: the student's and the teacher's
    validation metrics, steps, seconds (under torchrun: rank 0 returns it, the other ranks ``{}``).
    Both stages run on the run harness (``--device``, ``--precision``, ``--threads``, torchrun's DDP).
    Raises ``ValueError`` / ``FileNotFoundError`` naming the flag.
    """
    from fnet import harness, run_folder
    from fnet.training.resume import CHECKPOINTS_DIR

    config = config.checked()
    inputs = {"--teacher": config.teacher, "--train": config.train, "--validation": config.validation,
              "--train-files": config.train_files or []}
    run_folder.check_claim(config.output, "distill", overwrite=config.overwrite, resume=config.resume, inputs=inputs)
    with harness.start(config, command="distill", output=config.output, overwrite=config.overwrite,
                       resume=config.resume, keep=(CHECKPOINTS_DIR, TEACHER_DIR), inputs=inputs,
                       training=True) as run:
        if run.is_main:
            run.out.record(task=config.task)
        return _task_distill(config, run, callbacks)


def _task_distill(config: TaskDistillConfig, run: Any, callbacks: Sequence[Any]) -> dict[str, Any]:
    """The run of :func:`task_distill`, writing under the claimed folder ``run.out.path``."""
    import time

    import torch

    from fnet.data.collate import ListDataset, StepBatches
    from fnet.inference import feature_batch, row_lengths, task_logits
    from fnet.io import atomic_write_text
    from fnet.optimize import optimize_for_inference, optimize_for_training
    from fnet.tasks import get_family
    from fnet.tasks.folder import TaskInfo, read_split, write_metrics
    from fnet.tokenization import AutoTokenizer
    from fnet.training.distributed import DistContext, unwrap_model, wrap_model
    from fnet.training.loop import BEST_DIR, Trainer, TrainerConfig

    started = time.perf_counter()
    ctx, output = run.dist, run.out.path
    family = get_family(config.task)
    teacher_dir = _teacher(config, output, run.precision)  # the student's precision, resolved
    teacher_seconds = time.perf_counter() - started

    tokenizer = AutoTokenizer.from_pretrained(teacher_dir, flag="--teacher")
    if run.is_main:
        run.out.record(tokenizer=tokenizer.fingerprint())
    teacher = family.model_class().from_pretrained(teacher_dir)
    if teacher.config.problem_type not in (None, "single_label_classification"):
        raise ValueError(f"--train: task distillation needs single-label classes, the teacher's labels are "
                         f"{teacher.config.problem_type}")
    label_names = [teacher.config.labels()[i] for i in range(teacher.config.num_labels)]
    inherited = family.inherited_options(label_names, teacher.config.problem_type)
    train_ex = read_split(family, config.train, config.reader, config.max_train_examples, inherited)
    feats = family.featurize(train_ex, tokenizer, config.seq_len)
    labelled_rows = feats.num_rows
    extra = _unlabelled_features(config, family, tokenizer, label_names)
    if extra is not None:
        feats = {k: torch.cat([feats[k], extra[k]]) for k in feats if k in extra}
    val_ex = val_feats = None
    if config.validation:
        val_ex = read_split(family, config.validation, config.reader, None, inherited)
        val_feats = family.featurize(val_ex, tokenizer, config.seq_len)

    torch.manual_seed(config.seed)
    student, report = student_task_model(teacher, config.layers, config.layer_scale, config.attention_layers)
    layer_map = report["layer_map"]
    teacher = optimize_for_inference(teacher.to(ctx.device)).eval().requires_grad_(False)
    student = optimize_for_training(optimize_for_inference(student.to(ctx.device))).train()
    rows = next(iter(feats.values())).shape[0]
    if config.batch_size % ctx.world_size:
        raise ValueError(f"--batch-size {config.batch_size} must be a multiple of the {ctx.world_size} processes")
    data = StepBatches(ListDataset(list(range(rows)), lambda idx: feature_batch(feats, idx)),
                       config.batch_size // ctx.world_size, 1, ctx.rank, ctx.world_size, seed=config.seed,
                       lengths=row_lengths(feats["attention_mask"]) if config.group_by_length else None)
    max_steps = max(1, math.ceil(config.epochs * data.steps_per_epoch))
    optimizer, scheduler = config.optimizer_and_scheduler(student, config.lr, int(config.warmup_ratio * max_steps),
                                                          max_steps)
    need_hidden = config.hidden_weight > 0

    def loss_fn(model, batch):
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        with torch.no_grad():
            target = teacher(**inputs, output_hidden_states=need_hidden)
        predicted = model(**inputs, output_hidden_states=need_hidden)
        return task_distillation_loss(predicted, target, batch["labels"], batch["attention_mask"], layer_map,
                                      config.temperature, config.soft_weight, config.label_weight,
                                      config.hidden_weight)

    local = type(run)(DistContext(device=ctx.device), run.precision)  # validation: rank 0 alone, all its rows

    def score(model) -> dict[str, float]:
        outputs = task_logits(unwrap_model(model), val_feats, batch_size=64, run=local)
        return family.score(val_ex, val_feats, outputs, label_names, problem_type=teacher.config.problem_type)[0]

    validating = val_feats is not None
    options = {k: v for k, v in dataclasses.asdict(config).items()}
    trainer = Trainer(
        wrap_model(student, ctx), optimizer, data,
        TrainerConfig(max_steps=max_steps, output_dir=str(output), clip_grad=config.clip_grad or None,
                      seed=config.seed, bf16=run.precision == "bf16", log_every=config.log_every,
                      save_every=config.save_every, keep_last=config.keep_last, progress=config.progress,
                      max_time_s=60.0 * config.time_budget, eval_every_epoch=validating, eval_at_end=validating,
                      best_metric=family.best_metric(teacher.config.problem_type) if validating else None),
        scheduler=scheduler, loss_fn=loss_fn, evaluate=score if validating else None, callbacks=callbacks,
        dist=ctx, extra_state={"options": options})
    if run.is_main:
        logger.info("student: %d layers from teacher layers %s; %d labelled + %d unlabelled texts, %d steps "
                    "(%g epochs); %d process(es) on %s (%s), %d threads each", len(layer_map), layer_map,
                    labelled_rows, rows - labelled_rows, max_steps, config.epochs, ctx.world_size, ctx.device,
                    run.precision, torch.get_num_threads())
    trained = trainer.train(resume=config.resume)
    if not run.is_main:
        ctx.barrier()
        return {}

    best = output / BEST_DIR
    if validating and (best / "model.safetensors").is_file():
        student = optimize_for_inference(family.model_class().from_pretrained(best).to(ctx.device))
    student.save_pretrained(output)
    tokenizer.save_pretrained(str(output))
    TaskInfo(task=family.name, seq_len=config.seq_len, stride=0, max_answer_length=0, reader=dict(config.reader),
             label_names=label_names).save(output)
    summary: dict[str, Any] = {
        "task": family.name, "teacher": str(teacher_dir), "train_examples": labelled_rows,
        "unlabelled_texts": rows - labelled_rows, "steps": trained.step, "best_step": trained.best_step,
        "resumed_from": trained.resumed_from, "layer_map": layer_map, "train": trained.last_logs,
        "student_seconds": round(trainer.elapsed, 1), "teacher_seconds": round(teacher_seconds, 1),
        "device": str(ctx.device), "precision": run.precision, "processes": ctx.world_size,
    }
    if validating:
        summary.update(score(student))
        teacher_metrics = _read_json(teacher_dir / "metrics.json")
        summary["teacher_metrics"] = {k: v for k, v in teacher_metrics.items() if k.startswith("eval_")}
    write_metrics(output, summary)
    atomic_write_text(output / "run_config.json", json.dumps(options, indent=2, default=str) + "\n")
    atomic_write_text(output / "distill_summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    ctx.barrier()
    return summary


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
