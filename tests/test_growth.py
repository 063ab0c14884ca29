"""Function-preserving growth: exact cases agree to 1e-4, inexact ones report their deviation."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config_kwargs

from fnet import FNetConfig, FNetForMaskedLM, FNetForPreTraining, FNetForSequenceClassification, FNetModel
from fnet.growth import (
    grow, grow_depth, grow_depth_pre_norm, grow_hidden, grow_intermediate, grow_positions, grow_vocabulary,
    measure_deviation,
)

EXACT = 1e-4


def _trained_like(cls, **overrides):
    """A tiny model whose norms and biases are not at their init values (growth must not rely on them)."""
    model = cls(FNetConfig(**tiny_config_kwargs(**overrides))).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "LayerNorm" in name or "final_norm" in name or name.endswith("bias"):
                param.add_(torch.randn(param.shape, generator=generator) * 0.3)
    return model


def _assert_exact(old, new, **kwargs):
    deviation = measure_deviation(old, new, **kwargs)
    assert deviation < EXACT, f"max |logit difference| {deviation:.3g} >= {EXACT}"


@pytest.mark.parametrize("feed_forward", ["standard", "swiglu"])
@pytest.mark.parametrize("cls", [FNetForPreTraining, FNetForSequenceClassification])
def test_feed_forward_width_is_exact(cls, feed_forward):
    model = _trained_like(cls, feed_forward=feed_forward)
    grown = grow_intermediate(model, 100, seed=3)  # 40 -> 100: some neurons split in three
    assert grown.config.intermediate_size == 100
    assert grown.base_model.encoder.layer[0].intermediate.dense.weight.shape == (100, 24)
    _assert_exact(model, grown)


def test_split_neurons_are_a_seeded_random_choice():
    model = _trained_like(FNetForMaskedLM)
    first = grow_intermediate(model, 50, seed=0).base_model.encoder.layer[0].intermediate.dense.weight
    again = grow_intermediate(model, 50, seed=0).base_model.encoder.layer[0].intermediate.dense.weight
    other = grow_intermediate(model, 50, seed=1).base_model.encoder.layer[0].intermediate.dense.weight
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_positions_are_exact_for_inputs_the_old_model_could_read():
    model = _trained_like(FNetForMaskedLM)
    grown = grow_positions(model, 200)
    assert grown.config.max_position_embeddings == 200
    _assert_exact(model, grown, length=64)
    long_ids = torch.randint(5, 61, (1, 150))
    assert grown(input_ids=long_ids).logits.shape == (1, 150, 61)


@pytest.mark.parametrize("mixer", ["fourier", "attention"])
def test_pre_norm_depth_is_exact(mixer):
    model = _trained_like(FNetForPreTraining, norm_position="pre", token_mixer=mixer, num_attention_heads=2)
    grown = grow_depth_pre_norm(model, 5)
    assert grown.config.num_hidden_layers == 5 and len(grown.fnet.encoder.layer) == 5
    _assert_exact(model, grown)
    # without closing the mixing branch the new layers change the function
    assert measure_deviation(model, grow_depth_pre_norm(model, 5, gate=False)) > 1e-2


def test_pre_norm_depth_keeps_a_hybrid_s_attention_layers():
    model = _trained_like(FNetForMaskedLM, norm_position="pre", hybrid_layout="top", hybrid_attention_layers=1,
                          num_attention_heads=2)
    grown = grow_depth(model, 4)
    assert grown.config.layer_mixers() == ["fourier", "attention", "fourier", "attention"]
    _assert_exact(model, grown)


@pytest.mark.parametrize("init", ["copy", "zero-ffn"])
def test_post_norm_depth_is_measured_not_exact(init):
    model = _trained_like(FNetForMaskedLM)
    grown = grow_depth(model, 3, init=init)
    assert grown.config.num_hidden_layers == 3
    assert measure_deviation(model, grown) > EXACT  # the Fourier term inside the norm cannot be switched off


def test_hidden_size_is_measured_not_exact_but_every_shape_grows():
    model = _trained_like(FNetForPreTraining)
    grown = grow_hidden(model, 48)
    assert grown.config.hidden_size == 48
    assert grown.fnet.embeddings.word_embeddings.weight.shape == (61, 48)
    assert grown.cls.predictions.decoder.weight.data_ptr() == grown.fnet.embeddings.word_embeddings.weight.data_ptr()
    assert measure_deviation(model, grown) > EXACT


def test_hidden_size_growth_is_exact_where_nothing_mixes_over_the_hidden_dimension():
    # with the identity mixer every operation over d is a Linear, a norm or elementwise: copying
    # channels must then be exact, which checks the channel bookkeeping the Fourier case relies on
    model = _trained_like(FNetForPreTraining, token_mixer="identity")
    _assert_exact(model, grow_hidden(model, 72))
    model = _trained_like(FNetModel, token_mixer="identity", embedding_size=16)
    _assert_exact(model, grow_hidden(model, 48))


def test_vocabulary_growth_keeps_every_old_piece(tmp_path):
    from pretraining_helpers import train_tokenizer, write_corpus

    corpus = write_corpus(tmp_path / "corpus.txt", n_docs=40)
    small = train_tokenizer(corpus, tmp_path / "small", vocab_size=120)
    large = train_tokenizer(corpus, tmp_path / "large", vocab_size=300)
    assert not set(small.get_vocab()) - set(large.get_vocab())  # same corpus: the larger one holds every piece
    model = _trained_like(FNetForMaskedLM, vocab_size=len(small), pad_token_id=small.pad_token_id)
    grown, id_map = grow_vocabulary(model, small, large)
    assert grown.config.vocab_size == len(large)
    assert grown.config.pad_token_id == large.pad_token_id
    assert small.convert_ids_to_tokens(5) == large.convert_ids_to_tokens(int(id_map[5]))
    _assert_exact(model, grown, id_map=id_map)


def test_grow_applies_everything_and_reports():
    model = _trained_like(FNetForPreTraining, norm_position="pre")
    grown, report = grow(model, intermediate_size=64, num_layers=3, max_position_embeddings=128)
    assert report.exact and report.deviation < EXACT, report
    assert len(report.changes) == 3
    grown, report = grow(model, hidden_size=48)
    assert not report.exact and report.deviation > EXACT


@pytest.mark.parametrize("call, flag, size", [
    (grow_intermediate, "--intermediate-size", 8),
    (grow_positions, "--max-position-embeddings", 8),
    (grow_depth, "--num-layers", 1),
    (grow_hidden, "--hidden-size", 8),
])
def test_growing_to_a_smaller_size_fails_naming_the_flag(call, flag, size):
    with pytest.raises(ValueError, match=f"{flag} {size} is smaller than the model's") as err:
        call(_trained_like(FNetForMaskedLM), size)
    assert "\n" not in str(err.value)
