"""Feature tables: what every task's featurizer returns and the model reads.

Featurizers (one per task family, in :mod:`fnet.tasks`) only use the transformers-compatible
tokenizer surface: ``tokenizer(text, text_pair, padding=, truncation=, max_length=, stride=,
return_overflowing_tokens=, return_offsets_mapping=, return_tensors="pt")`` returning a mapping with
``input_ids``, ``token_type_ids``, ``attention_mask`` (plus ``offset_mapping`` /
``overflow_to_sample_mapping`` when asked) and ``sequence_ids(i)``; and ``cls_token_id``. So
:class:`fnet.tokenization.FNetTokenizer` and any ``transformers`` fast tokenizer work alike.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Features", "IGNORE_INDEX", "MODEL_KEYS", "LABEL_KEYS", "model_inputs"]

IGNORE_INDEX = -100  # label of tokens the loss skips (special tokens, padding, later sub-tokens)
MODEL_KEYS = ("input_ids", "token_type_ids", "attention_mask")  # what model(**inputs) takes
LABEL_KEYS = ("labels", "start_positions", "end_positions")  # targets, when the data has them


class Features(dict):
    """``dict`` of tensors for the model (pass it as ``model(**features)``), plus ``meta``: the
    plain-Python bookkeeping decoding needs (word ids, example ids, offsets), not passed to the model."""

    def __init__(self, *args: Any, meta: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.meta: dict[str, Any] = meta if meta is not None else {}

    @property
    def num_rows(self) -> int:
        return int(self["input_ids"].shape[0])


def model_inputs(enc: Any, pad_token_id: int | None = None) -> dict[str, Any]:
    """The model's inputs from an encoding; ``token_type_ids`` default to zeros and a missing
    ``attention_mask`` (tokenizers whose ``model_input_names`` leave it out) marks non-pad tokens."""
    import torch

    out = {}
    for key in MODEL_KEYS:
        if key in enc:
            value = enc[key]
            out[key] = value if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=torch.long)
    if "token_type_ids" not in out:
        out["token_type_ids"] = torch.zeros_like(out["input_ids"])
    if "attention_mask" not in out:
        if pad_token_id is None:
            out["attention_mask"] = torch.ones_like(out["input_ids"])
        else:
            out["attention_mask"] = (out["input_ids"] != pad_token_id).long()
    return out
