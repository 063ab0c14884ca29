"""CPU kernels, applied from outside the model: ``fnet.optimize_for_inference(model)`` and
``fnet.optimize_for_training(model)``.

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

Training: ``optimize_for_training`` swaps every ``nn.Linear`` for :class:`OneDNNLinear`, whose
forward *and* backward products run oneDNN's float32 GEMM through the same op, with its own
gradient formula (:class:`_OneDNNLinearFunction`). Why: PyTorch's CPU ``mm`` calls MKL, which on
AMD CPUs runs its AVX2 code (about 100 GFLOP/s per core on the development machine, an AMD EPYC
with AVX-512), while oneDNN uses AVX-512 there (150-230 GFLOP/s on the shapes of fnet-small);
the dense layers are over 80% of a CPU training step. The same conditions apply, except that
training mode and autograd are allowed: float32 on the CPU, no autocast, not exporting.
"""

from __future__ import annotations

import torch
from torch import nn

from fnet.modeling import FNetIntermediate, FNetModel, FNetOutput, FNetPreTrainedModel, _is_exporting

__all__ = ["optimize_for_inference", "optimize_for_training", "quantize", "OneDNNIntermediate", "OneDNNOutput",
           "OneDNNLinear", "QUANTIZE_CHOICES"]

# None where PyTorch was built without oneDNN or no longer has the op: then nothing is swapped
_ONEDNN_LINEAR = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None
# config.hidden_act -> oneDNN's GELU algorithm; other activations keep the reference path
_ONEDNN_GELU = {"gelu_new": "tanh", "gelu_fast": "tanh", "gelu_pytorch_tanh": "tanh", "gelu": "none"}


def _onednn_float32(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """The op applies: float32 input and weight on the CPU, CPU autocast off, not exporting."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu") and not _is_exporting())


def _use_onednn(x: torch.Tensor, module: nn.Module) -> bool:
    """The fused inference kernels apply: eval mode, autograd off, and the op applies."""
    return not module.training and not torch.is_grad_enabled() and _onednn_float32(x, module.dense.weight)


class _OneDNNLinearFunction(torch.autograd.Function):
    """y = x W^T + b through oneDNN, with the gradient in the same GEMM:
    dx = dy W, dW = dy^T x, db = sum of dy over the tokens. x (..., i), W (o, i), b (o,) -> (..., o).

    ``_linear_pointwise(a, w, ...)`` computes a w^T; it reads ``w`` through any strides but copies a
    transposed ``a`` to row-major first. So dx is ``(dy, W^T)`` (no copy), and dW is formed from
    whichever of dy and x is smaller: ``(dy^T, x^T)`` copies dy (t*o numbers), ``(x^T, dy^T)^T``
    copies x and the (i, o) result (t*i + i*o). For the MLM decoder (t = 608 masked tokens, o =
    32,000) the second costs 2.3x less.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        x = x.contiguous()
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _ONEDNN_LINEAR(x, weight, bias, "none", [], "")

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()  # an expanded gradient (of a sum) has zero strides
        grad_2d = grad.reshape(-1, grad.shape[-1])  # (t, o)
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = _ONEDNN_LINEAR(grad, weight.t(), None, "none", [], "")  # (..., o) x (o, i) -> (..., i)
        if ctx.needs_input_grad[1]:
            x_2d = x.reshape(-1, x.shape[-1])  # (t, i)
            (t, o), i = grad_2d.shape, x_2d.shape[1]
            if t * o > t * i + i * o:  # (i, t) x (t, o) -> (i, o) -> (o, i)
                grad_weight = _ONEDNN_LINEAR(x_2d.t(), grad_2d.t(), None, "none", [], "").t().contiguous()
            else:
                grad_weight = _ONEDNN_LINEAR(grad_2d.t(), x_2d.t(), None, "none", [], "")  # (o, t) x (t, i) -> (o, i)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_2d.sum(0)  # (o,)
        return grad_x, grad_weight, grad_bias


class OneDNNLinear(nn.Linear):
    """``nn.Linear`` with its product and both gradient products in oneDNN's GEMM whenever the op
    applies (float32 on the CPU, no autocast, not exporting; training or not). (..., i) -> (..., o)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if input.dim() >= 2 and input.numel() and _onednn_float32(input, self.weight):
            return _OneDNNLinearFunction.apply(input, self.weight, self.bias)
        return super().forward(input)


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


QUANTIZE_CHOICES = ("int8",)


def quantize(model: FNetPreTrainedModel, dtype: str = "int8") -> FNetPreTrainedModel:
    """int8 weights for the encoder's Linear layers (in place); returns ``model``. CPU inference only.

    PyTorch's dynamic quantization: each encoder Linear (feed-forward, embedding projection, the
    attention family's projections) keeps int8 weights with one scale per tensor and quantizes its
    input per batch, so the matmuls run in int8 (FBGEMM/oneDNN, AVX2 is enough). Embedding tables,
    norms, the Fourier mixing, the pooler and the task heads stay float32. On the development
    machine the feed-forward runs ~2.8x faster; the accuracy change on real tasks is in
    BENCHMARKS.md ("int8"). The model can no longer be trained, exported or moved to a GPU.
    """
    if dtype not in QUANTIZE_CHOICES:
        raise ValueError(f"unknown quantization {dtype!r}; choose one of {', '.join(QUANTIZE_CHOICES)}")
    import warnings

    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear
    from torch.ao.quantization import quantize_dynamic

    model.eval()
    for module in model.modules():  # the float32 kernels read the weights: back to the reference classes
        if type(module) is OneDNNIntermediate:
            module.__class__ = FNetIntermediate
        elif type(module) is OneDNNOutput:
            module.__class__ = FNetOutput
        elif type(module) is OneDNNLinear:  # quantize_dynamic replaces exact nn.Linear types only
            module.__class__ = nn.Linear
    with warnings.catch_warnings():  # PyTorch flags the eager quantization API as deprecated (it still works)
        warnings.simplefilter("ignore")
        for backbone in [m for m in model.modules() if isinstance(m, FNetModel)]:
            quantize_dynamic(backbone.encoder, {nn.Linear}, dtype=torch.qint8, inplace=True)
            if isinstance(backbone.embeddings.projection, nn.Linear):
                backbone.embeddings.projection = DynamicInt8Linear.from_float(_with_qconfig(backbone.embeddings.projection))
    model.quantized = dtype
    return model


def _with_qconfig(linear: nn.Linear) -> nn.Linear:
    from torch.ao.quantization import default_dynamic_qconfig

    linear.qconfig = default_dynamic_qconfig
    return linear


def optimize_for_inference(model: FNetPreTrainedModel, unpadded: bool = True,
                           quantize_weights: str | None = None) -> FNetPreTrainedModel:
    """Make a model fast for CPU inference (in place) and return it.

    * the fused oneDNN feed-forward kernels (dense + GELU, dense + residual add): float32, outputs
      equal the reference to float32 rounding;
    * ``unpadded`` (default): the backbone runs padded batches on their real tokens only
      (:mod:`fnet.unpadded`); real-token outputs equal the padded path, pad positions of
      ``last_hidden_state`` become zeros;
    * ``quantize_weights="int8"``: int8 encoder Linear layers (:func:`quantize`), a small accuracy change.

    Safe on any fnet model and idempotent: where PyTorch lacks the op it changes nothing; the
    swapped modules fall back to the reference forward in training, under autograd, on other
    devices or dtypes, under autocast and while exporting (see the module docstring). Gated
    feed-forwards (``glu``, ``geglu``, ``swiglu``) and non-GELU activations keep their intermediate
    module; every ``FNetOutput`` is swapped.
    """
    if not isinstance(model, FNetPreTrainedModel):
        raise TypeError(f"optimize_for_inference expects an fnet model (FNetModel, FNetFor...), got {type(model).__name__}")
    if unpadded:
        from fnet.unpadded import unpad

        unpad(model)
    if quantize_weights is not None:
        return quantize(model, quantize_weights)
    if _ONEDNN_LINEAR is None or getattr(model, "quantized", None):
        return model
    gelu = _ONEDNN_GELU.get(model.config.hidden_act)
    for module in model.modules():
        if type(module) is FNetIntermediate and module.gate is None and gelu is not None:
            module.__class__ = OneDNNIntermediate
            module.fused_gelu = gelu
        elif type(module) is FNetOutput:
            module.__class__ = OneDNNOutput
    return model


def optimize_for_training(model: FNetPreTrainedModel) -> FNetPreTrainedModel:
    """Make a model's float32 CPU training steps fast (in place) and return it.

    Every ``nn.Linear`` (feed-forward, embedding projection, attention projections, pooler, heads,
    the MLM decoder tied to the word embeddings) becomes :class:`OneDNNLinear`: forward and
    backward GEMMs in oneDNN (see the module docstring). Gradients equal the reference to float32
    rounding (tests/model/test_fast_paths.py); the speed is in
    benchmarks/results/speed/training_speed.md. ``fnet pretrain`` and ``fnet finetune`` apply it
    together with :func:`optimize_for_inference` (whose kernels serve their evaluations), ``fnet
    distill`` to the student. Parameters and state-dict keys stay; idempotent; where PyTorch lacks
    the op, or after :func:`quantize`, nothing changes.
    """
    if not isinstance(model, FNetPreTrainedModel):
        raise TypeError(f"optimize_for_training expects an fnet model (FNetModel, FNetFor...), got {type(model).__name__}")
    if _ONEDNN_LINEAR is None or getattr(model, "quantized", None):
        return model
    for module in model.modules():
        if type(module) is nn.Linear:
            module.__class__ = OneDNNLinear
    return model


def compile_for_inference(model: FNetPreTrainedModel, dynamic: bool = True, backend: str = "inductor"
                          ) -> FNetPreTrainedModel:
    """``torch.compile`` each encoder layer's feed-forward sublayer and the embeddings (in place); returns ``model``.

    The Fourier mixing stays eager (complex FFTs and per-example lengths do not lower to
    Inductor), so each mixer call is a graph break by design: what compiles is the dense math
    around it, with ``dynamic`` shapes so that length buckets of every size reuse one graph.
    Works in training too (the compiled sublayers keep autograd). Outputs equal eager to float32
    rounding (tests/model/test_compile.py); whether it pays is measured in BENCHMARKS.md.
    """
    import torch._dynamo

    from fnet.modeling import FNetLayer

    if not isinstance(model, FNetPreTrainedModel):
        raise TypeError(f"compile_for_inference expects an fnet model, got {type(model).__name__}")
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    for module in model.modules():
        if isinstance(module, FNetLayer) and not getattr(module, "_fnet_compiled", False):
            module.feed_forward = torch.compile(module.feed_forward, dynamic=dynamic, backend=backend)
            module._fnet_compiled = True
    return model
