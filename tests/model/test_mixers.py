"""Token mixers and block options: one contract, every mixer, every head, checkpoint round trips."""

from __future__ import annotations

import pytest
import torch

import fnet.modeling as modeling
from conftest import tiny_config_kwargs
from fnet import FNetConfig, FNetModel
from fnet.mixers import MIXERS, PerformerMixer, apply_rotary, build_mixer

ALL_MIXERS = list(MIXERS)
TASK_MODELS = [
    "FNetForPreTraining", "FNetForMaskedLM", "FNetForNextSentencePrediction", "FNetForSequenceClassification",
    "FNetForMultipleChoice", "FNetForTokenClassification", "FNetForQuestionAnswering",
]


def tiny(**overrides) -> FNetConfig:
    return FNetConfig(**tiny_config_kwargs(**{"num_attention_heads": 4, "attention_probs_dropout_prob": 0.0, **overrides}))


def _ids(b: int, n: int, vocab: int = 61) -> torch.Tensor:
    return torch.randint(4, vocab, (b, n))


# ----------------------------------------------------------------------------- parameter names


def _layer_names(config: FNetConfig) -> list[str]:
    return sorted(k[len("encoder.layer.0."):] for k in FNetModel(config).state_dict() if k.startswith("encoder.layer.0."))


FFN = ["intermediate.dense.bias", "intermediate.dense.weight", "output.LayerNorm.bias", "output.LayerNorm.weight",
       "output.dense.bias", "output.dense.weight"]
BERT_ATTENTION = ["attention.output.LayerNorm.bias", "attention.output.LayerNorm.weight", "attention.output.dense.bias",
                  "attention.output.dense.weight", "attention.self.key.bias", "attention.self.key.weight",
                  "attention.self.query.bias", "attention.self.query.weight", "attention.self.value.bias",
                  "attention.self.value.weight"]


@pytest.mark.parametrize(
    "mixer, expected",
    [
        ("fourier", ["fourier.output.LayerNorm.bias", "fourier.output.LayerNorm.weight"] + FFN),
        ("attention", BERT_ATTENTION + FFN),
        ("linear-attention", BERT_ATTENTION + FFN),
        ("performer", sorted(BERT_ATTENTION + ["attention.self.projection_matrix"]) + FFN),
        ("linear", ["mixing.output.LayerNorm.bias", "mixing.output.LayerNorm.weight", "mixing.self.hidden_weight",
                    "mixing.self.seq_weight"] + FFN),
        ("random", ["mixing.output.LayerNorm.bias", "mixing.output.LayerNorm.weight", "mixing.self.hidden_matrix",
                    "mixing.self.seq_matrix"] + FFN),
        ("identity", ["mixing.output.LayerNorm.bias", "mixing.output.LayerNorm.weight"] + FFN),
    ],
)
def test_parameter_names_of_each_architecture(mixer, expected):
    assert _layer_names(tiny(token_mixer=mixer)) == sorted(expected)


def test_default_model_has_exactly_the_reference_keys():
    keys = set(FNetModel(tiny()).state_dict())
    embeddings = {f"embeddings.{n}" for n in ("word_embeddings.weight", "position_embeddings.weight",
                                              "token_type_embeddings.weight", "LayerNorm.weight", "LayerNorm.bias",
                                              "projection.weight", "projection.bias")}
    layers = {f"encoder.layer.{i}.{n}" for i in range(2)
              for n in ["fourier.output.LayerNorm.bias", "fourier.output.LayerNorm.weight"] + FFN}
    assert keys == embeddings | layers | {"pooler.dense.weight", "pooler.dense.bias"}


def test_block_option_parameter_names():
    assert "intermediate.gate.weight" in _layer_names(tiny(feed_forward="swiglu"))
    assert "fourier.output.LayerNorm.bias" not in _layer_names(tiny(norm_type="rmsnorm"))  # RMSNorm: weight only
    pre = FNetModel(tiny(norm_position="pre")).state_dict()
    assert {"encoder.final_norm.weight", "encoder.final_norm.bias"} <= set(pre)
    albert = FNetModel(tiny(embedding_size=8, share_layers=True)).state_dict()
    assert albert["embeddings.word_embeddings.weight"].shape == (61, 8)
    assert albert["embeddings.projection.weight"].shape == (24, 8)
    assert not any(k.startswith("encoder.layer.1.") for k in albert)
    bert_like = FNetModel(tiny(token_mixer="attention", embedding_projection=False)).state_dict()
    assert not any("projection" in k for k in bert_like)


# ----------------------------------------------------------------------------- the contract


@pytest.mark.parametrize("mixer", ALL_MIXERS)
def test_mixer_contract_shape_and_dtype(mixer):
    module = build_mixer(mixer, tiny())
    x = torch.randn(3, 11, 24)
    assert module(x, None).shape == (3, 11, 24)
    mask = torch.ones(3, 11, dtype=torch.long)
    mask[1, 7:] = 0
    out = module(x, mask)
    assert out.shape == (3, 11, 24) and out.dtype == x.dtype and torch.isfinite(out).all()


@pytest.mark.parametrize("mixer", ALL_MIXERS)
def test_residual_form_equals_input_plus_mixed(mixer):
    module = build_mixer(mixer, tiny()).eval()
    x = torch.randn(3, 11, 24)
    mask = torch.ones(3, 11, dtype=torch.long)
    mask[1, 7:] = 0
    for padding in (None, mask):
        with torch.no_grad():
            fused, plain = module.residual(x, padding), x + module(x, padding)
        torch.testing.assert_close(fused, plain, atol=1e-5, rtol=1e-5, msg=lambda m: f"{mixer}, mask={padding is not None}: {m}")


@pytest.mark.parametrize("mixer", ALL_MIXERS)
def test_every_block_calls_its_mixer_through_the_registry(mixer, monkeypatch):
    # one dispatch: each layer's sublayer is the registry's class, and the post-norm sublayer reaches it
    # through the mixer's own methods (the Fourier mixer's fused residual included)
    model = FNetModel(tiny(token_mixer=mixer, num_hidden_layers=2)).eval()
    for layer in model.encoder.layer:
        assert type(layer.mixing_sublayer) is modeling.FNetMixingSublayer
        assert type(layer.mixing_sublayer.self) is MIXERS[mixer]
    calls = []
    cls = MIXERS[mixer]
    for method in ("forward", "residual"):
        original = getattr(cls, method)
        monkeypatch.setattr(cls, method, lambda self, *a, _o=original, _m=method, **k: calls.append(_m) or _o(self, *a, **k))
    with torch.no_grad():
        model(_ids(2, 9))
    if MIXERS[mixer].has_output_dense:  # norm(x + dense(mix(x))): the plain form, once per layer
        assert calls == ["forward"] * 2, calls
    elif mixer == "fourier":  # its own fused x + Re(F x)
        assert calls == ["residual"] * 2, calls
    else:  # the default residual form, x + mix(x)
        assert calls == ["residual", "forward"] * 2, calls


def test_unknown_mixer_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown token mixer 'conv'; use one of .*'fourier'.*'performer'"):
        build_mixer("conv", tiny())
    with pytest.raises(ValueError, match="token_mixer='conv' is not valid; use one of"):
        tiny(token_mixer="conv")


@pytest.mark.parametrize("mixer", ALL_MIXERS)
def test_every_parameter_gets_a_gradient(mixer):
    model = FNetModel(tiny(token_mixer=mixer))
    model.train()
    out = model(_ids(2, 9), attention_mask=torch.tensor([[1] * 9, [1] * 6 + [0] * 3]))
    (out.last_hidden_state.pow(2).mean() + out.pooler_output.sum()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"{mixer}: no gradient for {missing}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


# mixers whose outputs at real tokens can be independent of the padding: all of them here.
# `linear` and `random` mix with (N, N) matrices cut to the input length; pads are zeroed first, so
# with right padding an example's outputs equal its outputs alone (matrix cut to its real length).
@pytest.mark.parametrize("mixer", ALL_MIXERS)
def test_padding_does_not_change_an_examples_outputs(mixer):
    model = FNetModel(tiny(token_mixer=mixer)).eval()
    real = _ids(1, 7)
    alone = model(real).last_hidden_state[0]  # (7, d)
    batch = torch.cat([torch.cat([real, torch.full((1, 6), 3)], dim=1), _ids(1, 13)])  # (2, 13)
    mask = torch.tensor([[1] * 7 + [0] * 6, [1] * 13])
    padded = model(batch, attention_mask=mask).last_hidden_state[0, :7]
    err = (alone - padded).abs().max().item()
    assert err <= 1e-5, f"{mixer}: max abs difference {err:.2e} between alone and padded"


@pytest.mark.parametrize("mixer", ALL_MIXERS)
def test_save_load_round_trip(mixer, tmp_path):
    config = tiny(token_mixer=mixer, rotary=mixer in ("attention", "performer"))
    model = FNetModel(config).eval()
    ids = _ids(2, 10)
    model.save_pretrained(tmp_path)
    again = FNetModel.from_pretrained(tmp_path)
    assert again.config == config
    torch.testing.assert_close(again(ids).last_hidden_state, model(ids).last_hidden_state, rtol=0, atol=0)


def _task_inputs(name: str) -> dict:
    b, n = 2, 8
    if name == "FNetForMultipleChoice":
        return dict(input_ids=_ids(b * 3, n).view(b, 3, n), attention_mask=torch.ones(b, 3, n, dtype=torch.long),
                    labels=torch.tensor([0, 2]))
    inputs = dict(input_ids=_ids(b, n), attention_mask=torch.tensor([[1] * n, [1] * 5 + [0] * 3]))
    if name in ("FNetForPreTraining", "FNetForMaskedLM"):
        inputs["labels"] = torch.full((b, n), -100).index_fill_(1, torch.tensor([2]), 7)
    if name == "FNetForPreTraining":
        inputs["next_sentence_label"] = torch.tensor([0, 1])
    if name in ("FNetForNextSentencePrediction", "FNetForSequenceClassification"):
        inputs["labels"] = torch.tensor([0, 1])
    if name == "FNetForTokenClassification":
        inputs["labels"] = torch.randint(0, 2, (b, n))
    if name == "FNetForQuestionAnswering":
        inputs.update(start_positions=torch.tensor([1, 2]), end_positions=torch.tensor([3, 4]))
    return inputs


@pytest.mark.parametrize("name", TASK_MODELS)
@pytest.mark.parametrize("mixer", ALL_MIXERS)
def test_every_mixer_works_with_every_head(mixer, name):
    model = getattr(modeling, name)(tiny(token_mixer=mixer))
    out = model(**_task_inputs(name))
    assert out.loss is not None and torch.isfinite(out.loss)
    out.loss.backward()


# ----------------------------------------------------------------------------- block options


@pytest.mark.parametrize(
    "options",
    [
        dict(feed_forward="glu"), dict(feed_forward="geglu"), dict(feed_forward="swiglu"),
        dict(hidden_act="relu"), dict(hidden_act="gelu"), dict(norm_type="rmsnorm"), dict(norm_position="pre"),
        dict(embedding_size=8), dict(share_layers=True), dict(token_mixer="attention", rotary=True),
        dict(token_mixer="linear-attention", rotary=True), dict(hybrid_layout="top", hybrid_attention_layers=1),
        dict(token_mixer="performer", norm_position="pre", norm_type="rmsnorm", feed_forward="swiglu"),
    ],
)
def test_block_options_train_and_round_trip(options, tmp_path):
    model = modeling.FNetForMaskedLM(tiny(**options))
    out = model(**_task_inputs("FNetForMaskedLM"))
    out.loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if ".pooler." not in n)  # MLM: no pooler
    model.eval().save_pretrained(tmp_path)
    again = modeling.FNetForMaskedLM.from_pretrained(tmp_path)
    ids = _ids(2, 6)
    torch.testing.assert_close(again(ids).logits, model(ids).logits, rtol=0, atol=0)


def test_share_layers_applies_one_layer_num_hidden_layers_times():
    shared = FNetModel(tiny(share_layers=True, num_hidden_layers=3)).eval()
    single = FNetModel(tiny(num_hidden_layers=1)).eval()
    state = {k: v for k, v in shared.state_dict().items()}
    single.load_state_dict(state)
    ids = _ids(1, 5)
    hidden = single.embeddings(ids)
    for _ in range(3):
        hidden = single.encoder.layer[0](hidden)
    torch.testing.assert_close(shared(ids).last_hidden_state, hidden)


@pytest.mark.parametrize(
    "layout, expected", [("bottom", [0, 1]), ("top", [4, 5]), ("middle", [2, 3]), ("mixed", [0, 5])]
)
def test_hybrid_layouts_place_attention_layers(layout, expected):
    config = tiny(num_hidden_layers=6, hybrid_layout=layout)
    assert config.attention_layer_ids() == expected
    model = FNetModel(config)
    names = [layer.mixing_name for layer in model.encoder.layer]
    assert [i for i, name in enumerate(names) if name == "attention"] == expected
    assert {names[i] for i in range(6) if i not in expected} == {"fourier"}


def test_explicit_attention_layers():
    config = tiny(num_hidden_layers=4, attention_layers=[3, 1])
    assert config.layer_mixers() == ["fourier", "attention", "fourier", "attention"]


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(rotary=True), r"rotary=True applies to the attention family"),
        (dict(token_mixer="attention", num_attention_heads=5), "not divisible by num_attention_heads=5"),
        (dict(token_mixer="attention", num_attention_heads=8), "rotary needs an even head size|^$"),
        (dict(hybrid_layout="left"), "hybrid_layout='left' is not valid"),
        (dict(hybrid_layout="top", attention_layers=[0]), "either FNetConfig.hybrid_layout or attention_layers"),
        (dict(attention_layers=[5]), r"must be distinct layer indices in \[0, 2\)"),
        (dict(hybrid_layout="top", token_mixer="attention"), "set token_mixer to a non-attention mixer"),
        (dict(hybrid_layout="top", share_layers=True), "share_layers=True repeats one layer"),
        (dict(embedding_size=8, embedding_projection=False), "needs the embedding projection"),
        (dict(feed_forward="moe"), "feed_forward='moe' is not valid"),
        (dict(norm_type="batchnorm"), "norm_type='batchnorm' is not valid"),
        (dict(norm_position="sandwich"), "norm_position='sandwich' is not valid"),
        (dict(performer_features=0), "performer_features must be a positive int"),
    ],
)
def test_wrong_combinations_fail_clearly(kwargs, pattern):
    if pattern.endswith("|^$"):  # 24 / 8 = 3: odd head size, only an error with rotary
        tiny(**kwargs)
        with pytest.raises(ValueError, match="rotary needs an even head size"):
            tiny(rotary=True, **kwargs)
        return
    with pytest.raises((ValueError, TypeError), match=pattern):
        tiny(**kwargs)


def test_new_fields_serialise_in_config_json(tmp_path):
    config = tiny(token_mixer="performer", rotary=True, feed_forward="geglu", norm_type="rmsnorm",
                  norm_position="pre", embedding_size=16, performer_features=8, performer_redraw_interval=3)
    config.save_pretrained(tmp_path)
    assert FNetConfig.from_pretrained(tmp_path) == config


# ----------------------------------------------------------------------------- mixer details


def test_attention_equals_explicit_softmax_attention():
    config = tiny(token_mixer="attention")
    mixer = build_mixer("attention", config).eval()
    x = torch.randn(2, 6, 24)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    q, k, v = (mixer._heads(layer(x)) for layer in (mixer.query, mixer.key, mixer.value))
    scores = q @ k.transpose(-1, -2) / 6**0.5 + (1 - mask[:, None, None, :].float()) * -1e9
    expected = mixer._merge(scores.softmax(-1) @ v)
    torch.testing.assert_close(mixer(x, mask), expected, rtol=1e-5, atol=1e-6)


def test_performer_approximates_softmax_attention_with_many_features():
    config = tiny(token_mixer="performer", performer_features=4096)
    performer = build_mixer("performer", config).eval()
    exact = build_mixer("attention", config).eval()
    exact.load_state_dict({k: v for k, v in performer.state_dict().items() if k != "projection_matrix"})
    with torch.no_grad():
        for layer in (performer.query, performer.key):
            layer.weight.mul_(0.3)  # small logits: the estimate's variance grows with |q.k|
        exact.load_state_dict({k: v for k, v in performer.state_dict().items() if k != "projection_matrix"})
    x = torch.randn(1, 16, 24)
    err = (performer(x) - exact(x)).abs().max().item()
    assert err < 0.05, f"FAVOR+ estimate off by {err:.3f}"


def test_performer_feature_redraw():
    mixer = build_mixer("performer", tiny(token_mixer="performer", performer_redraw_interval=2))
    assert isinstance(mixer, PerformerMixer)
    first = mixer.projection_matrix.clone()
    x = torch.randn(1, 5, 24)
    mixer.train()
    mixer(x), mixer(x)
    assert torch.equal(first, mixer.projection_matrix)  # two calls: not yet
    mixer(x)
    assert not torch.equal(first, mixer.projection_matrix)  # third call redraws
    mixer.eval()
    fixed = mixer.projection_matrix.clone()
    mixer(x), mixer(x), mixer(x)
    assert torch.equal(fixed, mixer.projection_matrix)  # never in eval
    mixer.redraw_features(torch.Generator().manual_seed(0))
    assert not torch.equal(fixed, mixer.projection_matrix)


def test_rotary_scores_depend_on_offset_only():
    q, k = torch.randn(1, 1, 1, 8).expand(1, 1, 12, 8), torch.randn(1, 1, 1, 8).expand(1, 1, 12, 8)
    scores = apply_rotary(q) @ apply_rotary(k).transpose(-1, -2)  # (1, 1, 12, 12)
    torch.testing.assert_close(scores[0, 0].diagonal(2), scores[0, 0, 0, 2].expand(10), rtol=1e-5, atol=1e-5)


def test_random_mixer_is_fixed_and_seeded():
    a, b = build_mixer("random", tiny(), 1), build_mixer("random", tiny(), 1)
    assert torch.equal(a.seq_matrix, b.seq_matrix)
    assert not list(a.parameters())
    assert not torch.equal(a.seq_matrix, build_mixer("random", tiny(), 2).seq_matrix)
