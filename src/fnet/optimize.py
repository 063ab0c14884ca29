"""CPU inference kernels, applied from outside the model: ``fnet.optimize_for_inference(model)``.

Legend: b batch, n sequence length, d hidden size, f intermediate size.

The model classes in ``fnet.modeling`` hold the math only. This module swaps the feed-forward
modules of a built model for subclasses that run oneDNN's matmul with a fused post-op: GELU after
the d -> f projection (``FNetIntermediate``), the residual add after the f -> d projection
(``FNetOutput``). Each is one pass over the (b, n, f) activations instead of two or three, and
oneDNN's float32 GEMM beats the default one on the CPUs measured (BENCHMARKS.md, "What makes fnet
fast"). The op, ``torch.ops.mkldnn._linear_pointwise``, is private to PyTorch and has no autograd
formula, so the swapped modules use it only when all of these hold at call time:

* the module is in eval mode and autograd is off (``torch.no_grad`` / ``torch.inference_mode``);
* the input and the weights are float32 on the CPU, and CPU autocast is off;
* the model is not being traced, compiled or exported.

Otherwise they run the reference ``forward`` unchanged, so an optimized model can go back to
``model.train()``, move to a GPU, or be exported, and behaves exactly as before the call; the
kernels engage again whenever the conditions hold. The swap keeps parameters, buffers and
state-dict keys: the module's class changes, nothing else.
"""

from __future__ import annotations

import torch
from torch import nn

from fnet.modeling import FNetIntermediate, FNetOutput, FNetPreTrainedModel, _is_exporting

__all__ = ["optimize_for_inference", "OneDNNIntermediate", "OneDNNOutput"]

# None where PyTorch was built without oneDNN or no longer has the op: then nothing is swapped
_ONEDNN_LINEAR = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None
# config.hidden_act -> oneDNN's GELU algorithm; other activations keep the reference path
_ONEDNN_GELU = {"gelu_new": "tanh", "gelu_fast": "tanh", "gelu_pytorch_tanh": "tanh", "gelu": "none"}


def _use_onednn(x: torch.Tensor, module: nn.Module) -> bool:
    return (
        not module.training and not torch.is_grad_enabled()
        and x.device.type == "cpu" and x.dtype == torch.float32 and module.dense.weight.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu") and not _is_exporting()
    )


class OneDNNIntermediate(FNetIntermediate):
    """``FNetIntermediate`` (standard feed-forward, GELU) with dense + GELU in one oneDNN call.
    (b, n, d) -> (b, n, f)."""

    fused_gelu: str  # oneDNN's GELU algorithm, "tanh" or "none" (exact erf), set by the swap

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if _use_onednn(hidden_states, self):
            return _ONEDNN_LINEAR(hidden_states, self.dense.weight, self.dense.bias, "gelu", [], self.fused_gelu)
        return super().forward(hidden_states)


class OneDNNOutput(FNetOutput):
    """``FNetOutput`` with dense + residual add in one oneDNN call, then the norm.
    (b, n, f), (b, n, d) -> (b, n, d)."""

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        if _use_onednn(hidden_states, self):
            summed = _ONEDNN_LINEAR.binary(hidden_states, input_tensor, self.dense.weight, self.dense.bias, "add")
            return self.LayerNorm(summed)
        return super().forward(hidden_states, input_tensor)


def optimize_for_inference(model: FNetPreTrainedModel) -> FNetPreTrainedModel:
    """Swap in the fused CPU feed-forward kernels (in place) and return ``model``.

    Safe on any fnet model and idempotent: where PyTorch lacks the op it changes nothing; the
    swapped modules fall back to the reference forward in training, under autograd, on other
    devices or dtypes, under autocast and while exporting (see the module docstring). Gated
    feed-forwards (``glu``, ``geglu``, ``swiglu``) and non-GELU activations keep their intermediate
    module; every ``FNetOutput`` is swapped. Outputs equal the reference to float32 rounding.
    """
    if not isinstance(model, FNetPreTrainedModel):
        raise TypeError(f"optimize_for_inference expects an fnet model (FNetModel, FNetFor...), got {type(model).__name__}")
    if _ONEDNN_LINEAR is None:
        return model
    gelu = _ONEDNN_GELU.get(model.config.hidden_act)
    for module in model.modules():
        if type(module) is FNetIntermediate and module.gate is None and gelu is not None:
            module.__class__ = OneDNNIntermediate
            module.fused_gelu = gelu
        elif type(module) is FNetOutput:
            module.__class__ = OneDNNOutput
    return model
