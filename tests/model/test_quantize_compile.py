"""int8 inference (fnet.quantize) on a small real task, and torch.compile against eager."""

from __future__ import annotations

import copy

import pytest
import torch

import fnet
from conftest import shared_data, tiny_config_kwargs
from fnet import FNetConfig, FNetForSequenceClassification, FNetModel
from fnet.optimize import compile_for_inference

# int8 may change at most this share of a real task's predictions (and accuracy by at most this much)
MAX_FLIPPED = 0.03


def _agnews(tokenizer):
    rows = shared_data("classification/agnews/dev.tsv").read_text(encoding="utf-8").splitlines()
    names = sorted({row.rsplit("\t", 1)[1] for row in rows})

    def encode(part):
        texts, labels = zip(*(row.rsplit("\t", 1) for row in part))
        enc = tokenizer(list(texts), padding="max_length", truncation=True, max_length=32, return_tensors="pt")
        return enc, torch.tensor([names.index(y) for y in labels])

    return encode(rows[:2000]), encode(rows[-600:]), len(names)


def test_int8_accuracy_on_agnews_stays_within_bound():
    """A small classifier trained for a few seconds on real AG News headlines (4 topics); int8
    weights may flip at most 3% of its predictions on 600 held-out texts and move accuracy by at most 3 points."""
    from fnet.tokenization import FNetTokenizer

    tokenizer = FNetTokenizer(str(shared_data("tokenizers/sentencepiece_test_en_1k.model")))
    (train, train_y), (dev, dev_y), num_labels = _agnews(tokenizer)
    config = FNetConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=1, intermediate_size=128,
                        max_position_embeddings=32, pad_token_id=tokenizer.pad_token_id, num_labels=num_labels,
                        hidden_dropout_prob=0.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: one thread is fastest and immune to a busy machine
    try:
        torch.manual_seed(0)
        model = FNetForSequenceClassification(config)
        opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
        for _ in range(3):
            for start in range(0, 2000, 50):
                rows = slice(start, start + 50)
                loss = model(train["input_ids"][rows], train["attention_mask"][rows], labels=train_y[rows]).loss
                opt.zero_grad()
                loss.backward()
                opt.step()
        model.eval()
        fp32 = fnet.optimize_for_inference(copy.deepcopy(model))
        int8 = fnet.quantize(copy.deepcopy(model))
        with torch.no_grad():
            want = fp32(dev["input_ids"], dev["attention_mask"]).logits.argmax(-1)
            got = int8(dev["input_ids"], dev["attention_mask"]).logits.argmax(-1)
    finally:
        torch.set_num_threads(threads)
    accuracy = float((want == dev_y).float().mean())
    assert accuracy > 0.4, f"the fp32 model did not learn (accuracy {accuracy:.3f}, chance 0.25): the test would prove nothing"
    flipped = float((want != got).float().mean())
    assert flipped <= MAX_FLIPPED, f"int8 changed {flipped:.1%} of the predictions"
    assert abs(float((got == dev_y).float().mean()) - accuracy) <= MAX_FLIPPED


def test_quantize_keeps_heads_float_and_rejects_unknown_kinds():
    model = fnet.optimize_for_inference(FNetForSequenceClassification(FNetConfig(**tiny_config_kwargs())).eval(),
                                        quantize_weights="int8")
    assert model.classifier.weight.dtype == torch.float32
    dense = model.fnet.encoder.layer[0].intermediate.dense
    assert isinstance(dense, torch.ao.nn.quantized.dynamic.Linear)
    assert fnet.optimize_for_inference(model) is model  # idempotent, no float kernels over int8 weights
    with pytest.raises(ValueError, match="int8"):
        fnet.quantize(FNetModel(FNetConfig(**tiny_config_kwargs())), "int4")


def _fake_quantized(x: torch.Tensor, top: int) -> torch.Tensor:
    """x through per-tensor uint8 quantization (range holding 0, round half up), in float64."""
    x = x.double()
    low, high = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (high - low) / top
    zero_point = min(max(round(-low / scale), 0), top)
    return (torch.floor(x / scale + zero_point + 0.5).clamp(0, top) - zero_point) * scale


@pytest.mark.parametrize("act", ["gelu_new", "gelu"])
def test_int8_feed_forward_runs_fused_on_onednn_and_matches_the_int8_math(act):
    """The int8 feed-forward (oneDNN matmul + GELU / + residual add in one call) against the same
    math written out in float64: int8 weights dequantized, activations quantized per tensor."""
    import fnet.optimize as optimize

    if optimize._ONEDNN_QLINEAR is None:
        pytest.skip("this PyTorch has no oneDNN int8 matmul: int8 runs on torch.ao modules alone")
    model = fnet.quantize(FNetModel(FNetConfig(**tiny_config_kwargs(hidden_size=32, intermediate_size=64,
                                                                    hidden_act=act))))
    layer = model.encoder.layer[0]
    inter, out = layer.intermediate, layer.output
    assert (type(inter), type(out)) == (optimize.Int8Intermediate, optimize.Int8Output)
    top = optimize._ACTIVATION_MAX
    x, residual = torch.randn(1, 37, 32) * 3, torch.randn(1, 37, 32)

    def dense(module, values):  # float64 matmul with the module's dequantized int8 weights
        return values @ module.dense.weight().dequantize().double().T + module.dense.bias().double()

    with torch.inference_mode():
        hidden = inter(x)  # (1, 37, 64)
        summed = out(hidden, residual)  # (1, 37, 32)
    approximate = "tanh" if act == "gelu_new" else "none"
    norm = out.LayerNorm
    with torch.no_grad():
        want_hidden = torch.nn.functional.gelu(dense(inter, _fake_quantized(x, top)), approximate=approximate)
        want = torch.nn.functional.layer_norm(residual.double() + dense(out, _fake_quantized(hidden, top)), (32,),
                                              norm.weight.double(), norm.bias.double(), norm.eps)
    err = float((hidden.double() - want_hidden).abs().max())
    assert err < 1e-5, f"int8 dense + GELU differs from the int8 math by {err:.2e}"
    err = float((summed.double() - want).abs().max())
    assert err < 1e-5, f"int8 dense + residual add + norm differs from the int8 math by {err:.2e}"

    ids = torch.randint(4, 61, (2, 20))
    with torch.inference_mode():
        fused = model(ids).last_hidden_state
        copied = copy.deepcopy(model)(ids).last_hidden_state  # the opaque packed weights are repacked
    with torch.enable_grad():  # autograd on: the torch.ao modules and PyTorch's GELU
        fallback = model(ids).last_hidden_state.detach()
    assert torch.equal(fused, copied)
    assert float((fused - fallback).abs().max()) < 0.1, "the fused int8 path and its fallback disagree"


@pytest.mark.parametrize("train", [False, True], ids=["inference", "training"])
def test_compiled_equals_eager(train):
    """Graph capture with the Fourier mixing left eager (aot_eager: Inductor's C++ build would cost
    minutes here; the captured graph is what this test is about)."""
    reference = FNetModel(FNetConfig(**tiny_config_kwargs(hidden_dropout_prob=0.0))).train(train)
    compiled = compile_for_inference(copy.deepcopy(reference), backend="aot_eager")
    ids = torch.randint(4, 61, (3, 20))
    mask = (torch.arange(20) < torch.tensor([[20], [9], [14]])).long()
    with torch.set_grad_enabled(train):
        want = reference(ids, attention_mask=mask).last_hidden_state
        got = compiled(ids, attention_mask=mask).last_hidden_state
    assert float((want - got).abs().max()) < 1e-5
    if train:
        want.sum().backward()
        got.sum().backward()
        for (name, a), b in zip(reference.named_parameters(), compiled.parameters()):
            assert (a.grad is None) == (b.grad is None), name
            assert a.grad is None or torch.allclose(a.grad, b.grad, atol=1e-5), f"gradient of {name} differs"
