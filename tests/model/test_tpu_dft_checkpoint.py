"""transformers FNet checkpoints saved with use_tpu_fourier_optimizations=True (dft_mat_seq/dft_mat_hidden
buffers in every layer) load: the buffers are checked against the DFT and dropped; outputs match."""

from __future__ import annotations

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

import fnet
from conftest import tiny_config_kwargs


def _tpu_checkpoint(path, seq_length: int, **overrides):
    torch.manual_seed(seq_length)
    config = transformers.FNetConfig(**tiny_config_kwargs(use_tpu_fourier_optimizations=True,
                                                          tpu_short_seq_length=seq_length, **overrides))
    reference = transformers.FNetForMaskedLM(config).eval()
    reference.save_pretrained(path)
    return reference


@pytest.mark.parametrize("seq_length", [7, 13])  # transformers' DFT path takes exactly tpu_short_seq_length tokens
def test_tpu_dft_checkpoint_matches_transformers(tmp_path, seq_length):
    reference = _tpu_checkpoint(tmp_path, seq_length)
    saved = load_file(str(tmp_path / "model.safetensors"))
    assert {k for k in saved if "dft_mat" in k} >= {"fnet.encoder.layer.0.fourier.self.dft_mat_seq",
                                                     "fnet.encoder.layer.1.fourier.self.dft_mat_hidden"}
    ours, info = fnet.FNetForMaskedLM.from_pretrained(tmp_path, output_loading_info=True)
    assert ours.config.uses_dft and ours.fnet.encoder.layer[0].fourier.self.method == "dft"
    assert not info["missing_keys"] and not any("dft_mat" in k for k in info["unexpected_keys"])
    torch.manual_seed(1)
    ids = torch.randint(0, 61, (3, seq_length))
    types = torch.randint(0, 2, (3, seq_length))
    with torch.no_grad():
        want = reference(input_ids=ids, token_type_ids=types).logits
        got = ours(input_ids=ids, token_type_ids=types).logits
    err = (got - want).abs().max().item()
    assert err < 1e-4, f"logits differ from transformers by {err:.2e} at length {seq_length}"
    backbone = fnet.FNetModel.from_pretrained(tmp_path)  # the same buffers under the task model's prefix
    with torch.no_grad():
        hidden = backbone(input_ids=ids, token_type_ids=types).last_hidden_state
        want_hidden = reference.fnet(input_ids=ids, token_type_ids=types).last_hidden_state
    assert (hidden - want_hidden).abs().max().item() < 1e-4


def test_changed_or_misshaped_dft_buffer_is_refused_naming_the_key(tmp_path):
    _tpu_checkpoint(tmp_path, 7)
    state = load_file(str(tmp_path / "model.safetensors"))
    key = "fnet.encoder.layer.1.fourier.self.dft_mat_seq"
    changed = dict(state)
    changed[key] = state[key].clone()
    changed[key][2, 3] += 0.5
    save_file(changed, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=rf"{key} is not the 7-point DFT matrix"):
        fnet.FNetForMaskedLM.from_pretrained(tmp_path)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"dft_mat_seq has shape \(7, 7\).*tpu_short_seq_length=9"):
        fnet.FNetForMaskedLM.from_pretrained(tmp_path, tpu_short_seq_length=9)
    assert fnet.FNetForMaskedLM.from_pretrained(tmp_path).config.tpu_short_seq_length == 7
