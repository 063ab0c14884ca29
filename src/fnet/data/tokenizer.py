"""What fnet's data, tasks, inference and training need from a tokenizer: the one ``Tokenizer`` protocol
at every tokenizer seam (``FNetTokenizer``, ``WordPieceTokenizer`` and transformers' fast tokenizers
provide it), and ``SavedTokenizer``, the kinds a run saves beside its model and records by fingerprint."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = ["Tokenizer", "SavedTokenizer"]


class Tokenizer(Protocol):
    """The transformers tokenizer surface fnet reads (featurizers, pretraining data, ``encode``)."""

    cls_token_id: int
    sep_token_id: int
    pad_token_id: int
    mask_token_id: int | None
    all_special_ids: list[int]

    def __len__(self) -> int: ...

    def __call__(self, text: Any, text_pair: Any = None, **options: Any) -> Mapping[str, Any]: ...

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]: ...


class SavedTokenizer(Tokenizer, Protocol):
    """A tokenizer fnet writes beside a model and records by fingerprint (``fnet_folder.json``)."""

    def fingerprint(self) -> str: ...

    def save_pretrained(self, save_directory: str | os.PathLike) -> Any: ...
