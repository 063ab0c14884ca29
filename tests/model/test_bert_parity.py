"""Real BERT checkpoints through fnet's encoder (token_mixer="attention") against transformers' BertModel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers

from fnet import FNetConfig, FNetForMaskedLM, FNetModel
from fnet.convert_bert import config_from_bert


def _bert_config(**overrides) -> transformers.BertConfig:
    base = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                max_position_embeddings=40, type_vocab_size=2, hidden_act="gelu")
    base.update(overrides)
    return transformers.BertConfig(**base)


def _max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    torch.manual_seed(0)
    model = transformers.BertModel(_bert_config(attn_implementation="eager")).eval()
    path = tmp_path_factory.mktemp("bert")
    model.save_pretrained(path)
    return path, model


def test_config_from_bert_builds_the_attention_configuration(bert_dir):
    path, _ = bert_dir
    config = FNetConfig.from_pretrained(path)
    assert (config.token_mixer, config.embedding_projection, config.hidden_act) == ("attention", False, "gelu")
    assert (config.hidden_size, config.num_attention_heads, config.type_vocab_size, config.pad_token_id) == (32, 4, 2, 0)


@pytest.mark.parametrize("with_mask", [False, True])
def test_random_bert_outputs_match_transformers(bert_dir, with_mask):
    path, reference = bert_dir
    ours = FNetModel.from_pretrained(path).eval()
    torch.manual_seed(1)
    ids = torch.randint(1, 97, (3, 17))
    types = torch.randint(0, 2, (3, 17))
    mask = torch.ones(3, 17, dtype=torch.long)
    if with_mask:
        mask[1, 11:] = 0
        mask[2, 5:] = 0
    kwargs = dict(input_ids=ids, token_type_ids=types, attention_mask=mask if with_mask else None)
    with torch.no_grad():
        expected, got = reference(**kwargs), ours(**kwargs)
    rows = mask.bool()  # pads' outputs are never used; compare the real tokens
    err = _max_err(got.last_hidden_state[rows], expected.last_hidden_state[rows])
    assert err <= 1e-5, f"last_hidden_state differs by {err:.2e}"
    err = _max_err(got.pooler_output, expected.pooler_output)
    assert err <= 1e-5, f"pooler_output differs by {err:.2e}"


def test_bert_masked_lm_checkpoint_keeps_its_head(tmp_path):
    torch.manual_seed(0)
    reference = transformers.BertForMaskedLM(_bert_config(attn_implementation="eager")).eval()
    reference.save_pretrained(tmp_path)
    ours = FNetForMaskedLM.from_pretrained(tmp_path).eval()
    ids = torch.randint(1, 97, (2, 9))
    with torch.no_grad():
        err = _max_err(ours(ids).logits, reference(ids).logits)
    assert err <= 1e-5, f"MLM logits differ by {err:.2e}"


def test_unsupported_bert_variants_fail_clearly():
    with pytest.raises(ValueError, match="position_embedding_type='relative_key' is not supported"):
        config_from_bert({"model_type": "bert", "position_embedding_type": "relative_key"})


def test_converted_bert_saves_as_fnet_and_reloads(bert_dir, tmp_path):
    path, _ = bert_dir
    model = FNetModel.from_pretrained(path).eval()
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "fnet"
    again = FNetModel.from_pretrained(tmp_path).eval()
    ids = torch.randint(1, 97, (1, 8))
    torch.testing.assert_close(again(ids).last_hidden_state, model(ids).last_hidden_state, rtol=0, atol=0)


# ----------------------------------------------------------------------------- real weights: all-MiniLM-L6-v2



def test_minilm_real_weights_match_transformers(minilm_dir):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    texts = [
        "FNet replaces self-attention with an unparameterised Fourier transform.",
        "A short one.",
        "The quick brown fox jumps over the lazy dog, and then it naps in the warm afternoon sun.",
    ]
    encoded = tokenizer.encode_batch(texts)
    ids = torch.tensor([e.ids for e in encoded])
    mask = torch.tensor([e.attention_mask for e in encoded])
    types = torch.tensor([e.type_ids for e in encoded])
    reference = transformers.BertModel.from_pretrained(minilm_dir, attn_implementation="eager").eval()
    ours = FNetModel.from_pretrained(minilm_dir).eval()
    assert ours.config.num_hidden_layers == 6 and ours.config.hidden_size == 384
    with torch.no_grad():
        expected = reference(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        got = ours(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    rows = mask.bool()
    err = _max_err(got[rows], expected[rows])
    print(f"all-MiniLM-L6-v2 max abs difference over {int(rows.sum())} tokens: {err:.2e}")
    assert err <= 1e-4, f"MiniLM last_hidden_state differs from transformers by {err:.2e}"
