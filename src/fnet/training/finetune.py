"""Fine-tuning for any task family (see :mod:`fnet.tasks`): :func:`finetune`.

:func:`finetune` reads train/validation files, builds (or loads) the task model, trains it on the
training loop of pretraining (:mod:`fnet.training.loop`) with an evaluation per epoch, keeps the
best model, and writes a model directory that also holds the tokenizer, ``fnet_task.json`` (how to
read inputs: :mod:`fnet.tasks.folder`), ``metrics.json`` and ``predictions.jsonl``. It runs on any
device, resumes bit-exactly (``--resume``, checkpoints in ``OUTPUT/training/checkpoints``), stops on
a time budget, and runs data-parallel under torchrun, all through :mod:`fnet.harness` and
:class:`fnet.training.run_options.RunOptions`.

Evaluation and prediction with the written folder are :mod:`fnet.apps.evaluate` and
:mod:`fnet.apps.predict` (their old names here still import, for existing scripts).

Everything task-specific (reading, featurizing, scoring, the model class) is asked of the task's
family; nothing here compares task names.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fnet.config import PRESETS
from fnet.options import option, require
from fnet.tasks import TaskFamily, cli_choices, get_family
from fnet.training.run_options import RunOptions

if TYPE_CHECKING:
    import torch

    from fnet.harness import Run
    from fnet.data.tokenizer import SavedTokenizer

__all__ = ["FinetuneConfig", "finetune", "pretrained_lr", "default_stride"]

logger = logging.getLogger(__name__)

CHECKPOINTS = "training/checkpoints"  # where a run's checkpoints go inside OUTPUT (removed once it succeeded)

# names that moved to the inference applications and the task folder; still importable from here
_MOVED = {"InferenceOptions": "fnet.apps.task_model", "EvaluateConfig": "fnet.apps.evaluate",
          "evaluate": "fnet.apps.evaluate", "PredictConfig": "fnet.apps.predict", "predict": "fnet.apps.predict",
          "EMPTY_TEXT": "fnet.apps.predict", "TaskInfo": "fnet.tasks.folder", "task_info": "fnet.tasks.folder",
          "TASK_INFO_NAME": "fnet.tasks.folder", "calibration_targets": "fnet.calibration"}


def __getattr__(name: str) -> Any:
    """The old import paths (``from fnet.training.finetune import evaluate, predict``) keep working."""
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
class FinetuneConfig(RunOptions):
    """Everything a fine-tuning run needs; each field is also a `fnet finetune` flag (``reader``:
    the reader options of the task's family, a ``[reader]`` table in a run file). The schedule,
    checkpoint, device and process options are :class:`RunOptions`'."""

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
    seed: int = option(0, "all randomness: init, shuffling, dropout")
    group_by_length: bool = option(False, "batches of texts of about one length (sorted in pools of 50 batches, "
                                          "the batches shuffled): less padding, faster on short varied texts")
    bf16: bool = option(False, "bfloat16 autocast (the same as --precision bf16)")
    time_budget: float = option(0.0, "stop after this many minutes of training (evaluation, best model and output "
                                     "as at the last step); the lr schedule follows whichever of steps and time is "
                                     "further along; 0: no limit")
    save_every: int = option(0, "steps between checkpoints in OUTPUT/training/checkpoints for --resume (0: at the end "
                                "of every epoch); they are removed once the run succeeded")
    log_every: int | None = option(None, "steps per metrics line (default: a quarter epoch, at most 50)")
    early_stopping: int = option(0, "stop after this many evaluations without improvement (0: off)",
                                 metavar="EPOCHS")
    max_train_examples: int | None = option(None, "use only the first N training examples")
    max_eval_examples: int | None = option(None, "use only the first N validation examples")
    reader: dict[str, Any] = option(help="reader options of the task's family (columns, format, ...)", cli=False,
                                    default_factory=dict)

    def family(self) -> TaskFamily:
        return get_family(self.task or "")

    def validate(self) -> TaskFamily:
        """All cross-field checks, in one place; returns the task's family."""
        require(self, "task", "model", "train", "output")
        self.check_run_options()
        if self.time_budget < 0 or self.save_every < 0 or (self.log_every is not None and self.log_every < 1):
            raise ValueError("--time-budget and --save-every must be >= 0 and --log-every >= 1")
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
        marker = run_folder.read_marker(self.output) if self.resume else None
        if marker and marker.get("kind") == "finetune" and marker.get("state") == "complete" \
                and not (Path(self.output) / CHECKPOINTS).is_dir():
            raise ValueError(f"--output {self.output} holds a finished `fnet finetune` run: nothing to --resume "
                             "(pass --overwrite to train it again, or choose another --output)")
        run_folder.check_claim(self.output, "finetune", overwrite=self.overwrite, resume=self.resume,
                               inputs=self.inputs())
        return family

    def inputs(self) -> dict[str, Any]:
        """What the run reads (flag -> path): its output may not overlap any of them."""
        return {"--model": self.model if self.model not in PRESETS else None, "--tokenizer": self.tokenizer,
                "--train": self.train, "--validation": self.validation}

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


# ----------------------------------------------------------------------------- fine-tuning


def _check_seq_len(config: FinetuneConfig, model_dir: str | None) -> None:
    """Refuse, before any work, a --seq-len whose position table or padded inputs cannot fit (inputs are
    padded to it; a longer table than the model's is made by copying rows)."""
    import dataclasses

    from fnet.checkpoint import load_config
    from fnet.config import FNetConfig
    from fnet.model_size import check_fits

    if model_dir is None:
        base = FNetConfig.from_preset(config.model)
    elif Path(model_dir, "config.json").is_file():
        base = load_config(model_dir)
    else:
        return  # a Hub id: checked when the model is loaded
    if config.seq_len > base.max_position_embeddings:
        check_fits(dataclasses.replace(base, max_position_embeddings=config.seq_len),
                   f"--seq-len {config.seq_len} (a position table that long)")


def _build_model(family: TaskFamily, config: FinetuneConfig, tokenizer: "SavedTokenizer", label_info: dict[str, Any],
                 device: "torch.device") -> "torch.nn.Module":
    """The task model to train on ``device``: a preset's seeded init or the saved model's weights; with
    the CPU kernels (oneDNN GEMMs in the training steps, the fused inference kernels in the evaluations)."""
    import torch

    from fnet.config import FNetConfig
    from fnet.optimize import optimize_for_inference, optimize_for_training

    cls = family.model_class()
    torch.manual_seed(config.seed)  # a preset's init, or the new head of a saved model: the same for one --seed
    if config.model in PRESETS:
        model_config = FNetConfig.from_preset(
            config.model, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
            max_position_embeddings=max(512, config.seq_len), **label_info)
        model = cls(model_config)
    else:
        model = cls.from_pretrained(config.model, ignore_mismatched_sizes=True, strict=True, **label_info)
        if model.config.vocab_size < len(tokenizer):
            raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but the model only "
                             f"{model.config.vocab_size}; use the tokenizer the model was trained with")
        if config.seq_len > model.config.max_position_embeddings:
            logger.warning("extending the position table from %d to %d positions (new rows copy the trained ones) "
                           "for --seq-len %d", model.config.max_position_embeddings, config.seq_len, config.seq_len)
            model.resize_position_embeddings(config.seq_len, init="copy")
    return optimize_for_training(optimize_for_inference(model.to(device)))


def finetune(config: FinetuneConfig) -> dict[str, Any]:
    """Train a task model; returns the final validation metrics (and where things were written).

    The output folder is claimed (:func:`fnet.run_folder.claim`): a folder holding anything is refused
    unless ``overwrite`` (or ``resume``, for an unfinished `fnet finetune` run), a second run on it
    refuses, and a failed run leaves nothing behind but its checkpoints. Under torchrun rank 0 writes
    and returns the summary; the other ranks return ``{}``.
    """
    from fnet import harness, run_folder
    from fnet.tasks.folder import load_tokenizer

    family = config.validate()
    harness.check_device(config, training=True)
    model_dir = config.model if config.model not in PRESETS else None
    _check_seq_len(config, model_dir)
    tokenizer = load_tokenizer(config.tokenizer, model_dir)
    if model_dir and config.tokenizer:  # a pretrained model reads ids of the tokenizer it was trained with
        run_folder.check_tokenizer(model_dir, "--model", tokenizer, config.tokenizer)
    with harness.start(config, command="finetune", output=config.output, overwrite=config.overwrite,
                       resume=config.resume, keep=(CHECKPOINTS,), training=True,
                       inputs=config.inputs()) as run:
        if config.resume:  # the run in OUTPUT was made with one tokenizer: refuse another
            run_folder.check_tokenizer(run.out.path, "--output", tokenizer, config.tokenizer or config.model)
        if run.is_main:
            run.out.record(task=family.name, tokenizer=tokenizer.fingerprint())
        return _finetune(config, family, tokenizer, run)


def _finetune(config: FinetuneConfig, family: TaskFamily, tokenizer: "SavedTokenizer", run: "Run") -> dict[str, Any]:
    """The run of :func:`finetune`, writing under the claimed folder ``run.out.path``."""
    import shutil

    from fnet.data.collate import ListDataset, StepBatches
    from fnet.harness import Run
    from fnet.inference import feature_batch, row_lengths, task_logits
    from fnet.optimize import optimize_for_inference
    from fnet.tasks.folder import TaskInfo, read_split, write_jsonl, write_metrics
    from fnet.training.distributed import DistContext, unwrap_model, wrap_model
    from fnet.training.loop import Trainer, TrainerConfig

    started = time.perf_counter()
    output, ctx = run.out.path, run.dist
    if config.stride is None:
        config = dataclasses.replace(config, stride=default_stride(config.seq_len))
    if config.batch_size % (config.grad_accum * ctx.world_size):
        raise ValueError(f"--batch-size {config.batch_size} must be a multiple of --grad-accum {config.grad_accum} x "
                         f"{ctx.world_size} processes (each process takes an equal share of every step)")
    train_ex = read_split(family, config.train, config.reader, config.max_train_examples)
    label_info, label_names = family.label_info(train_ex)
    val_ex = None
    if config.validation:
        inherited = family.inherited_options(getattr(train_ex, "label_names", None),
                                             getattr(train_ex, "problem_type", None))
        val_ex = read_split(family, config.validation, config.reader, config.max_eval_examples, inherited)
    train_feats = family.featurize(train_ex, tokenizer, config.seq_len, stride=config.stride)
    val_feats = family.featurize(val_ex, tokenizer, config.seq_len, stride=config.stride) if val_ex is not None else None
    model = _build_model(family, config, tokenizer, label_info, run.device)
    problem_type = model.config.problem_type

    micro = config.batch_size // config.grad_accum // ctx.world_size
    dataset = ListDataset(list(range(train_feats.num_rows)), lambda idx: feature_batch(train_feats, idx))
    data = StepBatches(dataset, micro_batch_size=micro, grad_accum=config.grad_accum, rank=ctx.rank,
                       world_size=ctx.world_size, seed=config.seed,
                       lengths=row_lengths(train_feats["attention_mask"]) if config.group_by_length else None)
    config = config.resolved(data.steps_per_epoch, model.config.hidden_size)  # lr, warmup, epochs by the start
    if run.is_main:
        logger.info("fine-tuning %s: lr %g, warmup %.0f%%, %g epochs; %d process(es) on %s (%s)",
                    "from scratch" if config.from_scratch() else "from pretrained weights", config.lr,
                    100 * config.warmup_ratio, config.epochs, ctx.world_size, run.device, run.precision)
    max_steps = max(1, math.ceil(config.epochs * data.steps_per_epoch))
    optimizer, scheduler = config.optimizer_and_scheduler(model, config.lr, int(config.warmup_ratio * max_steps),
                                                          max_steps)
    # validation runs on rank 0 alone (the trainer's rule), so it does not shard its rows
    local = Run(DistContext(device=run.device), run.precision)

    def score(m: "torch.nn.Module") -> tuple[dict[str, float], list[dict[str, Any]]]:
        outputs = task_logits(unwrap_model(m), val_feats, batch_size=max(32, config.batch_size), run=local)
        return family.score(val_ex, val_feats, outputs, label_names, problem_type=problem_type,
                            max_answer_length=config.max_answer_length)

    validating = val_feats is not None
    trainer_config = TrainerConfig(
        max_steps=max_steps, output_dir=str(output / "training"), seed=config.seed, bf16=run.precision == "bf16",
        clip_grad=config.clip_grad or None,
        log_every=config.log_every or max(1, min(50, data.steps_per_epoch // 4)), eval_every_epoch=validating,
        eval_at_end=validating, best_metric=family.best_metric(problem_type) if validating else None,
        early_stopping_patience=config.early_stopping if validating else 0,
        save_every=config.save_every or data.steps_per_epoch, keep_last=config.keep_last,
        progress=config.progress, max_time_s=60.0 * config.time_budget,
    )
    trainer = Trainer(wrap_model(model, ctx), optimizer, data, trainer_config, scheduler=scheduler,
                      evaluate=(lambda m: score(m)[0]) if validating else (lambda m: {}), dist=ctx)
    result = trainer.train(resume=config.resume)
    train_seconds = time.perf_counter() - started
    if not run.is_main:
        ctx.barrier()
        return {}

    best_dir = output / "training" / "best"
    if validating and (best_dir / "model.safetensors").is_file():
        model = optimize_for_inference(family.model_class().from_pretrained(best_dir).to(run.device))
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
        write_jsonl(output / "predictions.jsonl", records)
    write_metrics(output, summary)
    shutil.rmtree(output / CHECKPOINTS, ignore_errors=True)  # a finished run has nothing to resume
    ctx.barrier()
    return summary
