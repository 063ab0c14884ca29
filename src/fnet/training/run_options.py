"""Options every training command shares (`fnet pretrain`, `fnet distill`, `fnet finetune`): optimizer
schedule, checkpoints, the output folder, and (from :class:`fnet.harness.DeviceOptions`) the device,
precision and threads. Each run's config dataclass inherits them, so each default and help text is
written once; `fnet.options.add_arguments` lists them after the run's own."""

from __future__ import annotations

from dataclasses import dataclass

from fnet.harness import DeviceOptions
from fnet.options import option, require_at_least

__all__ = ["RunOptions"]


@dataclass
class RunOptions(DeviceOptions):
    schedule: str = option("linear", "decay after warmup: linear, cosine or constant")
    weight_decay: float = option(0.01, "AdamW weight decay (never on biases and LayerNorm weights)")
    clip_grad: float = option(1.0, "max global gradient norm (0: no clipping)")
    keep_last: int = option(2, "checkpoints kept")
    log_every: int = option(10, "steps per metrics.jsonl line and progress update")
    resume: bool = option(False, "continue from the newest complete checkpoint in OUTPUT (a fresh start when there "
                                 "is none)")
    overwrite: bool = option(False, "replace what OUTPUT holds (another run, a model; never one of the run's inputs); "
                                    "the old folder stays intact until this run finishes")
    progress: bool = option(True, "show a progress bar (--no-progress to hide)")

    def check_run_options(self) -> None:
        """The checks of the shared options; raises ``ValueError`` naming the flag to change."""
        require_at_least(self, 1, "keep_last", "log_every")
        from fnet.training.optim import SCHEDULES

        self.check_device_options(training=True)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"--schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.resume and self.overwrite:
            raise ValueError("--resume continues the run in --output and --overwrite replaces it: give one of them")

    def optimizer_and_scheduler(self, model, lr: float, warmup_steps: int, max_steps: int):
        """AdamW with BERT's decay exclusions and this run's schedule (``fnet.training.optim``)."""
        from fnet.training.optim import OptimConfig, build_optimizer, build_scheduler

        optim = OptimConfig(lr=lr, weight_decay=self.weight_decay, warmup_steps=warmup_steps, schedule=self.schedule)
        optimizer = build_optimizer(model, optim)
        return optimizer, build_scheduler(optimizer, optim, max_steps)
