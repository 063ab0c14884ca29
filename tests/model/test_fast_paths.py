"""Every fast path equals the reference (issue 7): the fused Fourier residual, the oneDNN
feed-forward kernels that ``fnet.optimize_for_inference`` swaps in (and nothing else does), and the
oneDNN linear layers of ``fnet.optimize_for_training`` (forward and gradients).

The oracles are independent of fnet: ``torch.fft.fftn(x, dim=(1, 2)).real`` for the transform and
``transformers.FNetModel`` (weights copied) for the whole encoder. Float32 results must match to
1e-5 relative to the output's scale (an FFT of n*d terms carries float32 rounding of that size).
"""

from __future__ import annotations

import copy

import pytest
import torch

import fnet
import fnet.optimize as fast
from conftest import tiny_config_kwargs
from fnet.config import FNetConfig
from fnet.fourier import fft_fourier_transform, fourier_residual, fourier_transform
from fnet.modeling import (FNetForMaskedLM, FNetForPreTraining, FNetForSequenceClassification, FNetIntermediate,
                           FNetModel)

# (n, d): even/even, odd/odd, prime/prime, prime/even, length 1 and 2, d = 1 and 2
SHAPES = [(8, 6), (9, 7), (13, 11), (31, 16), (1, 5), (2, 3), (17, 1), (4, 2), (100, 24)]


def _reference(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftn(x, dim=(1, 2)).real


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, what: str, rel: float = 1e-5) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    if expected.numel() == 0:
        return
    scale = max(float(expected.abs().max()), 1.0)
    err = (actual.double() - expected.double()).abs()
    worst = int(err.argmax())
    assert float(err.max()) <= rel * scale, (
        f"{what}: max abs error {float(err.max()):.3g} > {rel:g} x scale {scale:.3g} "
        f"at flat index {worst} (got {float(actual.flatten()[worst]):.6g}, expected {float(expected.flatten()[worst]):.6g})"
    )


@pytest.mark.parametrize("n,d", SHAPES)
def test_fused_transform_and_residual_equal_fftn(n, d):
    x = torch.randn(3, n, d)
    _assert_close(fft_fourier_transform(x), _reference(x), f"Re(F x) at (n={n}, d={d})")
    _assert_close(fourier_residual(x), x + _reference(x), f"x + Re(F x) at (n={n}, d={d})")
    _assert_close(fourier_residual(x, method="dft"), x + _reference(x), f"DFT x + Re(F x) at (n={n}, d={d})")


@pytest.mark.parametrize("method", ["fft", "dft"])
@pytest.mark.parametrize("n,d", [(9, 7), (12, 8), (13, 11)])
def test_with_padding_mask_each_example_equals_fftn_of_its_own_tokens(method, n, d):
    x = torch.randn(4, n, d)
    lengths = [n, n - 1, 1, n // 2 + 1]
    mask = torch.zeros(4, n, dtype=torch.long)
    for i, length in enumerate(lengths):
        mask[i, :length] = 1
    out = fourier_residual(x, mask, method=method)
    for i, length in enumerate(lengths):
        own = x[i : i + 1, :length]
        _assert_close(out[i : i + 1, :length], own + _reference(own), f"{method} example {i} (length {length})")
        _assert_close(out[i, length:], x[i, length:], f"{method} pads of example {i} keep the residual only")


def test_gradient_of_fused_kernel_equals_autograd_through_fftn():
    x = torch.randn(1, 7, 5, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda t: fourier_residual(t), (x,))
    torch.autograd.gradcheck(lambda t: fft_fourier_transform(t), (x,))
    g = torch.randn(1, 7, 5, dtype=torch.float64)
    (fast,) = torch.autograd.grad(fourier_residual(x), x, g)
    (ref,) = torch.autograd.grad(x + _reference(x), x, g)
    _assert_close(fast, ref, "gradient of x + Re(F x)")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_under_cpu_autocast_and_half_inputs_the_transform_returns_the_input_dtype(dtype):
    x = torch.randn(2, 7, 10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fourier_residual(x).dtype == torch.float32
        assert fourier_transform(x).dtype == torch.float32
    low = x.to(dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fourier_residual(low)
    assert out.dtype == dtype
    # computed in float32 and rounded once: within the low precision's rounding of the output
    _assert_close(out.float(), low.float() + _reference(low.float()), f"{dtype} residual", rel=1e-2)


# ----------------------------------------------------------------------------- whole encoder


def _pair(**overrides) -> tuple[FNetModel, "transformers.FNetModel"]:  # noqa: F821
    transformers = pytest.importorskip("transformers")
    kwargs = tiny_config_kwargs(**overrides)
    ours = FNetModel(FNetConfig(**kwargs)).eval()
    theirs = transformers.FNetModel(transformers.FNetConfig(**kwargs)).eval()
    missing, unexpected = theirs.load_state_dict(ours.state_dict(), strict=False)
    assert not unexpected and all("position_ids" in k or "token_type_ids" in k for k in missing), (missing, unexpected)
    return ours, theirs


@pytest.mark.parametrize("length", [1, 7, 16, 31, 50])
@pytest.mark.parametrize("hidden", [24, 27])
def test_encoder_equals_transformers_fnet(length, hidden):
    ours, theirs = _pair(hidden_size=hidden, intermediate_size=2 * hidden + 1, num_hidden_layers=3)
    ids = torch.randint(0, 61, (3, length))
    types = torch.randint(0, 4, (3, length))
    with torch.inference_mode():
        a = ours(ids, token_type_ids=types)
        b = theirs(ids, token_type_ids=types)
    _assert_close(a.last_hidden_state, b.last_hidden_state, f"last_hidden_state (n={length}, d={hidden})")
    _assert_close(a.pooler_output, b.pooler_output, f"pooler_output (n={length}, d={hidden})")


def test_training_gradients_equal_transformers_fnet():
    ours, theirs = _pair(num_hidden_layers=2)
    ids = torch.randint(0, 61, (2, 13))
    ours(ids).last_hidden_state.square().sum().backward()
    theirs(ids).last_hidden_state.square().sum().backward()
    theirs_grads = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        if param.grad is None:  # the pooler is not in this loss
            assert theirs_grads[name].grad is None, name
            continue
        _assert_close(param.grad, theirs_grads[name].grad, f"gradient of {name}", rel=1e-4)


def test_encoder_with_padding_mask_equals_transformers_on_the_unpadded_example():
    ours, theirs = _pair(num_hidden_layers=2)
    ids = torch.randint(5, 61, (2, 19))
    mask = torch.ones(2, 19, dtype=torch.long)
    mask[1, 11:] = 0
    with torch.inference_mode():
        padded = ours(ids, attention_mask=mask).last_hidden_state
        alone = theirs(ids[1:, :11]).last_hidden_state
        full = theirs(ids[:1]).last_hidden_state
    _assert_close(padded[1:, :11], alone, "padded example vs the same example alone")
    _assert_close(padded[:1], full, "unpadded example")


@pytest.mark.parametrize("length", [7, 100, 511])
def test_model_under_cpu_bf16_autocast_runs_and_tracks_float32(length):
    model = FNetModel(FNetConfig(**tiny_config_kwargs(max_position_embeddings=512))).eval()
    ids = torch.randint(0, 61, (2, length))
    with torch.inference_mode():
        ref = model(ids).last_hidden_state
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(ids).last_hidden_state
    assert torch.isfinite(out).all()
    err = float((out.float() - ref).abs().max())
    assert err < 0.2, f"bf16 autocast drifts from float32 by {err:.3g} at length {length}"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("length", [7, 100, 511])
def test_half_precision_models_run_at_any_length(dtype, length):
    model = FNetModel(FNetConfig(**tiny_config_kwargs(max_position_embeddings=512))).eval()
    ids = torch.randint(0, 61, (2, length))
    with torch.inference_mode():
        ref = model(ids).last_hidden_state
        out = model.to(dtype)(ids).last_hidden_state
    assert out.dtype == dtype
    assert torch.isfinite(out).all(), f"non-finite outputs in {dtype} at length {length}"
    err = float((out.float() - ref).abs().max())
    assert err < 0.25, f"{dtype} model drifts from float32 by {err:.3g} at length {length}"


# ----------------------------------------------------------------------------- optimize_for_inference


@pytest.fixture
def onednn_calls(monkeypatch):
    """Counts calls of the private oneDNN op (both entry points) made through fnet.optimize."""
    if fast._ONEDNN_LINEAR is None:
        pytest.skip("this PyTorch has no torch.ops.mkldnn._linear_pointwise")
    calls = []
    real = fast._ONEDNN_LINEAR

    class Counting:
        def __call__(self, *args):
            calls.append(args[3])  # the post-op: "gelu" (fused feed-forward) or "none" (a plain linear)
            return real(*args)

        def binary(self, *args):
            calls.append("add")
            return real.binary(*args)

    monkeypatch.setattr(fast, "_ONEDNN_LINEAR", Counting())
    return calls


def _fused_modules(model: torch.nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, (fast.OneDNNIntermediate, fast.OneDNNOutput))]


@pytest.mark.parametrize("hidden_act", ["gelu_new", "gelu"])
def test_optimized_model_equals_the_reference_model(hidden_act, onednn_calls):
    config = FNetConfig(**tiny_config_kwargs(hidden_act=hidden_act, num_hidden_layers=3))
    reference = FNetModel(config).eval()
    optimized = copy.deepcopy(reference)
    assert fnet.optimize_for_inference(optimized) is optimized
    ids = torch.randint(0, 61, (3, 29))
    with torch.inference_mode():
        slow = reference(ids).last_hidden_state
    assert onednn_calls == [], "an un-optimized model ran the private op"
    with torch.inference_mode():
        fast_out = optimized(ids).last_hidden_state
    assert onednn_calls == ["gelu", "add"] * 3, onednn_calls  # dense + GELU and dense + residual, per layer
    _assert_close(fast_out, slow, f"optimized vs reference model ({hidden_act})")


def test_only_optimize_for_inference_swaps_modules_and_keys_stay(onednn_calls):
    model = FNetForMaskedLM(FNetConfig(**tiny_config_kwargs(num_hidden_layers=2))).eval()
    keys = list(model.state_dict())
    assert _fused_modules(model) == []  # the model classes hold no kernel
    fnet.optimize_for_inference(model)
    fnet.optimize_for_inference(model)  # idempotent
    assert _fused_modules(model) == [f"fnet.encoder.layer.{i}.{part}" for i in range(2) for part in ("intermediate", "output")]
    assert list(model.state_dict()) == keys


def test_optimized_model_trains_exactly_like_the_reference(onednn_calls):
    # back in train mode (or with autograd on) the swapped modules run the reference forward
    torch.manual_seed(0)
    reference = FNetForMaskedLM(FNetConfig(**tiny_config_kwargs(num_hidden_layers=2))).train()
    optimized = fnet.optimize_for_inference(copy.deepcopy(reference).eval()).train()
    ids = torch.randint(4, 61, (2, 9))
    for model in (reference, optimized):
        torch.manual_seed(1)  # same dropout masks
        model(input_ids=ids, labels=ids).loss.backward()
    assert onednn_calls == []
    for (name, a), b in zip(reference.named_parameters(), optimized.parameters()):
        assert (a.grad is None) == (b.grad is None), name
        if a.grad is not None:
            assert torch.equal(a.grad, b.grad), f"gradient of {name} differs after optimize_for_inference"
    optimized.eval()(ids)  # eval mode with autograd on: the op has no gradient, so the reference path
    assert onednn_calls == []
    with torch.no_grad():
        optimized(ids)
    assert onednn_calls, "the kernels engage again in eval mode without autograd"


def test_optimize_keeps_reference_paths_it_cannot_fuse(onednn_calls):
    gated = fnet.optimize_for_inference(FNetModel(FNetConfig(**tiny_config_kwargs(feed_forward="swiglu"))).eval())
    relu = fnet.optimize_for_inference(FNetModel(FNetConfig(**tiny_config_kwargs(hidden_act="relu"))).eval())
    for model in (gated, relu):
        assert all(type(layer.intermediate) is FNetIntermediate for layer in model.encoder.layer)
        assert all(type(layer.output) is fast.OneDNNOutput for layer in model.encoder.layer)
    ids = torch.randint(0, 61, (2, 11))
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        relu(ids)
    assert onednn_calls == [], "autocast must keep the reference path"
    with torch.inference_mode():
        relu.to(torch.float64)(ids)
    assert onednn_calls == [], "float64 must keep the reference path"


def test_optimize_for_inference_rejects_other_modules():
    with pytest.raises(TypeError, match="expects an fnet model"):
        fnet.optimize_for_inference(torch.nn.Linear(2, 2))


# ----------------------------------------------------------------------------- optimize_for_training


def _step(model, batch, seed: int = 1) -> tuple[float, dict[str, torch.Tensor]]:
    """Loss and parameter gradients of one forward/backward (dropout seeded)."""
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    loss = model(**batch).loss
    loss.backward()
    return float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _assert_same_gradients(fast_grads, slow_grads, what):
    assert fast_grads.keys() == slow_grads.keys(), what
    largest = max(float(g.abs().max()) for g in slow_grads.values())
    for name, slow in slow_grads.items():
        err, scale = float((fast_grads[name] - slow).abs().max()), float(slow.abs().max())
        # 1e-5 of each gradient's own scale; the floor is for gradients that are zero in exact
        # arithmetic (an attention key bias: softmax ignores a shift), where only rounding noise is left
        assert err <= 1e-5 * scale + 1e-9 * largest, f"{what}: {name}'s gradient differs by {err:.3g} (scale {scale:.3g})"


def _pretraining_batch(n: int = 21) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 61, (3, n), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0  # a padded row: the per-example mixing path
    labels = torch.full_like(ids, -100)
    labels[:, 1::3] = ids[:, 1::3]
    labels[mask == 0] = -100
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "only_masked_logits": True,
            "token_type_ids": (torch.arange(n) >= n // 2).long().expand(3, n),
            "next_sentence_label": torch.tensor([0, 1, 1])}


@pytest.mark.parametrize("mixer", ["fourier", "attention"])
def test_optimize_for_training_gives_the_reference_loss_and_gradients(mixer, onednn_calls):
    config = FNetConfig(**tiny_config_kwargs(token_mixer=mixer, num_attention_heads=4, hidden_dropout_prob=0.1,
                                             num_hidden_layers=2))
    torch.manual_seed(0)
    reference = FNetForPreTraining(config).train()
    optimized = copy.deepcopy(reference)
    keys = list(optimized.state_dict())
    assert fnet.optimize_for_training(fnet.optimize_for_inference(optimized)) is optimized
    fnet.optimize_for_training(optimized)  # idempotent
    assert list(optimized.state_dict()) == keys
    assert optimized.cls.predictions.decoder.weight is optimized.fnet.embeddings.word_embeddings.weight, "still tied"
    linears = [n for n, m in reference.named_modules() if type(m) is torch.nn.Linear]
    assert [n for n, m in optimized.named_modules() if type(m) is fast.OneDNNLinear] == linears
    batch = _pretraining_batch()
    slow_loss, slow = _step(reference, batch)
    assert onednn_calls == []
    fast_loss, fast_grads = _step(optimized, batch)
    # every linear once forward and twice backward (input and weight), except the first layer's input
    assert onednn_calls.count("none") >= 3 * len(linears) - 1, onednn_calls
    assert abs(fast_loss - slow_loss) <= 1e-5 * abs(slow_loss), (fast_loss, slow_loss)
    _assert_same_gradients(fast_grads, slow, f"{mixer} pretraining model")


def test_optimized_linears_handle_strided_inputs_sums_and_empty_batches(onednn_calls):
    # the pooler reads hidden[:, 0] (a strided view); a sum's gradient has zero strides; no masked token
    torch.manual_seed(0)
    reference = FNetForSequenceClassification(FNetConfig(**tiny_config_kwargs(num_labels=3))).train()
    optimized = fnet.optimize_for_training(copy.deepcopy(reference))
    batch = {"input_ids": torch.randint(4, 61, (4, 9)), "labels": torch.tensor([0, 2, 1, 2])}
    _assert_same_gradients(_step(optimized, batch)[1], _step(reference, batch)[1], "classifier")
    linear = fnet.optimize_for_training(FNetModel(FNetConfig(**tiny_config_kwargs()))).pooler.dense
    x = torch.randn(2, 5, 24, requires_grad=True)
    linear(x).sum().backward()
    expected = torch.autograd.grad(torch.nn.functional.linear(x, linear.weight, linear.bias).sum(), x)[0]
    torch.testing.assert_close(x.grad, expected)
    assert linear(torch.randn(0, 24)).shape == (0, 24)
    pretraining = fnet.optimize_for_training(FNetForPreTraining(FNetConfig(**tiny_config_kwargs())))
    batch = _pretraining_batch()
    batch["labels"] = torch.full_like(batch["labels"], -100)  # nothing masked: (0, d) into the decoder
    assert pretraining(**batch).prediction_logits.shape == (0, 61)  # the reference path, not the op


def test_optimized_linears_keep_the_reference_path_where_the_op_does_not_apply(onednn_calls):
    model = fnet.optimize_for_training(FNetModel(FNetConfig(**tiny_config_kwargs())))
    ids = torch.randint(0, 61, (2, 11))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(ids).last_hidden_state.float().sum().backward()
    assert onednn_calls == [], "autocast must keep the reference path"
    model.to(torch.float64)(ids).last_hidden_state.sum().backward()
    assert onednn_calls == [], "float64 must keep the reference path"
    quantized = fnet.quantize(fnet.optimize_for_training(FNetModel(FNetConfig(**tiny_config_kwargs()))))
    assert not any(isinstance(m, fast.OneDNNLinear) for m in quantized.modules())
    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

    assert isinstance(quantized.encoder.layer[0].intermediate.dense, DynamicInt8Linear), "the encoder is int8"
    assert fnet.optimize_for_training(quantized) is quantized
    assert not any(isinstance(m, fast.OneDNNLinear) for m in quantized.modules()), "no float kernels over int8"
    with pytest.raises(TypeError, match="expects an fnet model"):
        fnet.optimize_for_training(torch.nn.Linear(2, 2))


def test_modeling_names_no_kernel():
    import inspect

    import fnet.modeling

    source = inspect.getsource(fnet.modeling)
    assert "mkldnn" not in source and "_linear_pointwise" not in source
