"""One entry point for every tokenizer kind: ``AutoTokenizer.from_pretrained(folder_or_hub_id)``.

The kind follows the files present (first match wins):

    spiece.model     -> FNetTokenizer       (SentencePiece; FNet/ALBERT checkpoints)
    tokenizer.json   -> FNetTokenizer       when its model is Unigram (what transformers 5 saves for FNet),
                        WordPieceTokenizer  otherwise (BERT family, the ``tokenizers`` pipeline as saved)
    vocab.txt        -> WordPieceTokenizer  (BERT family, the pipeline transformers builds from it)

A Hub id is fetched (configs and tokenizer files only) through :func:`fnet.hub.resolve`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fnet.tokenization.base import TokenizerBase, TokenizerFileError

__all__ = ["AutoTokenizer", "TOKENIZER_FILES", "tokenizer_kind"]

# file name -> tokenizer class name, in the order they are looked for
TOKENIZER_FILES = {"spiece.model": "FNetTokenizer", "tokenizer.json": "WordPieceTokenizer",
                   "vocab.txt": "WordPieceTokenizer"}


def _classes() -> dict[str, type[TokenizerBase]]:
    from fnet.tokenization.sentencepiece_tokenizer import FNetTokenizer
    from fnet.tokenization.wordpiece import WordPieceTokenizer

    return {"FNetTokenizer": FNetTokenizer, "WordPieceTokenizer": WordPieceTokenizer}


def tokenizer_kind(path: str | os.PathLike, flag: str = "--tokenizer") -> type[TokenizerBase]:
    """The tokenizer class for a local folder (or a tokenizer file), by the files it holds.

    Raises :class:`TokenizerFileError` (one line naming ``flag``, the folder and the files looked for).
    """
    path = Path(path)
    if path.is_file():
        by_suffix = {Path(name).suffix: name for name in TOKENIZER_FILES}  # .model, .json, .txt
        if path.suffix in by_suffix:
            return _classes()[_kind_of(path, by_suffix[path.suffix])]
        raise TokenizerFileError(f"{flag} {path}: not a tokenizer file; expected one of {list(TOKENIZER_FILES)}")
    for name in TOKENIZER_FILES:
        if (path / name).is_file():
            return _classes()[_kind_of(path / name, name)]
    raise TokenizerFileError(f"{flag} {path}: no tokenizer files in the folder (looked for "
                             f"{', '.join(TOKENIZER_FILES)})")


def _kind_of(file: Path, name: str) -> str:
    """The class name for a tokenizer file: by its name, and for a tokenizer.json by its model's type."""
    if name == "tokenizer.json":
        import json

        try:
            model_type = (json.loads(file.read_text(encoding="utf-8")).get("model") or {}).get("type")
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            model_type = None  # the class that loads it says what is wrong with the file
        if model_type == "Unigram":
            return "FNetTokenizer"
    return TOKENIZER_FILES[name]


class AutoTokenizer:
    """Loads the right tokenizer kind for a folder or Hub id (see the module docstring)."""

    def __init__(self) -> None:
        raise TypeError("AutoTokenizer is not instantiated; use AutoTokenizer.from_pretrained(folder_or_hub_id)")

    @staticmethod
    def from_pretrained(name_or_path: str | os.PathLike, *, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, local_files_only: bool | None = None,
                        token: str | bool | None = None, flag: str = "--tokenizer", **kwargs: Any) -> TokenizerBase:
        """The tokenizer in ``name_or_path``: a local folder, a tokenizer file, or a Hugging Face Hub id.

        ``revision``, ``cache_dir``, ``local_files_only``, ``token`` are for Hub ids (see
        :func:`fnet.hub.resolve`); ``flag`` is the command-line flag named in errors; ``kwargs`` override the
        saved tokenizer options (``model_max_length=...``, ``do_lower_case=...``, ``eos_token=...``).
        ``use_fast`` (transformers' choice between a Python and a ``tokenizers`` tokenizer) is accepted and has
        nothing to choose: every fnet tokenizer gives the ids of transformers' fast one.
        """
        from fnet.hub import resolve

        kwargs.pop("use_fast", None)

        path = Path(name_or_path)
        if not path.is_file():
            path = resolve(name_or_path, what="tokenizer", flag=flag, revision=revision, cache_dir=cache_dir,
                           local_files_only=local_files_only, token=token, weights=False)
        return tokenizer_kind(path, flag).from_pretrained(path, **kwargs)
