"""Behaviour beyond the reference: padding that does not change answers, any precision, long inputs,
embedding resizing, and clear errors for bad input."""

from __future__ import annotations

import pytest
import torch

import fnet
from conftest import tiny_config_kwargs
from fnet import FNetConfig
from fnet.training import activation_checkpointing


def _model(cls=fnet.FNetModel, **kw):
    return cls(FNetConfig(**tiny_config_kwargs(**kw))).eval()


# ----------------------------------------------------------------------------- padding


@pytest.mark.parametrize("fourier", ["fft", "dft"])
@pytest.mark.parametrize("cls_name", ["FNetModel", "FNetForTokenClassification", "FNetForQuestionAnswering",
                                      "FNetForSequenceClassification", "FNetForMaskedLM"])
def test_outputs_at_real_positions_do_not_depend_on_padding(cls_name, fourier):
    model = _model(getattr(fnet, cls_name), fourier_transform=fourier)
    lengths = [11, 4, 7]
    n = max(lengths) + 5  # extra padding beyond the longest example too
    ids = torch.randint(5, 61, (3, n))
    mask = (torch.arange(n)[None] < torch.tensor(lengths)[:, None]).long()
    ids[mask == 0] = 3
    with torch.no_grad():
        batched = model(input_ids=ids, attention_mask=mask)
        for i, length in enumerate(lengths):
            alone = model(input_ids=ids[i : i + 1, :length])
            for field in ("last_hidden_state", "logits", "start_logits", "end_logits", "pooler_output"):
                a, b = getattr(alone, field, None), getattr(batched, field, None)
                if a is None:
                    continue
                b = b[i : i + 1] if field == "pooler_output" or (field == "logits" and a.dim() == 2) else b[i : i + 1, :length]
                err = (a - b).abs().max().item()
                assert err <= 1e-5, f"{cls_name}.{field} example {i}: alone vs padded differ by {err}"


def test_without_mask_pads_are_mixed_like_the_reference():
    model = _model()
    ids = torch.randint(5, 61, (1, 8))
    padded = torch.cat([ids, torch.full((1, 4), 3)], dim=1)
    with torch.no_grad():
        alone = model(input_ids=ids).last_hidden_state
        unmasked = model(input_ids=padded).last_hidden_state[:, :8]
    assert (alone - unmasked).abs().max() > 1e-3, "without attention_mask the pads must take part (reference behaviour)"


# ----------------------------------------------------------------------------- precision


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("fourier", ["fft", "dft"])
def test_half_precision_models_run_at_any_length(dtype, fourier):
    model = _model(fnet.FNetForPreTraining, fourier_transform=fourier).to(dtype)
    for n in (7, 33, 63):
        ids = torch.randint(0, 61, (2, n))
        with torch.no_grad():
            out = model(input_ids=ids)
        assert out.prediction_logits.dtype == dtype
        assert torch.isfinite(out.prediction_logits.float()).all()


def test_bf16_autocast_close_to_float32():
    model = _model(fnet.FNetModel, hidden_size=32)
    ids = torch.randint(0, 61, (2, 19))
    with torch.no_grad():
        ref = model(input_ids=ids).last_hidden_state
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(input_ids=ids).last_hidden_state
    assert torch.isfinite(out).all()
    assert (out.float() - ref).abs().max().item() < 0.15  # bf16 has ~3 significant digits


def test_training_step_reduces_loss():
    model = _model(fnet.FNetForSequenceClassification, hidden_dropout_prob=0.1).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = torch.randint(0, 61, (8, 12))
    labels = (ids[:, 1] > 30).long()
    losses = []
    for _ in range(30):
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# ----------------------------------------------------------------------------- long inputs


def test_position_table_of_16384():
    model = _model(fnet.FNetModel, max_position_embeddings=16384, hidden_size=16, intermediate_size=16,
                   num_hidden_layers=1)
    with torch.no_grad():
        out = model(input_ids=torch.randint(0, 61, (1, 16384)))
    assert out.last_hidden_state.shape == (1, 16384, 16)


@pytest.mark.parametrize("init", ["copy", "random"])
def test_extend_position_table_keeps_short_inputs_identical(init, tmp_path):
    model = _model(fnet.FNetForMaskedLM, max_position_embeddings=16)
    ids = torch.randint(0, 61, (2, 16))
    with torch.no_grad():
        before = model(input_ids=ids).logits
    model.resize_position_embeddings(40, init=init)
    assert model.config.max_position_embeddings == 40
    with torch.no_grad():
        after = model(input_ids=ids).logits
        longer = model(input_ids=torch.randint(0, 61, (2, 40))).logits
    torch.testing.assert_close(after, before, atol=0, rtol=0)
    assert longer.shape == (2, 40, 61)
    table = model.fnet.embeddings.position_embeddings.weight
    if init == "copy":
        torch.testing.assert_close(table[16:32], table[:16])
    model.save_pretrained(tmp_path)
    again = fnet.FNetForMaskedLM.from_pretrained(tmp_path)
    assert again.config.max_position_embeddings == 40
    with torch.no_grad():
        torch.testing.assert_close(again(input_ids=ids).logits, before, atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------- embeddings


def test_resize_token_embeddings_keeps_old_rows_and_tying():
    model = _model(fnet.FNetForPreTraining)
    old = model.get_input_embeddings().weight.detach().clone()
    model.resize_token_embeddings(70)
    emb = model.get_input_embeddings()
    assert emb.num_embeddings == 70 and model.config.vocab_size == 70
    torch.testing.assert_close(emb.weight[:61], old)
    assert model.cls.predictions.decoder.weight.data_ptr() == emb.weight.data_ptr()
    assert model.cls.predictions.bias.shape == (70,)
    out = model(input_ids=torch.tensor([[69, 1, 2]]))
    assert out.prediction_logits.shape == (1, 3, 70)
    model.resize_token_embeddings(50)
    assert model(input_ids=torch.tensor([[49]])).prediction_logits.shape == (1, 1, 50)


def test_get_set_input_embeddings():
    model = _model(fnet.FNetForMaskedLM)
    new = torch.nn.Embedding(61, 24)
    model.set_input_embeddings(new)
    assert model.get_input_embeddings() is new
    assert model.cls.predictions.decoder.weight is new.weight


def test_only_masked_logits_equal_full_logits_at_masked_positions():
    model = _model(fnet.FNetForPreTraining)
    ids = torch.randint(0, 61, (3, 10))
    labels = torch.full((3, 10), -100)
    labels[0, 2], labels[1, 7], labels[2, 0], labels[2, 9] = 5, 6, 7, 8
    nsp = torch.tensor([0, 1, 0])
    with torch.no_grad():
        full = model(input_ids=ids, labels=labels, next_sentence_label=nsp)
        fast = model(input_ids=ids, labels=labels, next_sentence_label=nsp, only_masked_logits=True)
    assert fast.prediction_logits.shape == (4, 61)
    torch.testing.assert_close(fast.prediction_logits, full.prediction_logits[labels != -100])
    torch.testing.assert_close(fast.loss, full.loss)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        (dict(input_ids=torch.tensor([[1, 2, 61]])), ValueError, r"input_ids contains 61, outside \[0, 61\).*resize_token_embeddings"),
        (dict(input_ids=torch.tensor([[1, -2]])), ValueError, "input_ids contains -2"),
        (dict(input_ids=torch.tensor([[1.0, 2.0]])), TypeError, "integer ids.*inputs_embeds"),
        (dict(input_ids=[[1, 2]]), TypeError, "must be a torch.Tensor"),
        (dict(input_ids=torch.tensor([1, 2])), ValueError, r"add a batch dimension"),
        (dict(input_ids=torch.tensor([[1, 2]]), token_type_ids=torch.tensor([[0, 4]])), ValueError, r"token_type_ids contains 4.*segment"),
        (dict(input_ids=torch.tensor([[1, 2]]), token_type_ids=torch.tensor([[0, 1, 1]])), ValueError, "does not match input_ids shape"),
        (dict(input_ids=torch.ones(1, 65, dtype=torch.long)), ValueError, r"65 exceeds max_position_embeddings=64.*resize_position_embeddings"),
        (dict(input_ids=torch.tensor([[1, 2]]), attention_mask=torch.ones(1, 3)), ValueError, "attention_mask shape"),
        (dict(input_ids=torch.tensor([[1, 2]]), attention_mask=torch.tensor([[0.5, 1.0]])), ValueError, "0 \\(pad\\) and 1"),
        (dict(), ValueError, "exactly one of input_ids or inputs_embeds"),
        (dict(inputs_embeds=torch.randn(1, 3, 7)), ValueError, "hidden=24"),
        (dict(input_ids=torch.zeros(2, 0, dtype=torch.long)), ValueError, "no tokens"),
    ],
)
def test_bad_input_gets_a_clear_error(kwargs, error, pattern):
    model = _model()
    with pytest.raises(error, match=pattern):
        model(**kwargs)


def test_multiple_choice_needs_three_dimensions():
    model = _model(fnet.FNetForMultipleChoice)
    with pytest.raises(ValueError, match=r"\(batch, choices, seq\)"):
        model(input_ids=torch.ones(2, 5, dtype=torch.long))
    out = model(input_ids=torch.ones(2, 4, 5, dtype=torch.long), labels=torch.tensor([0, 3]))
    assert out.logits.shape == (2, 4) and out.loss is not None


def test_inputs_embeds_equals_input_ids_path():
    model = _model()
    ids = torch.randint(0, 61, (2, 6))
    with torch.no_grad():
        a = model(input_ids=ids).last_hidden_state
        b = model(inputs_embeds=model.embeddings.word_embeddings(ids)).last_hidden_state
    torch.testing.assert_close(a, b)


def test_gradient_checkpointing_gives_same_gradients():
    torch.manual_seed(0)
    model = _model(fnet.FNetForMaskedLM).train()
    ids = torch.randint(0, 61, (2, 9))
    model(input_ids=ids, labels=ids).loss.backward()
    plain = [None if p.grad is None else p.grad.clone() for p in model.parameters()]  # the pooler is unused
    model.zero_grad()
    keys = list(model.state_dict())
    model.gradient_checkpointing_enable()
    assert model.is_gradient_checkpointing and model.fnet.encoder.gradient_checkpointing
    assert list(model.state_dict()) == keys  # the checkpoint keys do not change
    model(input_ids=ids, labels=ids).loss.backward()
    assert sum(a is not None for a in plain) > 10
    for a, p in zip(plain, model.parameters()):
        if a is None:
            assert p.grad is None
        else:
            torch.testing.assert_close(p.grad, a)
    model.gradient_checkpointing_disable()
    assert not model.is_gradient_checkpointing


def test_activation_checkpointing_recomputes_in_training_only(monkeypatch):
    model = activation_checkpointing.apply(_model(fnet.FNetForMaskedLM, share_layers=True, num_hidden_layers=3))
    recomputed = []
    real = activation_checkpointing.checkpoint
    monkeypatch.setattr(activation_checkpointing, "checkpoint", lambda *a, **k: recomputed.append(1) or real(*a, **k))
    ids = torch.randint(0, 61, (2, 9))
    model.train()(input_ids=ids, labels=ids).loss.backward()
    assert len(recomputed) == 3  # the one shared layer, applied three times
    with torch.no_grad():
        model(input_ids=ids)
    model.eval()(input_ids=ids)
    assert len(recomputed) == 3, "no recomputation without training and autograd"
