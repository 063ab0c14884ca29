"""LayerScale on the mixing sublayer (FNetConfig.mixing_layer_scale): norm(x + g * mix(x)) with a learned
(d,) gain g. None is the reference block; a gain of 1 must equal it, a gain of 0 must equal no mixing."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config_kwargs
from fnet import FNetConfig, FNetModel


def _ids(b=3, n=11, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 61, (b, n), generator=g)
    mask = (torch.arange(n) < torch.tensor([n, 5, 8])[:, None]).long()
    return ids, mask


def _twin(reference: FNetModel, **changes) -> FNetModel:
    """A model with ``changes`` to the config and every weight of ``reference`` it shares."""
    model = FNetModel(FNetConfig.from_dict({**reference.config.to_dict(), **changes})).eval()
    old, new = reference.encoder.layer[0].mixing_name, model.encoder.layer[0].mixing_name
    state = {k.replace(f".{old}.", f".{new}."): v for k, v in reference.state_dict().items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith("layer_scale") for k in missing)
    return model


@pytest.mark.parametrize("config", [{}, {"norm_position": "pre"}, {"token_mixer": "attention", "num_attention_heads": 4}],
                         ids=["reference", "pre-norm", "attention"])
def test_gain_one_is_the_reference_block_and_gain_zero_is_no_mixing(config):
    torch.manual_seed(0)
    reference = FNetModel(FNetConfig(**tiny_config_kwargs(**config))).eval()
    ids, mask = _ids()
    with torch.no_grad():
        expected = reference(ids, attention_mask=mask).last_hidden_state
        scaled = _twin(reference, mixing_layer_scale=1.0)(ids, attention_mask=mask).last_hidden_state
        torch.testing.assert_close(scaled, expected, atol=1e-6, rtol=1e-6)
        if config:
            return  # identity mixing is norm(x + x) only in the post-norm parameter-free block
        unmixed = _twin(reference, mixing_layer_scale=0.0)(ids, attention_mask=mask).last_hidden_state
        identity = _twin(reference, token_mixer="identity")(ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(unmixed, identity, atol=1e-5, rtol=1e-5)  # norm(x) vs norm(2x): eps only


def test_gain_is_learned_saved_and_loaded(tmp_path):
    torch.manual_seed(0)
    model = FNetModel(FNetConfig(**tiny_config_kwargs(mixing_layer_scale=0.01)))
    gains = [layer.fourier.layer_scale for layer in model.encoder.layer]
    assert all(torch.equal(g, torch.full_like(g, 0.01)) for g in gains)
    ids, mask = _ids()
    model(ids, attention_mask=mask).last_hidden_state.pow(2).mean().backward()
    assert all(g.grad is not None and float(g.grad.abs().sum()) > 0 for g in gains)
    with torch.no_grad():
        gains[0].mul_(3.0)
    model.eval().save_pretrained(tmp_path)
    loaded = FNetModel.from_pretrained(tmp_path).eval()
    assert loaded.config.mixing_layer_scale == 0.01
    torch.testing.assert_close(loaded.encoder.layer[0].fourier.layer_scale, gains[0].detach())
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids, attention_mask=mask).last_hidden_state,
                                   model(ids, attention_mask=mask).last_hidden_state)


def test_bad_gain_is_refused():
    with pytest.raises(TypeError, match="mixing_layer_scale"):
        FNetConfig(**tiny_config_kwargs(mixing_layer_scale="small"))
