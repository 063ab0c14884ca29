"""AdamW with BERT's decay exclusions, and the warmup-then-decay learning-rate schedule."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SCHEDULES = ("linear", "cosine", "constant")


@dataclass
class OptimConfig:
    """Optimizer and schedule settings (BERT pretraining defaults)."""

    lr: float = 1e-4  # peak learning rate, reached at the end of warmup
    weight_decay: float = 0.01  # decoupled decay on weight matrices and embeddings only
    betas: tuple[float, float] = (0.9, 0.999)  # Adam moment decay rates
    eps: float = 1e-6  # Adam epsilon
    warmup_steps: int = 0  # linear ramp from 0 to lr over these optimizer steps
    schedule: str = "linear"  # after warmup: "linear" to 0 at max_steps, "cosine" to 0, or "constant"

    def validate(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; use one of {SCHEDULES}")


def no_decay(name: str, param: torch.nn.Parameter) -> bool:
    """Biases and normalisation weights (every 1-d parameter, or a name with 'norm') are not decayed."""
    return param.ndim < 2 or "norm" in name.lower() or name.endswith(".bias")


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, plain = [], []
    seen: set[int] = set()
    for name, param in model.named_parameters():
        if not param.requires_grad or id(param) in seen:  # tied weights appear once
            continue
        seen.add(id(param))
        (plain if no_decay(name, param) else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


# devices with torch's fused AdamW kernel among those fnet trains on (--device cpu | cuda)
FUSED_DEVICES = ("cpu", "cuda")


def build_optimizer(model: torch.nn.Module, config: OptimConfig) -> torch.optim.AdamW:
    """AdamW over ``param_groups``: torch's fused kernel where the parameters live on a device that has it.

    The fused kernel updates each parameter in one pass (the per-parameter loop makes about ten
    passes and a temporary the size of the parameter; for a 30k-vocabulary embedding that is most of
    a small model's optimizer time). It is elementwise, so a run gives the same bits on every thread
    and rank count; it agrees with the loop to float32 rounding (tests/training/test_training_loop.py).
    A checkpoint keeps the kernel it was written with (``load_state_dict`` restores the group flags).
    """
    config.validate()
    groups = param_groups(model, config.weight_decay)
    params = [p for group in groups for p in group["params"]]
    fused = bool(params) and all(p.is_floating_point() and p.device.type in FUSED_DEVICES for p in params)
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps,
                             **({"fused": True} if fused else {"foreach": False}))


def lr_factor(step: int, warmup_steps: int, max_steps: int, schedule: str = "linear",
              time_fraction: float = 0.0) -> float:
    """Multiplier of the peak lr at optimizer step ``step`` (0-based).

    ``time_fraction`` is the share of a run's time budget already spent. The schedule is read at
    whichever of the step count and the clock is further along (the clock counts as
    ``time_fraction * max_steps`` steps), so a run stopped by its budget still warms up over the same
    share of the run and decays to 0 at its end, instead of stopping inside a warmup sized for
    ``max_steps``. Without a budget (0) this is the plain step schedule.
    """
    position = max(float(step), time_fraction * max_steps)
    if warmup_steps and position < warmup_steps:
        return min(1.0, (position + 1) / warmup_steps)
    if schedule == "constant":
        return 1.0
    progress = (position - warmup_steps) / max(1, max_steps - warmup_steps)
    progress = min(max(progress, 0.0), 1.0)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0 - progress


class WarmupDecay(torch.optim.lr_scheduler.LRScheduler):
    """``lr_factor`` as a scheduler: stepped once per optimizer step; the trainer of a run with a time
    budget sets ``time_fraction`` before each step. Its state (step, time fraction) is a plain dict."""

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_steps: int, max_steps: int, schedule: str = "linear"):
        self.warmup_steps, self.max_steps, self.schedule = warmup_steps, max_steps, schedule
        self.time_fraction = 0.0
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        factor = lr_factor(self.last_epoch, self.warmup_steps, self.max_steps, self.schedule, self.time_fraction)
        return [base * factor for base in self.base_lrs]


def build_scheduler(optimizer: torch.optim.Optimizer, config: OptimConfig, max_steps: int) -> WarmupDecay:
    config.validate()
    return WarmupDecay(optimizer, config.warmup_steps, max_steps, config.schedule)
