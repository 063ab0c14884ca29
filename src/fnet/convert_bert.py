"""Run transformers BERT checkpoints through fnet's encoder (the ``attention`` token mixer).

A BERT layer is an FNet layer whose mixer is multi-head softmax attention with an output
projection: fnet's attention sublayer uses BERT's key names (``attention.self.{query,key,value}``,
``attention.output.{dense,LayerNorm}``), so the weights map 1:1 once the ``bert.`` prefix becomes
``fnet.``. BERT's embeddings have no projection (``embedding_projection=False``).

``FNetConfig.from_pretrained`` (via :func:`fnet.config.config_from_bert`) and
``FNetModel.from_pretrained`` (via :func:`state_dict_from_bert`) use these when a directory's
config.json says ``"model_type": "bert"``.
"""

from __future__ import annotations

import torch

from fnet.config import config_from_bert  # noqa: F401 (the config half of the conversion lives with FNetConfig)


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
