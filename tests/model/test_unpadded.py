"""Unpadded inference (fnet.unpadded, applied by optimize_for_inference) against the padded
reference path: every real-token output equal to 1e-5, for every task head and layout."""

from __future__ import annotations

import copy

import pytest
import torch

import fnet
from conftest import tiny_config_kwargs
from fnet import (FNetConfig, FNetForMultipleChoice, FNetForQuestionAnswering, FNetForSequenceClassification,
                  FNetForTokenClassification, FNetModel)
from fnet.unpadded import UnpaddedFNetModel


def _batch(b=4, n=40, vocab=61, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (b, n), generator=g)
    lengths = torch.tensor([n, 7, 23, 1][:b])
    mask = (torch.arange(n) < lengths[:, None]).long()  # right padding, one full row, one single token
    types = (torch.arange(n) >= 3).long().expand(b, n).clone() * mask
    return ids, mask, types


def _pair(cls, **config):
    reference = cls(FNetConfig(**tiny_config_kwargs(**config))).eval()
    return reference, fnet.optimize_for_inference(copy.deepcopy(reference))


def _worst(a, b, keep):
    return float((a[keep] - b[keep]).abs().max())


@pytest.mark.parametrize("config", [
    {}, {"norm_position": "pre"}, {"token_mixer": "attention", "num_attention_heads": 4},
    {"feed_forward": "swiglu"}, {"fourier_transform": "dft"}, {"share_layers": True},
    {"embedding_size": 16}, {"embedding_projection": False}, {"mixing_layer_scale": 0.3},
], ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "reference")
def test_backbone_equals_padded_path(config):
    reference, unpadded = _pair(FNetModel, **config)
    assert type(unpadded) is UnpaddedFNetModel
    ids, mask, types = _batch()
    with torch.no_grad():
        want = reference(ids, attention_mask=mask, token_type_ids=types)
        got = unpadded(ids, attention_mask=mask, token_type_ids=types)
    keep = mask.bool()
    worst = _worst(want.last_hidden_state, got.last_hidden_state, keep)
    assert worst < 1e-5, f"real-token hidden states differ by {worst}"
    assert float((want.pooler_output - got.pooler_output).abs().max()) < 1e-5
    assert bool((got.last_hidden_state[~keep] == 0).all()), "pad positions should be zeros"


def test_task_heads_equal_padded_path():
    ids, mask, types = _batch()
    keep = mask.bool()
    with torch.no_grad():
        for cls in (FNetForSequenceClassification, FNetForTokenClassification):
            reference, unpadded = _pair(cls, num_labels=3)
            want, got = reference(ids, mask, types).logits, unpadded(ids, mask, types).logits
            if want.dim() == 3:
                want, got = want[keep], got[keep]
            assert float((want - got).abs().max()) < 1e-5, cls.__name__
        reference, unpadded = _pair(FNetForQuestionAnswering)
        want, got = reference(ids, mask, types), unpadded(ids, mask, types)
        assert _worst(want.start_logits, got.start_logits, keep) < 1e-5
        assert _worst(want.end_logits, got.end_logits, keep) < 1e-5
        reference, unpadded = _pair(FNetForMultipleChoice)
        choices = lambda t: t.view(2, 2, -1)  # noqa: E731  (b*c, n) -> (b, c, n)
        want = reference(choices(ids), choices(mask), choices(types)).logits
        got = unpadded(choices(ids), choices(mask), choices(types)).logits
        assert float((want - got).abs().max()) < 1e-5


def test_falls_back_to_the_padded_path_where_packing_does_not_apply():
    reference, unpadded = _pair(FNetModel)
    ids, mask, _ = _batch()
    left = mask.flip(-1)  # left padding: the pooler would read a pad, so the reference path runs
    with torch.no_grad():
        left_out = unpadded(ids, attention_mask=left).last_hidden_state
        assert bool((left_out[~left.bool()] != 0).any()), "left padding must take the padded path"
        assert torch.allclose(reference(ids, attention_mask=left).last_hidden_state, left_out, atol=1e-5)
        assert torch.allclose(reference(ids).last_hidden_state, unpadded(ids).last_hidden_state, atol=1e-5)
        for empty in (0, 2, 3):  # a row without tokens (first, middle, last): no first token to pool
            holes = mask.clone()
            holes[empty] = 0
            want, got = reference(ids, attention_mask=holes), unpadded(ids, attention_mask=holes)
            assert torch.allclose(want.pooler_output, got.pooler_output, atol=1e-5), f"empty row {empty}"
        hidden = unpadded(ids, attention_mask=mask, output_hidden_states=True)
        assert hidden.hidden_states is not None and len(hidden.hidden_states) == 3
    out = unpadded(ids, attention_mask=mask)  # autograd on: the reference path, gradients flow
    out.last_hidden_state.sum().backward()
    assert unpadded.embeddings.word_embeddings.weight.grad is not None


def test_state_dict_keys_unchanged():
    reference, unpadded = _pair(FNetForSequenceClassification)
    assert list(reference.state_dict()) == list(unpadded.state_dict())


def test_an_optimized_model_saves_under_its_public_class_name(tmp_path):
    model = fnet.optimize_for_inference(FNetModel(FNetConfig(**tiny_config_kwargs())).eval())
    assert type(model) is UnpaddedFNetModel
    model.save_pretrained(tmp_path)
    import json
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["FNetModel"]
