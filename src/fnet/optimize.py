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

int8 (:func:`quantize`) is the same idea one level down: the encoder's Linear layers become
PyTorch's dynamic int8 modules, and the feed-forward modules run oneDNN's int8 matmul with the
same fused GELU / residual add (``torch.ops.onednn.qlinear_pointwise``, also private), under the
same conditions, falling back to the int8 modules and PyTorch's GELU otherwise.

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

__all__ = ["optimize_for_inference", "optimize_for_training", "quantize", "int8_linear_names", "OneDNNIntermediate",
           "OneDNNOutput", "OneDNNLinear", "Int8Intermediate", "Int8Output", "QUANTIZE_CHOICES", "QUANTIZE_HELP"]

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


# oneDNN's int8 matmul with the same fused post-ops (private to PyTorch too: the x86 backend of
# torch.compile's int8 calls it); None where absent, and then int8 runs on the torch.ao modules alone
_ONEDNN_QLINEAR = getattr(torch.ops.onednn, "qlinear_pointwise", None) if _ONEDNN_LINEAR is not None else None
# int8 activations use 0..255 where the CPU has VNNI; without it oneDNN's u8 x s8 products are summed
# in 16 bits and can saturate, so activations get 7 bits (0..127), as PyTorch's own int8 does on x86
_ACTIVATION_MAX = 255 if getattr(torch.cpu, "_is_vnni_supported", lambda: False)() else 127


def _use_onednn_int8(x: torch.Tensor, module: nn.Module) -> bool:
    return (
        not module.training and not torch.is_grad_enabled()
        and x.device.type == "cpu" and x.dtype == torch.float32 and x.numel() > 0
        and not torch.is_autocast_enabled("cpu") and not _is_exporting()
    )


def _quantize_activations(x: torch.Tensor) -> tuple[torch.Tensor, float, int]:
    """Dynamic per-tensor quantization of ``x`` to uint8: (values, scale, zero point), x ~ scale * (q - zp).

    The range always holds 0, as PyTorch's dynamic quantization does; values are rounded half up.
    """
    low, high = (float(v) for v in torch.aminmax(x))
    low, high = min(low, 0.0), max(high, 0.0)
    scale = max((high - low) / _ACTIVATION_MAX, torch.finfo(torch.float32).eps)
    zero_point = int(min(max(round(-low / scale), 0), _ACTIVATION_MAX))
    shifted = torch.add(torch.tensor(zero_point + 0.5), x, alpha=1.0 / scale)  # (..., k): one pass
    return shifted.clamp_(0, _ACTIVATION_MAX).to(torch.uint8), scale, zero_point  # truncation rounds


def _pack_int8(linear: nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The int8 weights of a dynamic int8 Linear (torch.ao), packed for oneDNN: (weights, per-row
    scales (out,), zero points (out,), float bias). The same int8 values as the torch.ao module's."""
    weight = linear.weight()  # (out, in), qint8, one scale per tensor, zero point 0
    rows = weight.shape[0]
    scales = torch.full((rows,), weight.q_scale(), dtype=torch.float32)
    zero_points = torch.full((rows,), weight.q_zero_point(), dtype=torch.int64)
    packed = torch.ops.onednn.qlinear_prepack(weight.int_repr(), None)
    return packed, scales, zero_points, linear.bias()


class _OneDNNInt8:
    """The int8 weights of ``self.dense`` (a torch.ao dynamic Linear) packed for oneDNN, in ``int8``.
    The packed tensor is opaque (no storage to copy or pickle): copies drop it and repack on first use."""

    int8: tuple | None = None  # (weights, per-row scales, zero points, bias), from _pack_int8

    def packed(self) -> tuple:
        if self.int8 is None:
            self.int8 = _pack_int8(self.dense)
        return self.int8

    def __getstate__(self) -> dict:
        return {**self.__dict__, "int8": None}


class Int8Intermediate(_OneDNNInt8, FNetIntermediate):
    """``FNetIntermediate`` of an int8 model (standard feed-forward, GELU): the int8 dense + GELU in
    one oneDNN call, the activations quantized per call. (b, n, d) -> (b, n, f).

    Without it, the int8 matmul (torch.ao, FBGEMM) is followed by PyTorch's own GELU kernel, a
    separate pass over the (b, n, f) activations that took as long as the int8 matmul itself
    (tanh GELU: 7.6 ms on (2885, 1024) with one thread against 10.4 ms for the matmul), so int8
    gained little end to end. ``dense`` stays the torch.ao module: the fallback (autograd on, other
    devices, exporting) and the state dict.
    """

    fused_gelu: str  # oneDNN's GELU algorithm, "tanh" or "none" (exact erf)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        if _use_onednn_int8(hidden_states, self):
            q, scale, zero_point = _quantize_activations(hidden_states)
            weight, w_scales, w_zero_points, bias = self.packed()
            return _ONEDNN_QLINEAR(q, scale, zero_point, weight, w_scales, w_zero_points, bias, 1.0, 0,
                                   torch.float32, "gelu", [], self.fused_gelu)
        return super().forward(hidden_states)


class Int8Output(_OneDNNInt8, FNetOutput):
    """``FNetOutput`` of an int8 model: the int8 dense + residual add in one oneDNN call, then the
    norm. (b, n, f), (b, n, d) -> (b, n, d)."""

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        if _use_onednn_int8(hidden_states, self) and input_tensor.dtype == torch.float32:
            q, scale, zero_point = _quantize_activations(hidden_states)
            weight, w_scales, w_zero_points, bias = self.packed()
            summed = _ONEDNN_QLINEAR.binary(q, scale, zero_point, weight, w_scales, w_zero_points,
                                            input_tensor.contiguous(), bias, 1.0, 0, torch.float32, 1.0, 0, "add",
                                            1.0, "none", [], "")
            return self.LayerNorm(summed)
        return super().forward(hidden_states, input_tensor)


from fnet.harness import QUANTIZE_CHOICES, QUANTIZE_HELP  # noqa: E402  (the --quantize flag, defined without torch)


def int8_linear_names(model: nn.Module) -> list[str]:
    """The qualified names (``model.named_modules()``) of the Linear layers int8 quantization converts:
    every ``nn.Linear`` of each backbone's encoder (feed-forward, the attention family's projections)
    and its embedding projection; not the pooler or the task heads. :func:`quantize` and the int8
    ONNX export (``fnet.export``) both quantize exactly these."""
    names = []
    for prefix, backbone in model.named_modules():
        if not isinstance(backbone, FNetModel):
            continue
        for name, module in backbone.named_modules():
            if type(module) is nn.Linear and (name.startswith("encoder.") or name == "embeddings.projection"):
                names.append(f"{prefix}.{name}" if prefix else name)
    return names


def quantize(model: FNetPreTrainedModel, dtype: str = "int8") -> FNetPreTrainedModel:
    """int8 weights for the encoder's Linear layers (in place); returns ``model``. CPU inference only.

    PyTorch's dynamic quantization: each Linear of :func:`int8_linear_names` (feed-forward,
    embedding projection, the attention family's projections) keeps int8 weights with one scale per
    tensor and quantizes its input per batch, so the matmuls run in int8 (FBGEMM/oneDNN, AVX2 is
    enough). Embedding tables, norms, the Fourier mixing, the pooler and the task heads stay
    float32. Where PyTorch has oneDNN's int8 matmul, the feed-forward runs on it with the GELU and
    the residual add fused, as the float32 kernels do (:class:`Int8Intermediate`,
    :class:`Int8Output`; activations 8-bit, 7-bit on CPUs without VNNI); the other Linear layers
    run on PyTorch's dynamic int8 modules (FBGEMM). The accuracy change on real tasks is in
    BENCHMARKS.md ("int8"). The model can no longer be trained, exported or moved
    to a GPU. For sentence embeddings: ``fnet.quantize(model)`` then ``model.encode(texts)``.
    """
    if dtype not in QUANTIZE_CHOICES:
        raise ValueError(f"unknown quantization {dtype!r}; choose one of {', '.join(QUANTIZE_CHOICES)}")
    import warnings

    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear
    from torch.ao.quantization import default_dynamic_qconfig

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
        for name in int8_linear_names(model):
            parent, _, attr = name.rpartition(".")
            linear = model.get_submodule(name)
            linear.qconfig = default_dynamic_qconfig
            model.get_submodule(parent).__setattr__(attr, DynamicInt8Linear.from_float(linear))
    if _ONEDNN_QLINEAR is not None:
        _swap_int8_feed_forward(model)
    model.quantized = dtype
    return model


def _swap_int8_feed_forward(model: nn.Module) -> None:
    """Put the int8 feed-forward modules on oneDNN's int8 kernels with the GELU / residual add fused."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

    gelu = _ONEDNN_GELU.get(model.config.hidden_act)
    for module in model.modules():
        if not isinstance(getattr(module, "dense", None), DynamicInt8Linear):
            continue
        if type(module) is FNetIntermediate and module.gate is None and gelu is not None:
            module.__class__ = Int8Intermediate
            module.fused_gelu = gelu
        elif type(module) is FNetOutput:
            module.__class__ = Int8Output
        else:
            continue
        module.packed()


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
