"""Parity with transformers' FNet: same weights in both, outputs and losses equal to <= 1e-5.

Weights come from a transformers model with random init, saved with its own save_pretrained and
loaded through fnet.from_pretrained (so key mapping is covered too); then the reverse direction.
"""

from __future__ import annotations

import pytest
import torch
import transformers

import fnet
from conftest import tiny_config_kwargs

CLASSES = [
    "FNetModel", "FNetForPreTraining", "FNetForMaskedLM", "FNetForNextSentencePrediction",
    "FNetForSequenceClassification", "FNetForMultipleChoice", "FNetForTokenClassification",
    "FNetForQuestionAnswering",
]
OUTPUT_FIELDS = ["last_hidden_state", "pooler_output", "logits", "prediction_logits", "seq_relationship_logits",
                 "start_logits", "end_logits", "loss"]

CONFIGS = {
    "odd-sizes-1-layer": dict(hidden_size=27, intermediate_size=35, num_hidden_layers=1, vocab_size=53),
    "3-layers": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3),
    "gelu-exact": dict(hidden_act="gelu", hidden_size=20, num_hidden_layers=2),
}


def _inputs(name: str, batch: int, seq: int, vocab: int, gen: torch.Generator) -> dict:
    shape = (batch, 3, seq) if name == "FNetForMultipleChoice" else (batch, seq)
    inputs = {
        "input_ids": torch.randint(0, vocab, shape, generator=gen),
        "token_type_ids": torch.randint(0, 4, shape, generator=gen),
    }
    if name in ("FNetForPreTraining", "FNetForMaskedLM"):
        labels = torch.randint(0, vocab, shape, generator=gen)
        labels[torch.rand(shape, generator=gen) > 0.3] = -100
        inputs["labels"] = labels
    if name == "FNetForPreTraining":
        inputs["next_sentence_label"] = torch.randint(0, 2, (batch,), generator=gen)
    if name == "FNetForNextSentencePrediction":
        inputs["labels"] = torch.randint(0, 2, (batch,), generator=gen)
    if name == "FNetForSequenceClassification":
        inputs["labels"] = torch.randint(0, 2, (batch,), generator=gen)
    if name == "FNetForMultipleChoice":
        inputs["labels"] = torch.randint(0, 3, (batch,), generator=gen)
    if name == "FNetForTokenClassification":
        inputs["labels"] = torch.randint(0, 2, shape, generator=gen)
    if name == "FNetForQuestionAnswering":
        inputs["start_positions"] = torch.tensor([1, 5, seq + 4][:batch])  # last one out of range: ignored
        inputs["end_positions"] = torch.tensor([2, 7, seq + 9][:batch])
    return inputs


def _compare(a, b, name: str, tol: float = 1e-5) -> dict[str, float]:
    diffs = {}
    for field in OUTPUT_FIELDS:
        x, y = getattr(a, field, None), getattr(b, field, None)
        if x is None:
            continue
        assert y is not None, f"{name}: fnet output lacks {field}"
        assert x.shape == y.shape, f"{name}.{field}: shape {tuple(y.shape)} != reference {tuple(x.shape)}"
        diffs[field] = (x.double() - y.double()).abs().max().item()
    hs_a, hs_b = getattr(a, "hidden_states", None), getattr(b, "hidden_states", None)
    if hs_a is not None:
        assert len(hs_a) == len(hs_b)
        diffs["hidden_states"] = max((x - y).abs().max().item() for x, y in zip(hs_a, hs_b))
    bad = {k: v for k, v in diffs.items() if v > tol}
    assert not bad, f"{name}: max abs differences above {tol}: {bad}"
    return diffs


@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("fourier", ["fft", "dft"])
@pytest.mark.parametrize("name", CLASSES)
def test_against_transformers(name, config_name, fourier, tmp_path):
    kwargs = tiny_config_kwargs(**CONFIGS[config_name])
    torch.manual_seed(1)
    reference = getattr(transformers, name)(transformers.FNetConfig(**kwargs)).eval()
    reference.save_pretrained(tmp_path)
    ours, info = getattr(fnet, name).from_pretrained(tmp_path, output_loading_info=True, fourier_transform=fourier)
    assert info["missing_keys"] == set(), f"{name}: weights not loaded: {info['missing_keys']}"
    gen = torch.Generator().manual_seed(2)
    inputs = _inputs(name, batch=3, seq=13, vocab=kwargs["vocab_size"], gen=gen)
    with torch.no_grad():
        expected = reference(**inputs, output_hidden_states=True)
        got = ours(**inputs, output_hidden_states=True)
    _compare(expected, got, name)


@pytest.mark.parametrize("name", CLASSES)
def test_fnet_checkpoint_loads_in_transformers(name, tmp_path):
    kwargs = tiny_config_kwargs(hidden_size=28, num_hidden_layers=2)
    ours = getattr(fnet, name)(fnet.FNetConfig(**kwargs)).eval()
    ours.save_pretrained(tmp_path)
    reference = getattr(transformers, name).from_pretrained(tmp_path).eval()
    gen = torch.Generator().manual_seed(3)
    inputs = _inputs(name, batch=2, seq=9, vocab=kwargs["vocab_size"], gen=gen)
    with torch.no_grad():
        _compare(reference(**inputs), ours(**inputs), name)


def test_return_dict_false_gives_reference_tuple_order(tmp_path):
    torch.manual_seed(0)
    kwargs = tiny_config_kwargs()
    reference = transformers.FNetForPreTraining(transformers.FNetConfig(**kwargs)).eval()
    reference.save_pretrained(tmp_path)
    ours = fnet.FNetForPreTraining.from_pretrained(tmp_path)
    gen = torch.Generator().manual_seed(0)
    inputs = _inputs("FNetForPreTraining", 2, 7, kwargs["vocab_size"], gen)
    with torch.no_grad():
        a = reference(**inputs, return_dict=False)
        b = ours(**inputs, return_dict=False)
    assert len(a) == len(b) == 3
    for x, y in zip(a, b):
        torch.testing.assert_close(y, x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("problem", ["regression", "single_label_classification", "multi_label_classification"])
def test_sequence_classification_problem_types_match_reference(problem, tmp_path):
    num_labels = 1 if problem == "regression" else 3
    kwargs = tiny_config_kwargs(num_labels=num_labels, problem_type=problem)
    reference = transformers.FNetForSequenceClassification(transformers.FNetConfig(**kwargs)).eval()
    reference.save_pretrained(tmp_path)
    ours = fnet.FNetForSequenceClassification.from_pretrained(tmp_path)
    assert ours.config.problem_type == problem
    ids = torch.randint(0, kwargs["vocab_size"], (4, 10))
    labels = {
        "regression": torch.randn(4),
        "single_label_classification": torch.tensor([0, 2, 1, 2]),
        "multi_label_classification": torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 1], [0, 0, 0]], dtype=torch.float),
    }[problem]
    with torch.no_grad():
        a, b = reference(input_ids=ids, labels=labels), ours(input_ids=ids, labels=labels)
    torch.testing.assert_close(b.loss, a.loss, atol=1e-6, rtol=0)
    torch.testing.assert_close(b.logits, a.logits, atol=1e-6, rtol=0)


def test_reference_initialisation_statistics():
    config = fnet.FNetConfig(**tiny_config_kwargs(vocab_size=500, hidden_size=64, intermediate_size=128))
    model = fnet.FNetForPreTraining(config)
    emb = model.fnet.embeddings.word_embeddings.weight
    assert torch.all(emb[config.pad_token_id] == 0), "padding row must be zero"
    assert abs(emb.std().item() - 0.02) < 0.002
    dense = model.fnet.encoder.layer[0].intermediate.dense
    assert abs(dense.weight.std().item() - 0.02) < 0.002 and torch.all(dense.bias == 0)
    ln = model.fnet.encoder.layer[0].output.LayerNorm
    assert torch.all(ln.weight == 1) and torch.all(ln.bias == 0)
    assert torch.all(model.cls.predictions.bias == 0)
    # tied decoder: one tensor
    assert model.cls.predictions.decoder.weight.data_ptr() == emb.data_ptr()
    assert model.cls.predictions.decoder.bias is model.cls.predictions.bias


def test_parameter_names_match_reference():
    kwargs = tiny_config_kwargs()
    for name in CLASSES:
        ours = set(getattr(fnet, name)(fnet.FNetConfig(**kwargs)).state_dict())
        ref = set(getattr(transformers, name)(transformers.FNetConfig(**kwargs)).state_dict())
        ref -= {"fnet.embeddings.position_ids", "fnet.embeddings.token_type_ids",
                "embeddings.position_ids", "embeddings.token_type_ids"}
        assert ours == ref, f"{name}: only fnet {sorted(ours - ref)}, only reference {sorted(ref - ours)}"
