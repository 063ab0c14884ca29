"""The training loop, shared by pretraining and fine-tuning.

:class:`Trainer` runs optimizer steps over step-indexed data (``data.micro_batches(step)``, see
:class:`fnet.data.collate.StepBatches`) with gradient accumulation, clipping, optional bf16 autocast,
DDP, periodic evaluation, best-checkpoint tracking, early stopping, atomic checkpoints and exact resume.
What is task specific comes in as functions:

* ``loss_fn(model, batch) -> loss`` or ``(loss, {"name": value, ...})``: the scalar to minimise and
  optional per-micro-batch statistics (averaged into the logs, e.g. accuracies);
* ``evaluate(model) -> {"eval_loss": ..., ...}``: run on rank 0 with the unwrapped model in eval mode
  under ``torch.no_grad()`` (pass it on every rank: the others only take part in the decisions); its metrics go to ``metrics.jsonl`` and can drive "keep the best" and
  early stopping;
* ``callbacks``: :class:`Callback` objects notified after each step, log, evaluation and save.

Determinism: the batches of a step are a function of the step, and torch's RNG (dropout) is reseeded
from (seed, step, rank) at every step, so a run resumed from ``checkpoints/step-k`` computes the same
steps ``k+1...`` as a run that was never stopped.

Files under ``output_dir`` (rank 0 only): ``metrics.jsonl`` (one JSON object per log or evaluation,
each with ``step``), ``checkpoints/step-N/`` (see :mod:`fnet.training.resume`) and ``best/`` (the
model with the best ``best_metric``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from fnet.data.prefetch import prefetch_steps
from fnet.harness import autocast, to_device
from fnet.io import atomic_write_text
from fnet.training.distributed import DistContext, unwrap_model
from fnet.training.resume import (Progress, data_position, latest_checkpoint, load_checkpoint, save_checkpoint,
                                  save_model_folder, trainer_state)

logger = logging.getLogger(__name__)

METRICS_NAME = "metrics.jsonl"
BEST_DIR = "best"

LossFn = Callable[[torch.nn.Module, dict[str, torch.Tensor]], Any]
EvalFn = Callable[[torch.nn.Module], dict[str, float]]


class NonFiniteLoss(ValueError):
    """Training diverged (a NaN/inf loss, gradient or weight): the run stops before anything bad is saved."""


def check_finite_weights(model: torch.nn.Module, where: str) -> None:
    """Raise :class:`NonFiniteLoss` naming the first parameter holding NaN or inf."""
    for name, param in model.named_parameters():
        if not bool(torch.isfinite(param.detach()).all()):
            raise NonFiniteLoss(f"the weights diverged ({name} holds NaN or inf) {where}; nothing was saved: "
                                "lower --lr")


# run options that may change when a run is resumed: how the process runs and where its files are (a path may
# be written another way or the files moved; the data and tokenizer are checked by fingerprint), not what it learns
RESUME_MAY_CHANGE = frozenset({"resume", "overwrite", "threads", "progress", "log_every", "keep_last", "save_every",
                               "device", "precision", "num_workers", "max_steps", "time_budget", "eval_every",
                               "eval_batches", "data_cache", "output", "config", "teacher", "tokenizer", "train_files",
                               "eval_files", "model_config", "init_from"})


def check_resumed_options(recorded: dict[str, Any] | None, given: dict[str, Any] | None) -> None:
    """Refuse a resumed run whose options differ from those its checkpoint recorded (``--lr`` and the
    like: the optimizer and schedule continue from the checkpoint, so a new value would be recorded
    in run_config.json while the run ignores it), naming the flag and both values."""
    if not recorded or not given:
        return
    for key, value in given.items():
        if key in RESUME_MAY_CHANGE or key not in recorded or recorded[key] == value:
            continue
        if isinstance(value, (list, tuple)) and list(value) == list(recorded[key] or []):
            continue
        flag = "--" + key.replace("_", "-")
        raise ValueError(f"{flag} {value} differs from the {recorded[key]} the run in --output was started with; "
                         f"--resume continues a run with its own settings: drop {flag}, or start a new run in "
                         "another --output")


class StepData(Protocol):
    """Step-indexed training data (:class:`fnet.data.collate.StepBatches` implements it)."""

    def micro_batches(self, step: int) -> list[dict[str, torch.Tensor]]: ...


@dataclass
class TrainerConfig:
    """How the loop runs; the optimizer and schedule are built by the caller (see ``optim.py``)."""

    max_steps: int  # optimizer steps in the whole run (the schedule's length)
    output_dir: str | None = None  # metrics.jsonl, checkpoints/ and best/ go here; None: nothing is written
    clip_grad: float | None = 1.0  # max global grad norm; None or 0: no clipping
    bf16: bool = False  # bfloat16 autocast for forward and loss (weights and optimizer stay float32)
    seed: int = 0  # reseeds torch's RNG (dropout) at every step together with step and rank
    log_every: int = 10  # steps per metrics line (values are means over those steps)
    eval_every: int = 0  # steps between evaluations; 0: only at the end / per epoch
    eval_every_epoch: bool = False  # evaluate at the end of each epoch (needs data.steps_per_epoch)
    eval_at_end: bool = True  # evaluate after the last step
    save_every: int = 0  # steps between checkpoints; 0: none (the caller saves the final model)
    keep_last: int = 2  # checkpoints kept on disk (the newest)
    best_metric: str | None = None  # evaluation metric that selects best/ (e.g. "eval_loss", "eval_accuracy")
    greater_is_better: bool | None = None  # None: False for names containing "loss", else True
    early_stopping_patience: int = 0  # stop after this many evaluations without improvement; 0: off
    progress: bool = True  # tqdm bar on rank 0
    num_workers: int = 0  # threads that build the next step's batches while this one trains
    max_time_s: float = 0.0  # stop (checkpoint, evaluate) once training has run this long in total; 0: no limit

    def validate(self) -> None:
        for name in ("max_steps",):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("log_every",):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "save_every", "early_stopping_patience", "num_workers", "max_time_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.keep_last < 1:
            raise ValueError(f"keep_last must be >= 1, got {self.keep_last}")
        if self.early_stopping_patience and not self.best_metric:
            raise ValueError("early_stopping_patience needs best_metric (the metric to watch)")

    def higher_is_better(self) -> bool:
        if self.greater_is_better is not None:
            return self.greater_is_better
        return "loss" not in (self.best_metric or "")


class Callback:
    """Hooks into :meth:`Trainer.train`; set ``trainer.should_stop = True`` to end the run."""

    def on_step_end(self, trainer: "Trainer", step: int, logs: dict[str, float]) -> None:
        """After every optimizer step; ``logs`` has this step's loss, lr, grad_norm (this rank)."""

    def on_log(self, trainer: "Trainer", step: int, logs: dict[str, float]) -> None:
        """After a metrics line is formed (all ranks; values averaged over ranks)."""

    def on_evaluate(self, trainer: "Trainer", step: int, metrics: dict[str, float]) -> None:
        """After an evaluation (rank 0 only)."""

    def on_save(self, trainer: "Trainer", step: int, path: Path) -> None:
        """After a checkpoint is complete (rank 0 only)."""


@dataclass
class TrainResult:
    step: int  # optimizer steps done
    last_logs: dict[str, float] = field(default_factory=dict)
    last_eval: dict[str, float] = field(default_factory=dict)
    best_metric: float | None = None
    best_step: int | None = None
    stopped_early: bool = False
    resumed_from: int | None = None  # step of the checkpoint the run continued from


def step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, dtype=np.uint64)[0] >> 1)


def clip_grad_norm(params: Sequence[torch.nn.Parameter], max_norm: float) -> float:
    """``torch.nn.utils.clip_grad_norm_(params, max_norm)``, bit for bit, without its pass over every
    gradient when the norm is within ``max_norm`` (it multiplies them by exactly 1.0 to avoid a
    host-device sync, which the trainer pays anyway when it logs the norm). Returns the norm."""
    total_norm = getattr(torch.nn.utils, "get_total_norm", None)
    if total_norm is None:  # torch < 2.6 has only the combined function
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    norm = total_norm([p.grad for p in params])
    if not bool(max_norm / (norm + 1e-6) >= 1.0):  # torch's clamp(coef, max=1) is below 1 (or NaN)
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm)
    return float(norm)


def default_loss_fn(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The model's own loss: ``model(**batch).loss``."""
    return model(**batch).loss


class Trainer:
    """Runs ``config.max_steps`` optimizer steps of ``model`` on ``data``; see the module docstring.

    ``model`` may already be wrapped in DDP (:func:`fnet.training.distributed.wrap_model`); checkpoints
    and evaluation use the unwrapped module. ``scheduler`` is stepped once per optimizer step.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        data: StepData,
        config: TrainerConfig,
        *,
        scheduler: Any = None,
        loss_fn: LossFn = default_loss_fn,
        evaluate: EvalFn | None = None,
        callbacks: Sequence[Callback] = (),
        dist: DistContext | None = None,
        extra_state: dict[str, Any] | None = None,
    ):
        config.validate()
        self.model, self.optimizer, self.scheduler, self.data = model, optimizer, scheduler, data
        self.config, self.loss_fn, self.evaluate_fn = config, loss_fn, evaluate
        self.callbacks = list(callbacks)
        self.dist = dist or DistContext()
        self.extra_state = extra_state or {}  # saved in every checkpoint (e.g. the CLI's run options)
        self.output_dir = Path(config.output_dir) if config.output_dir else None
        self.should_stop = False
        self.step = 0
        self.best_metric: float | None = None
        self.best_step: int | None = None
        self.bad_evals = 0
        self.elapsed = 0.0  # training seconds, carried across resumes
        self.resumed_from: int | None = None

    # ------------------------------------------------------------------ pieces
    @property
    def device(self) -> torch.device:
        """Where batches go: the model's device (the caller moves the model)."""
        return next(self.module.parameters()).device

    @property
    def module(self) -> torch.nn.Module:
        return unwrap_model(self.model)

    def _autocast(self):
        # training runs in fp32 or bf16 (fnet.harness.TRAINING_PRECISIONS): one flag, as checkpoints record it
        return autocast(self.device, "bf16" if self.config.bf16 else "fp32")

    def _metrics_path(self) -> Path | None:
        return self.output_dir / METRICS_NAME if self.output_dir else None

    def _write_metrics(self, row: dict[str, Any]) -> None:
        path = self._metrics_path()
        if path is None or not self.dist.is_main:
            return
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")

    def _reset_metrics(self, keep_until: int) -> None:
        """Keep the metrics of steps <= keep_until (a resumed run rewrites what came after)."""
        path = self._metrics_path()
        if path is None or not self.dist.is_main:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if keep_until > 0 and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line).get("step", 0) <= keep_until:
                        kept.append(line)
                except json.JSONDecodeError:  # a line cut by a kill
                    continue
        atomic_write_text(path, "".join(line + "\n" for line in kept))

    def _trainer_state(self) -> dict[str, Any]:
        progress = Progress(step=self.step, best_metric=self.best_metric, best_step=self.best_step,
                            bad_evals=self.bad_evals, elapsed_s=self.elapsed, world_size=self.dist.world_size)
        return trainer_state(progress, data_position(self.data, self.step), asdict(self.config), self.extra_state)

    def _kept(self) -> str:
        found = latest_checkpoint(self.output_dir) if self.output_dir is not None else None
        return f" (the last good checkpoint, {found}, is kept)" if found is not None else ""

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoints/step-{step}`` (rank 0) and wait for it on every rank; weights that are not
        all finite are never written (:class:`NonFiniteLoss`)."""
        path = None
        check_finite_weights(self.module, f"at step {self.step}{self._kept()}")
        if self.dist.is_main and self.output_dir is not None:
            path = save_checkpoint(self.output_dir, self.step, self.module, self.optimizer,
                                                 self.scheduler, self._trainer_state(), self.config.keep_last)
            for cb in self.callbacks:
                cb.on_save(self, self.step, path)
        self.dist.barrier()
        return path

    def resume(self, checkpoint: str | os.PathLike | bool = True) -> int | None:
        """Load ``checkpoint`` (a directory) or, with True, the newest complete one in output_dir.

        Returns the step resumed from, or None when there is nothing to resume (a fresh start).
        """
        if checkpoint is True:
            if self.output_dir is None:
                raise ValueError("resume=True needs config.output_dir")
            found = latest_checkpoint(self.output_dir)
            if found is None:
                return None
            checkpoint = found
        state = load_checkpoint(Path(checkpoint), self.module, self.optimizer, self.scheduler)
        check_resumed_options((state.get("extra") or {}).get("options"), self.extra_state.get("options"))
        progress = Progress.from_state(state)
        if progress.world_size != self.dist.world_size and self.dist.is_main:
            logger.warning("the checkpoint was written by %d process(es), this run has %d; later steps see the same "
                           "data only if the global batch is unchanged", progress.world_size, self.dist.world_size)
        self.step, self.best_metric, self.best_step = progress.step, progress.best_metric, progress.best_step
        self.bad_evals, self.elapsed = progress.bad_evals, progress.elapsed_s
        self.resumed_from = self.step
        return self.step

    def evaluate(self) -> dict[str, float]:
        """Run ``evaluate`` on rank 0, record the metrics, update best/ and early stopping (all ranks)."""
        metrics: dict[str, float] = {}
        stop = torch.zeros(1)
        if self.dist.is_main and self.evaluate_fn is not None:
            module = self.module
            was_training = module.training
            module.eval()
            with torch.no_grad(), self._autocast():
                metrics = {k: float(v) for k, v in self.evaluate_fn(module).items()}
            module.train(was_training)
            self._write_metrics({"step": self.step, **metrics})
            self._track_best(metrics)
            if self.config.early_stopping_patience and self.bad_evals >= self.config.early_stopping_patience:
                stop[0] = 1
            for cb in self.callbacks:
                cb.on_evaluate(self, self.step, metrics)
        if self.dist.all_reduce_sum(stop).item() > 0:
            self.should_stop = True
        return metrics

    def _track_best(self, metrics: dict[str, float]) -> None:
        name = self.config.best_metric
        if not name:
            return
        if name not in metrics:
            raise ValueError(f"best_metric {name!r} is not among the evaluation metrics {sorted(metrics)}")
        value = metrics[name]
        better = (self.best_metric is None or
                  (value > self.best_metric if self.config.higher_is_better() else value < self.best_metric))
        if better:
            self.best_metric, self.best_step, self.bad_evals = value, self.step, 0
            if self.output_dir is not None:
                self._save_best()
        else:
            self.bad_evals += 1

    def _save_best(self) -> None:
        """Replace ``best/`` by the current model (written beside it, then swapped in)."""
        best = json.dumps({"step": self.step, self.config.best_metric: self.best_metric}) + "\n"
        save_model_folder(self.module, self.output_dir / BEST_DIR, {"best.json": best})

    def _check_time(self) -> None:
        """Rank 0's clock is the run's: every rank learns the share of the budget spent (a collective),
        stops when it is all spent, and gives it to the schedule (so every rank keeps the same lr)."""
        spent = self.dist.all_reduce_sum(torch.tensor([self.elapsed if self.dist.is_main else 0.0],
                                                      dtype=torch.float64)).item() / self.config.max_time_s
        if spent >= 1.0:
            self.should_stop = True
        if hasattr(self.scheduler, "time_fraction"):
            self.scheduler.time_fraction = min(spent, 1.0)

    def _forward_backward(self, batches: list[dict[str, torch.Tensor]]) -> tuple[float, dict[str, float], int]:
        """Accumulate gradients over the micro-batches; return mean loss, mean stats, tokens."""
        total_loss, stats, tokens = 0.0, {}, 0
        n = len(batches)
        for i, batch in enumerate(batches):
            batch = to_device(batch, self.device)
            tokens += int(batch["attention_mask"].sum()) if "attention_mask" in batch else int(batch["input_ids"].numel())
            # DDP: all-reduce gradients only with the last micro-batch
            sync = nullcontext() if (i == n - 1 or not hasattr(self.model, "no_sync")) else self.model.no_sync()
            with sync:
                with self._autocast():
                    out = self.loss_fn(self.model, batch)
                loss, extra = out if isinstance(out, tuple) else (out, {})
                (loss.float() / n).backward()
            total_loss += float(loss.detach()) / n
            for k, v in extra.items():
                stats[k] = stats.get(k, 0.0) + float(v) / n
        return total_loss, stats, tokens

    # ------------------------------------------------------------------ the loop
    def train(self, resume: str | os.PathLike | bool = False) -> TrainResult:
        """Run until ``max_steps`` (or early stopping); ``resume``: False, True (latest) or a checkpoint dir."""
        cfg = self.config
        if resume:
            self.resume(resume)
        if self.output_dir is not None and self.dist.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        self._reset_metrics(self.step)
        self.model.train()
        main = self.dist.is_main
        bar = None
        if cfg.progress and main:
            from tqdm import tqdm

            bar = tqdm(total=cfg.max_steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True)
        window = {"loss": 0.0, "steps": 0, "tokens": 0, "grad_norm": 0.0, "stats": {}, "start": time.perf_counter()}
        # the next steps' batches, built by cfg.num_workers threads (on CUDA: pinned, copied ahead on a side stream)
        ahead = prefetch_steps(self.data.micro_batches, self.step, cfg.max_steps, self.device, cfg.num_workers)
        last_logs: dict[str, float] = {}
        last_eval: dict[str, float] = {}
        steps_per_epoch = getattr(self.data, "steps_per_epoch", None) if cfg.eval_every_epoch else None
        try:
            while self.step < cfg.max_steps and not self.should_stop:
                t0 = time.perf_counter()
                torch.manual_seed(step_seed(cfg.seed, self.step, self.dist.rank))
                batches = next(ahead)
                loss, stats, tokens = self._forward_backward(batches)
                params = [p for p in self.module.parameters() if p.grad is not None]
                if cfg.clip_grad:
                    grad_norm = clip_grad_norm(params, cfg.clip_grad)
                else:
                    grad_norm = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))
                lr = self.optimizer.param_groups[0]["lr"]
                if not (math.isfinite(loss) and math.isfinite(grad_norm)):  # before the update: the weights stay good
                    raise NonFiniteLoss(f"the {'loss' if not math.isfinite(loss) else 'gradient norm'} is "
                                        f"{loss if not math.isfinite(loss) else grad_norm} at step {self.step + 1}; "
                                        f"nothing of this step was saved{self._kept()}: lower --lr (it was {lr:.3g})")
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
                self.elapsed += time.perf_counter() - t0
                if cfg.max_time_s:
                    self._check_time()
                if self.scheduler is not None:
                    self.scheduler.step()
                window["loss"] += loss
                window["grad_norm"] += grad_norm
                window["steps"] += 1
                window["tokens"] += tokens
                for k, v in stats.items():
                    window["stats"][k] = window["stats"].get(k, 0.0) + v
                step_logs = {"loss": loss, "lr": lr, "grad_norm": grad_norm, **stats}
                for cb in self.callbacks:
                    cb.on_step_end(self, self.step, step_logs)
                if bar is not None:
                    bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.max_steps or self.should_stop:
                    last_logs = self._log(window, lr, bar)
                    window = {"loss": 0.0, "steps": 0, "tokens": 0, "grad_norm": 0.0, "stats": {},
                              "start": time.perf_counter()}
                end = self.step == cfg.max_steps or self.should_stop
                if ((cfg.eval_every and self.step % cfg.eval_every == 0)
                        or (steps_per_epoch and self.step % steps_per_epoch == 0)
                        or (end and cfg.eval_at_end)) and self.evaluate_fn is not None:
                    last_eval = self.evaluate() or last_eval
                    if bar is not None and last_eval:
                        bar.write(f"step {self.step}: " + ", ".join(f"{k}={v:.4g}" for k, v in last_eval.items()))
                    window["start"] = time.perf_counter()  # evaluation time is not training throughput
                if cfg.save_every and (self.step % cfg.save_every == 0 or end or self.should_stop):
                    self.save_checkpoint()
                    window["start"] = time.perf_counter()
        finally:
            ahead.close()
            if bar is not None:
                bar.close()
        return TrainResult(step=self.step, last_logs=last_logs, last_eval=last_eval, best_metric=self.best_metric,
                           best_step=self.best_step, stopped_early=self.should_stop and self.step < cfg.max_steps,
                           resumed_from=self.resumed_from)

    def _log(self, window: dict[str, Any], lr: float, bar: Any) -> dict[str, float]:
        steps = max(1, window["steps"])
        keys = sorted(window["stats"])
        local = torch.tensor([window["loss"] / steps, window["grad_norm"] / steps]
                             + [window["stats"][k] / steps for k in keys], dtype=torch.float64)
        values = self.dist.all_reduce_mean(local).tolist()
        tokens = int(self.dist.all_reduce_sum(torch.tensor([float(window["tokens"])], dtype=torch.float64)).item())
        seconds = max(1e-9, time.perf_counter() - window["start"])
        logs = {"step": self.step, "loss": values[0], "lr": lr, "grad_norm": values[1],
                **{k: v for k, v in zip(keys, values[2:])},
                "tokens_per_s": tokens / seconds, "elapsed_s": round(self.elapsed, 3)}
        self._write_metrics(logs)
        if bar is not None:
            bar.set_postfix(loss=f"{logs['loss']:.4f}", lr=f"{lr:.2e}", tok_s=f"{logs['tokens_per_s']:.0f}")
        for cb in self.callbacks:
            cb.on_log(self, self.step, logs)
        return logs


def train(model: torch.nn.Module, optimizer: torch.optim.Optimizer, data: StepData, config: TrainerConfig, *,
          resume: str | os.PathLike | bool = False, **options: Any) -> TrainResult:
    """Functional form of ``Trainer(model, optimizer, data, config, **options).train(resume)``."""
    return Trainer(model, optimizer, data, config, **options).train(resume=resume)
