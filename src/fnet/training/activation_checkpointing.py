"""Activation checkpointing, applied from outside the model: ``apply(model)`` / ``remove(model)``.

Each encoder layer's activations are recomputed in the backward pass instead of being kept from
the forward pass: training memory drops to about one layer's activations plus each layer's input,
for roughly one extra forward pass of compute. Gradients are unchanged.

``apply`` swaps every ``FNetLayer`` of the model for ``CheckpointedFNetLayer`` (the class changes,
parameters and state-dict keys do not). The checkpointed layer recomputes only while training with
autograd on; in eval mode or under ``torch.no_grad`` it runs the plain forward.
``model.gradient_checkpointing_enable()`` / ``gradient_checkpointing_disable()`` call these.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from fnet.modeling import FNetLayer

__all__ = ["apply", "remove", "CheckpointedFNetLayer"]


class CheckpointedFNetLayer(FNetLayer):
    """``FNetLayer`` whose activations are recomputed in the backward pass. (b, n, d) -> (b, n, d)."""

    def forward(self, hidden_states: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.training and torch.is_grad_enabled():
            return checkpoint(super().forward, hidden_states, padding_mask, use_reentrant=False)
        return super().forward(hidden_states, padding_mask)


def apply(model: nn.Module) -> nn.Module:
    """Checkpoint every encoder layer of ``model`` (in place; idempotent) and return it."""
    for module in model.modules():
        if type(module) is FNetLayer:
            module.__class__ = CheckpointedFNetLayer
    return model


def remove(model: nn.Module) -> nn.Module:
    """Undo ``apply``: every layer keeps its activations again. Returns ``model``."""
    for module in model.modules():
        if type(module) is CheckpointedFNetLayer:
            module.__class__ = FNetLayer
    return model
