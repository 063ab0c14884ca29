"""Run transformers BERT checkpoints through fnet's encoder (the ``attention`` token mixer).

A BERT layer is an FNet layer whose mixer is multi-head softmax attention with an output
projection: fnet's attention sublayer uses BERT's key names (``attention.self.{query,key,value}``,
``attention.output.{dense,LayerNorm}``), so the weights map 1:1 once the ``bert.`` prefix becomes
``fnet.``. BERT's embeddings have no projection (``embedding_projection=False``).

``FNetConfig.from_pretrained`` / ``FNetModel.from_pretrained`` call these when a directory's
config.json says ``"model_type": "bert"``.
"""

from __future__ import annotations

from typing import Any

import torch

from fnet.config import FNetConfig

# BERT config.json keys that map to FNetConfig fields of the same name
_SAME_NAME = (
    "vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size", "hidden_act", "hidden_dropout_prob",
    "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size", "initializer_range",
    "layer_norm_eps", "num_attention_heads", "num_labels", "id2label", "label2id", "problem_type",
)


def config_from_bert(bert: dict[str, Any]) -> FNetConfig:
    """FNetConfig of the attention encoder that computes what ``transformers.BertModel`` computes."""
    embedding_type = bert.get("position_embedding_type", "absolute")
    if embedding_type not in (None, "absolute"):
        raise ValueError(f"BERT position_embedding_type={embedding_type!r} is not supported; only 'absolute' maps "
                         "to fnet (use rotary=True for relative positions in new models)")
    if bert.get("is_decoder") or bert.get("add_cross_attention"):
        raise ValueError("BERT decoders (is_decoder / add_cross_attention) are not encoders; they do not map to fnet")
    fields = {k: bert[k] for k in _SAME_NAME if k in bert}
    fields.setdefault("hidden_act", "gelu")  # BERT's default: the exact erf GELU
    fields.setdefault("attention_probs_dropout_prob", 0.1)
    fields.setdefault("hidden_dropout_prob", 0.1)
    fields.setdefault("type_vocab_size", 2)
    fields.setdefault("layer_norm_eps", 1e-12)
    pad = bert.get("pad_token_id", 0)
    return FNetConfig(
        **fields,
        token_mixer="attention",
        embedding_projection=False,
        tie_word_embeddings=bert.get("tie_word_embeddings", True),
        pad_token_id=pad,
        bos_token_id=bert.get("bos_token_id"),
        eos_token_id=bert.get("eos_token_id"),
    )


def state_dict_from_bert(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """BERT state dict -> fnet keys: ``bert.`` -> ``fnet.``, old ``gamma``/``beta`` -> weight/bias.

    A bare ``BertModel`` checkpoint (no prefix) keeps its keys; heads (``cls.*``, ``classifier.*``,
    ``qa_outputs.*``) already use fnet's names; the ``position_ids`` buffer is dropped.
    """
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key.endswith(("embeddings.position_ids", "embeddings.token_type_ids")):
            continue
        if key.startswith("bert."):
            key = "fnet." + key[len("bert."):]
        if key.endswith(".gamma"):
            key = key[: -len("gamma")] + "weight"
        elif key.endswith(".beta"):
            key = key[: -len("beta")] + "bias"
        out[key] = tensor
    return out
