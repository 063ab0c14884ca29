"""Training a SentencePiece model on text files, with FNet's fixed special ids.

Ids: ``<unk>`` 0, ``<s>`` 1, ``</s>`` 2, ``<pad>`` 3, ``[CLS]`` 4, ``[SEP]`` 5, ``[MASK]`` 6 (as in
google/fnet-base), then the user-defined symbols, then the learned pieces.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sentencepiece as spm

from fnet.io import utf8_lines
from fnet.tokenization.base import TokenizerFileError
from fnet.tokenization.encoding import check_length
from fnet.tokenization.normalization import normalize

__all__ = ["TRAIN_SPECIAL_IDS", "train_sentencepiece"]

# ids of the special pieces in trained models (as in google/fnet-base)
TRAIN_SPECIAL_IDS = {"<unk>": 0, "<s>": 1, "</s>": 2, "<pad>": 3, "[CLS]": 4, "[SEP]": 5, "[MASK]": 6}


def train_sentencepiece(
    files: str | os.PathLike | Iterable[str | os.PathLike],
    vocab_size: int,
    model_type: str,
    character_coverage: float,
    input_sentence_size: int,
    shuffle_input_sentence: bool,
    do_lower_case: bool,
    remove_space: bool,
    keep_accents: bool,
    max_sentence_length: int,
    seed: int,
    num_threads: int | None,
    user_defined_symbols: Sequence[str],
    split_by_number: bool,
    **sentencepiece_options: Any,
) -> bytes:
    """The serialized SentencePiece model trained on ``files`` (see ``FNetTokenizer.train``)."""
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    try:
        paths = [Path(f) for f in files]
    except TypeError:
        raise TypeError("files must be a path or a list of paths to text files") from None
    if not paths:
        raise ValueError("train() needs at least one text file")
    for p in paths:
        if not p.is_file():
            raise TokenizerFileError(f"training file not found: {str(p)!r}")
    if model_type not in ("unigram", "bpe", "char", "word"):
        raise ValueError(f"model_type must be 'unigram', 'bpe', 'char' or 'word', got {model_type!r}")
    check_length("vocab_size", vocab_size, 8)
    check_length("input_sentence_size", input_sentence_size, 0)
    if not isinstance(character_coverage, (int, float)) or not 0.0 < character_coverage <= 1.0:
        raise ValueError(f"character_coverage must be in (0, 1], got {character_coverage!r}")

    counter = {"lines": 0}

    def sentences() -> Iterator[str]:
        for p in paths:
            for _, line in utf8_lines(p):  # invalid UTF-8 raises, naming file, line and byte
                line = normalize(line.rstrip("\r\n"), remove_space, keep_accents, do_lower_case)
                if not line.strip():
                    continue
                counter["lines"] += 1
                if len(line.encode("utf-8")) <= max_sentence_length:
                    yield line
                else:  # SentencePiece would skip it: cut it into pieces at spaces
                    yield from _split_long_line(line, max_sentence_length)

    for p in paths:  # the whole input is valid UTF-8 before training starts (as `fnet pretrain` requires)
        for _ in utf8_lines(p):
            pass
    # find empty input before SentencePiece does (its message is cryptic)
    if next(sentences(), None) is None:
        raise ValueError(f"the training files contain no text: {[str(p) for p in paths]}")
    counter["lines"] = 0
    specials = ["[CLS]", "[SEP]", "[MASK]"]
    user = [s for s in user_defined_symbols if s not in specials]
    model = io.BytesIO()
    if num_threads is None:
        num_threads = min(16, os.cpu_count() or 1)
    options = dict(
        sentence_iterator=sentences(),
        model_writer=model,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=float(character_coverage),
        input_sentence_size=input_sentence_size,
        shuffle_input_sentence=shuffle_input_sentence,
        max_sentence_length=max_sentence_length,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=3,
        unk_piece="<unk>",
        bos_piece="<s>",
        eos_piece="</s>",
        pad_piece="<pad>",
        control_symbols=specials,
        user_defined_symbols=user,
        split_by_number=split_by_number,
        num_threads=num_threads,
        minloglevel=2,
    )
    options.update(sentencepiece_options)
    if user:
        options["user_defined_symbols"] = user
    else:
        options.pop("user_defined_symbols")
    spm.set_random_generator_seed(seed)
    try:
        spm.SentencePieceTrainer.train(**options)
    except RuntimeError as err:
        message = str(err)
        if "smaller than required_chars" in message:
            raise ValueError(
                f"--vocab-size {vocab_size} is too small for the characters of this text at "
                f"--character-coverage {character_coverage}: {message.strip()}"
            ) from None
        if "Vocabulary size" in message or "vocab_size" in message:
            raise ValueError(
                f"--vocab-size {vocab_size} is too big for this text ({counter['lines']} lines): {message.strip()}; "
                "use a smaller --vocab-size or more text"
            ) from None
        raise ValueError(f"SentencePiece training failed: {message.strip()}") from None
    return model.getvalue()


def _split_long_line(line: str, max_bytes: int) -> Iterator[str]:
    """Cut ``line`` at spaces into parts of at most ``max_bytes`` UTF-8 bytes (hard cuts if needed)."""
    limit = max(1, max_bytes // 4)  # characters: at most 4 bytes each
    while line:
        if len(line) <= limit:
            yield line
            return
        cut = line.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
        part, line = line[:cut].strip(), line[cut:].lstrip()
        if part:
            yield part
