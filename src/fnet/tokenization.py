"""SentencePiece tokenizer for FNet (issue 3).

``FNetTokenizer`` wraps a real SentencePiece model (``spiece.model``) and adds the FNet/ALBERT
conventions on top of it:

* **Preprocessing** (same as the reference ALBERT/FNet tokenizer), applied to the text *before* it
  reaches SentencePiece:

  1. ``remove_space=True``: runs of whitespace (``str.isspace``) collapse to one space and the text is
     stripped;
  2. a pair of backticks and a pair of apostrophes (LaTeX-style quotes) each become ``"``;
  3. ``keep_accents=False``: NFKD decomposition, then combining marks are dropped;
  4. ``do_lower_case=True``: ``str.lower()``.

  With the defaults (``remove_space=True``, ``keep_accents=True``, ``do_lower_case=False``) the
  SentencePiece input is ``" ".join(text.split())`` with the quotes rewritten.  Only those steps can make
  the pieces differ from ``SentencePieceProcessor.encode(text)`` on the raw text; everything else
  (NFKC, unknown characters, ...) is done by SentencePiece itself.

* **Special tokens written in the text** (``[CLS]``, ``[SEP]``, ``[MASK]``, ``<pad>``, ``<unk>``) are cut
  out first and become single tokens; the text between them is encoded piece by piece (each part gets
  SentencePiece's dummy ``▁`` prefix, as in the reference).  ``[MASK]`` also removes the whitespace to
  its left.  This is the second place where results differ from raw SentencePiece.

* **The ALBERT digit-comma rule**: a piece that ends in a digit followed by ``,`` (e.g. ``▁1,`` in a
  vocabulary that has it) is re-split: ``piece[:-1]`` without ``▁`` is encoded again, a ``▁`` that the
  original piece did not have is dropped from the first new piece, and ``,`` is appended.  This is the
  third (and last) place where results differ from raw SentencePiece.

* **Special token ids** come from the SentencePiece model when it has the token as a piece.  Tokens the
  model lacks are appended after the model's pieces, in the fixed order
  ``unk, pad, cls, sep, mask`` (the order of their ids in google/fnet-base: 0, 3, 4, 5, 6), skipping the
  ones the model has; ``vocab_size`` grows accordingly.  A model made by :meth:`FNetTokenizer.train`
  has ``<unk>`` 0, ``<s>`` 1, ``</s>`` 2, ``<pad>`` 3, ``[CLS]`` 4, ``[SEP]`` 5, ``[MASK]`` 6.

* **Offsets** (``return_offsets_mapping=True``) are character spans into the *original* string: the
  preprocessing keeps, for every character it produces, the span of original characters it came from,
  and SentencePiece's own offsets into its input are mapped through that alignment.  The whitespace that
  a ``▁`` stands for is not part of a piece's span; a piece that is only ``▁`` gets the span of the
  character that follows it (as transformers' fast tokenizers do).  Special tokens get ``(0, 0)``.

Differences from transformers' ``FNetTokenizer`` (5.x), on purpose:

* ids equal SentencePiece's exactly (transformers' Unigram port gives unknown characters id 1, ``<s>``,
  instead of the model's ``<unk>`` id);
* ``attention_mask`` is returned by default (``return_attention_mask=False`` leaves it out);
* ``length`` is the number of tokens before padding; overflowing windows always come back as rows;
* nothing is cut unless truncation is requested (a warning says when ``max_length`` or
  ``model_max_length`` is exceeded), and impossible truncations raise ``ValueError`` instead of logging.

Speed: texts are encoded with one batched SentencePiece call (``num_threads``); offsets come from
SentencePiece's ``offset_mapping`` output (its ``immutable_proto`` output is gone in sentencepiece 0.2.3).
``torch`` is imported only when ``return_tensors="pt"`` asks for tensors.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import unicodedata
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sentencepiece as spm

__all__ = ["FNetTokenizer", "BatchEncoding", "SPIECE_UNDERLINE", "TokenizerFileError"]

SPIECE_UNDERLINE = "\u2581"
VOCAB_FILE_NAME = "spiece.model"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"

# order in which missing special tokens are appended after the SentencePiece pieces
APPEND_ORDER = ("unk_token", "pad_token", "cls_token", "sep_token", "mask_token")
# order of ``all_special_tokens`` (the reference's order)
SPECIAL_ORDER = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
# ids of the special pieces in models trained by ``FNetTokenizer.train`` (as in google/fnet-base)
TRAIN_SPECIAL_IDS = {"<unk>": 0, "<s>": 1, "</s>": 2, "<pad>": 3, "[CLS]": 4, "[SEP]": 5, "[MASK]": 6}

PADDING_VALUES = (False, True, "longest", "max_length", "do_not_pad")
TRUNCATION_VALUES = (False, True, "longest_first", "only_first", "only_second", "do_not_truncate")
TENSOR_TYPES = (None, "pt", "np")

# a ``model_max_length`` at least this big means "no limit" (transformers writes 1e30 for that)
_NO_LIMIT = 10**12


class TokenizerFileError(FileNotFoundError, ValueError):
    """A tokenizer file is missing (also a ``ValueError``, so callers may catch either)."""


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def _check_text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(
            f"{what} must be a str, got {type(value).__name__} ({value!r:.60}); "
            "pass text (or a list of texts), not ids or None"
        )
    return value


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _token_content(value: Any) -> str | None:
    """A special token as written by us or transformers: a str, or a dict with ``content``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("content"), str):
        return value["content"]
    raise ValueError(f"cannot read special token {value!r}: expected a string or {{'content': ...}}")


def clean_up_tokenization(text: str) -> str:
    """Remove the spaces that decoding leaves before punctuation and English contractions."""
    return (
        text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
    )


# --------------------------------------------------------------------------------------------------
# BatchEncoding
# --------------------------------------------------------------------------------------------------


class BatchEncoding(dict):
    """The tokenizer's output: a dict (``input_ids``, ``token_type_ids``, ...) with attribute access.

    ``word_ids(i)`` and ``sequence_ids(i)`` give, for row ``i``, the word index (``None`` for special and
    pad tokens) and the sequence index (0 for the first text, 1 for the pair, ``None`` for special and
    pad tokens) of every token.
    """

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        word_ids: list[list[int | None]] | None = None,
        sequence_ids: list[list[int | None]] | None = None,
        tokens: list[list[str]] | None = None,
    ):
        super().__init__(data or {})
        self._word_ids = word_ids
        self._sequence_ids = sequence_ids
        self._tokens = tokens

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no key or attribute {name!r}") from None

    def __getstate__(self) -> dict:
        return {"data": dict(self), "extra": (self._word_ids, self._sequence_ids, self._tokens)}

    def __setstate__(self, state: dict) -> None:
        self.update(state["data"])
        self._word_ids, self._sequence_ids, self._tokens = state["extra"]

    def __reduce__(self):
        return (BatchEncoding, (), self.__getstate__())

    def _row(self, table: list | None, batch_index: int, what: str) -> list:
        if table is None:
            raise ValueError(f"{what}() is only available on the output of the tokenizer's __call__")
        if not -len(table) <= batch_index < len(table):
            raise IndexError(f"batch_index {batch_index} out of range for a batch of {len(table)}")
        return list(table[batch_index])

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """Word index of every token of row ``batch_index`` (``None`` for special/pad tokens)."""
        return self._row(self._word_ids, batch_index, "word_ids")

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """0/1 for tokens of the first/second text of row ``batch_index``, ``None`` for the others."""
        return self._row(self._sequence_ids, batch_index, "sequence_ids")

    def tokens(self, batch_index: int = 0) -> list[str]:
        """The token strings of row ``batch_index``."""
        return self._row(self._tokens, batch_index, "tokens")

    def to(self, device: Any) -> BatchEncoding:
        """Move every tensor value to ``device`` (other values are kept); returns ``self``."""
        for key, value in list(self.items()):
            if hasattr(value, "to") and callable(value.to):
                self[key] = value.to(device)
        return self

    def convert_to_tensors(self, tensor_type: str | None) -> BatchEncoding:
        if tensor_type not in TENSOR_TYPES:
            raise ValueError(f"return_tensors must be one of {TENSOR_TYPES}, got {tensor_type!r}")
        if tensor_type is None:
            return self
        for key, value in list(self.items()):
            if isinstance(value, list):
                if value and isinstance(value[0], list):
                    lengths = {len(row) for row in value}
                    if len(lengths) > 1:
                        raise ValueError(
                            f"cannot make a tensor of {key!r}: rows have different lengths {sorted(lengths)}; "
                            "pass padding=True (or padding='max_length') to pad them to one length"
                        )
                if tensor_type == "pt":
                    import torch

                    self[key] = torch.tensor(value, dtype=torch.long)
                else:
                    import numpy as np

                    self[key] = np.asarray(value, dtype=np.int64)
        return self


# --------------------------------------------------------------------------------------------------
# the tokenizer
# --------------------------------------------------------------------------------------------------


class _Seq:
    """One encoded text: ids, token strings (optional), offsets (optional), word ids (lazy).

    A slice keeps a reference to the unsliced sequence (``base``) and where it starts, so word ids of
    truncated windows keep the numbering of the whole text.
    """

    __slots__ = ("ids", "tokens", "offsets", "words", "special_pos", "base", "start")

    def __init__(self, ids, tokens=None, offsets=None, words=None, special_pos=None):
        self.ids = ids
        self.tokens = tokens
        self.offsets = offsets
        self.words = words  # list for split-into-words input, else computed on demand
        self.special_pos = special_pos  # positions of special tokens written in the text
        self.base = self
        self.start = 0

    def __len__(self) -> int:
        return len(self.ids)

    def slice(self, start: int, stop: int) -> _Seq:
        out = _Seq(
            self.ids[start:stop],
            None if self.tokens is None else self.tokens[start:stop],
            None if self.offsets is None else self.offsets[start:stop],
        )
        out.base = self.base
        out.start = self.start + start
        return out


class FNetTokenizer:
    """FNet's SentencePiece tokenizer (see the module docstring for the exact rules).

    Args:
        vocab_file: path of a SentencePiece model (``spiece.model``).
        do_lower_case: lower-case the text before SentencePiece.
        remove_space: collapse whitespace runs to one space and strip the text.
        keep_accents: when False, strip accents (NFKD, then drop combining marks).
        unk_token, sep_token, pad_token, cls_token, mask_token: the special tokens; ``pad_token`` and
            ``mask_token`` may be ``None``.
        model_max_length: longest sequence the model takes; longer encodings warn (once) unless truncated.
        clean_up_tokenization_spaces: default of ``decode``'s option of the same name.
        num_threads: threads SentencePiece may use for batches (``-1``: all cores).
    """

    model_input_names = ["input_ids", "token_type_ids"]
    vocab_files_names = {"vocab_file": VOCAB_FILE_NAME}
    padding_side = "right"

    def __init__(
        self,
        vocab_file: str | os.PathLike,
        do_lower_case: bool = False,
        remove_space: bool = True,
        keep_accents: bool = True,
        unk_token: str = "<unk>",
        sep_token: str = "[SEP]",
        pad_token: str | None = "<pad>",
        cls_token: str = "[CLS]",
        mask_token: str | None = "[MASK]",
        model_max_length: int = 512,
        clean_up_tokenization_spaces: bool = True,
        num_threads: int = -1,
        padding_side: str = "right",
    ):
        self.do_lower_case = _check_bool("do_lower_case", do_lower_case)
        self.remove_space = _check_bool("remove_space", remove_space)
        self.keep_accents = _check_bool("keep_accents", keep_accents)
        self.clean_up_tokenization_spaces = _check_bool("clean_up_tokenization_spaces", clean_up_tokenization_spaces)
        if not isinstance(model_max_length, int) or isinstance(model_max_length, bool) or model_max_length < 1:
            raise ValueError(f"model_max_length must be a positive int, got {model_max_length!r}")
        self.model_max_length = model_max_length
        if not isinstance(num_threads, int) or num_threads == 0 or num_threads < -1:
            raise ValueError(f"num_threads must be -1 (all cores) or a positive int, got {num_threads!r}")
        self.num_threads = num_threads
        if padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
        self.padding_side = padding_side
        for name, value, optional in (
            ("unk_token", unk_token, False),
            ("sep_token", sep_token, False),
            ("cls_token", cls_token, False),
            ("pad_token", pad_token, True),
            ("mask_token", mask_token, True),
        ):
            value = _token_content(value)
            if value is None and not optional:
                raise ValueError(f"{name} cannot be None")
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{name} must be a non-empty string, got {value!r}")
            setattr(self, name, value)
        self.vocab_file = str(vocab_file)
        self._load_model(vocab_file)
        self._warned_long = False
        self._warned_max_length = False

    # ---------------------------------------------------------------------------------------------
    # model loading and vocabulary

    def _load_model(self, vocab_file: str | os.PathLike | None, serialized: bytes | None = None) -> None:
        if serialized is None:
            path = Path(vocab_file)
            if not path.is_file():
                raise TokenizerFileError(
                    f"SentencePiece model not found: {str(path)!r}; pass the path of a 'spiece.model' file "
                    "(or train one with FNetTokenizer.train)"
                )
            serialized = path.read_bytes()
            where = repr(str(path))
        else:
            where = "the given model bytes"
        sp = spm.SentencePieceProcessor()
        try:
            sp.LoadFromSerializedProto(serialized)
        except Exception as err:  # sentencepiece raises OSError/RuntimeError on bad protos
            raise ValueError(
                f"corrupt or unreadable SentencePiece model {where}: {err}; re-create it with "
                "FNetTokenizer.train or copy an intact spiece.model"
            ) from None
        if sp.get_piece_size() == 0:
            raise ValueError(f"SentencePiece model {where} has no pieces")
        self._sp_bytes = serialized
        self.sp_model = sp
        self._build_vocab()

    def _build_vocab(self) -> None:
        sp = self.sp_model
        n = sp.get_piece_size()
        self._sp_size = n
        self._added: dict[str, int] = {}  # token -> id for the appended special tokens
        next_id = n
        for name in APPEND_ORDER:
            token = getattr(self, name)
            if token is None or token in self._added:
                continue
            if self._sp_piece_id(token) is None:
                self._added[token] = next_id
                next_id += 1
        self._added_rev = {i: t for t, i in self._added.items()}
        self._special_ids = {tok: self._token_to_id(tok) for tok in self.all_special_tokens}
        self.unk_token_id = self._token_to_id(self.unk_token)
        self.sep_token_id = self._token_to_id(self.sep_token)
        self.cls_token_id = self._token_to_id(self.cls_token)
        self.pad_token_id = None if self.pad_token is None else self._token_to_id(self.pad_token)
        self.mask_token_id = None if self.mask_token is None else self._token_to_id(self.mask_token)
        self.pad_token_type_id = 0
        self._sp_unk = sp.unk_id()
        # ids whose piece ends in "<digit>," (ALBERT rule); usually empty
        self._comma_ids = frozenset(
            i for i in range(n) if len(p := sp.id_to_piece(i)) > 1 and p[-1] == "," and p[-2].isdigit()
        )
        specials = sorted({t for t in self.all_special_tokens}, key=len, reverse=True)
        self._special_re = re.compile("|".join(re.escape(t) for t in specials))
        self._all_special_ids_set = frozenset(self._special_ids.values())

    def _sp_piece_id(self, token: str) -> int | None:
        i = self.sp_model.piece_to_id(token)
        if self.sp_model.id_to_piece(i) == token:
            return i
        return None

    def _token_to_id(self, token: str) -> int:
        i = self._added.get(token)
        if i is not None:
            return i
        return self.sp_model.piece_to_id(token)

    @property
    def vocab_size(self) -> int:
        """SentencePiece pieces plus the appended special tokens."""
        return self._sp_size + len(self._added)

    def __len__(self) -> int:
        return self.vocab_size

    def get_vocab(self) -> dict[str, int]:
        vocab = {self.sp_model.id_to_piece(i): i for i in range(self._sp_size)}
        vocab.update(self._added)
        return vocab

    @property
    def special_tokens_map(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in SPECIAL_ORDER if getattr(self, name) is not None}

    @property
    def all_special_tokens(self) -> list[str]:
        out: list[str] = []
        for name in SPECIAL_ORDER:
            token = getattr(self, name)
            if token is not None and token not in out:
                out.append(token)
        return out

    @property
    def all_special_ids(self) -> list[int]:
        return [self._special_ids[t] for t in self.all_special_tokens]

    def __repr__(self) -> str:
        return (
            f"FNetTokenizer(vocab_file={self.vocab_file!r}, vocab_size={self.vocab_size}, "
            f"do_lower_case={self.do_lower_case}, remove_space={self.remove_space}, "
            f"keep_accents={self.keep_accents}, model_max_length={self.model_max_length}, "
            f"special_tokens={self.special_tokens_map})"
        )

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for key in ("sp_model", "_special_re", "_comma_ids", "_added", "_added_rev", "_special_ids",
                    "_all_special_ids_set"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._load_model(None, serialized=self._sp_bytes)

    # ---------------------------------------------------------------------------------------------
    # preprocessing

    def preprocess_text(self, text: str) -> str:
        """The string SentencePiece sees for ``text`` (whitespace, quotes, accents, case)."""
        if self.remove_space:
            text = " ".join(text.split())
        text = text.replace("``", '"').replace("''", '"')
        if not self.keep_accents:
            text = unicodedata.normalize("NFKD", text)
            text = "".join(c for c in text if not unicodedata.combining(c))
        if self.do_lower_case:
            text = text.lower()
        return text

    def _preprocess_aligned(self, text: str, base: int = 0) -> tuple[str, list[int], list[int]]:
        """``preprocess_text`` that also returns, per output character, its original span."""
        chars: Any = []
        starts: Any = []
        ends: Any = []
        stripped = text.strip() if self.remove_space else text
        if not self.remove_space or " ".join(stripped.split()) == stripped:
            # only leading/trailing whitespace goes: the alignment is a shifted identity
            lead = text.index(stripped) if stripped else 0
            chars = stripped
            starts = range(lead, lead + len(stripped))
            ends = range(lead + 1, lead + len(stripped) + 1)
        else:
            prev_end = None
            for m in re.finditer(r"\S+", text):
                if prev_end is not None:
                    chars.append(" ")
                    starts.append(prev_end)
                    ends.append(m.start())
                for k in range(m.start(), m.end()):
                    chars.append(text[k])
                    starts.append(k)
                    ends.append(k + 1)
                prev_end = m.end()
        # `` and '' -> "
        joined = chars if isinstance(chars, str) else "".join(chars)
        if "``" in joined or "''" in joined:
            c2, s2, e2 = [], [], []
            k = 0
            while k < len(chars):
                if k + 1 < len(chars) and chars[k] == chars[k + 1] and chars[k] in "`'":
                    c2.append('"')
                    s2.append(starts[k])
                    e2.append(ends[k + 1])
                    k += 2
                else:
                    c2.append(chars[k])
                    s2.append(starts[k])
                    e2.append(ends[k])
                    k += 1
            chars, starts, ends = c2, s2, e2
        if not self.keep_accents:
            c2, s2, e2 = [], [], []
            for c, s, e in zip(chars, starts, ends):
                for d in unicodedata.normalize("NFKD", c):
                    if not unicodedata.combining(d):
                        c2.append(d)
                        s2.append(s)
                        e2.append(e)
            chars, starts, ends = c2, s2, e2
        out = "".join(chars)
        if self.do_lower_case:
            lowered = out.lower()
            if len(lowered) != len(out) and not isinstance(starts, range):
                s2, e2 = [], []
                for c, s, e in zip(chars, starts, ends):
                    n = len(c.lower())
                    s2.extend([s] * n)
                    e2.extend([e] * n)
                starts, ends = s2, e2
            out = lowered
        if base:
            if isinstance(starts, range):
                starts = range(starts.start + base, starts.stop + base)
                ends = range(ends.start + base, ends.stop + base)
            else:
                starts = [s + base for s in starts]
                ends = [e + base for e in ends]
        return out, starts, ends

    # ---------------------------------------------------------------------------------------------
    # core encoding

    def _split_specials(self, text: str, base: int = 0) -> list[tuple[str, Any, int, int]]:
        """Cut ``text`` into ("text", str, start, end) and ("special", token, start, end) parts."""
        parts: list[tuple[str, Any, int, int]] = []
        pos = 0
        for m in self._special_re.finditer(text):
            token = m.group(0)
            start = m.start()
            seg_end = start
            if token == self.mask_token:
                while seg_end > pos and text[seg_end - 1].isspace():
                    seg_end -= 1
            if seg_end > pos:
                parts.append(("text", text[pos:seg_end], base + pos, base + seg_end))
            parts.append(("special", token, base + start, base + m.end()))
            pos = m.end()
        if pos < len(text) or not parts:
            parts.append(("text", text[pos:], base + pos, base + len(text)))
        return parts

    def _resplit_comma(self, pieces: list[str], offsets: list[tuple[int, int]] | None, pre: str):
        """Apply the ALBERT digit-comma rule to one segment's pieces (and their offsets)."""
        new_pieces: list[str] = []
        new_offsets: list[tuple[int, int]] | None = None if offsets is None else []
        for k, piece in enumerate(pieces):
            if len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit():
                sub = piece[:-1].replace(SPIECE_UNDERLINE, "")
                cur = self.sp_model.encode(sub, out_type=str)
                if piece[0] != SPIECE_UNDERLINE and cur and cur[0][0] == SPIECE_UNDERLINE:
                    if len(cur[0]) == 1:
                        cur = cur[1:]
                    else:
                        cur[0] = cur[0][1:]
                new_pieces.extend(cur)
                new_pieces.append(",")
                if offsets is not None:
                    s, e = offsets[k]
                    surface = pre[s:e]
                    comma = (max(s, e - 1), e)
                    body_end = comma[0]
                    body = surface[: body_end - s].lstrip()
                    body_start = body_end - len(body)
                    lengths = [len(p.replace(SPIECE_UNDERLINE, "")) for p in cur]
                    if sum(lengths) == len(body) and body == sub:
                        pos = body_start
                        for n in lengths:
                            new_offsets.append((pos, pos + n))
                            pos += n
                    else:  # normalisation changed the text: give every new piece the whole body
                        new_offsets.extend([(body_start, body_end)] * len(cur))
                    new_offsets.append(comma)
            else:
                new_pieces.append(piece)
                if offsets is not None:
                    new_offsets.append(offsets[k])
        return new_pieces, new_offsets

    def _encode_segments(self, pres: list[str], want_tokens: bool, want_offsets: bool):
        """SentencePiece on many preprocessed strings at once -> list of (ids, tokens, offsets)."""
        sp = self.sp_model
        out = []
        if not pres:
            return out
        if want_offsets:
            results = sp.encode(pres, out_type="offset_mapping", num_threads=self.num_threads)
            for pre, res in zip(pres, results):
                ids, pieces, offsets = res["ids"], res["pieces"], res["offsets"]
                if self._needs_resplit(ids, pre):
                    pieces, offsets = self._resplit_comma(pieces, offsets, pre)
                    ids = [self._piece_id(p) for p in pieces]
                out.append((ids, pieces, offsets))
            return out
        if want_tokens:
            results = sp.encode(pres, out_type=str, num_threads=self.num_threads)
            for pre, pieces in zip(pres, results):
                if any(len(p) > 1 and p[-1] == "," and p[-2].isdigit() for p in pieces):
                    pieces, _ = self._resplit_comma(pieces, None, pre)
                out.append((None, pieces, None))
            return out
        results = sp.encode(pres, out_type=int, num_threads=self.num_threads)
        comma_ids = self._comma_ids
        unk = self._sp_unk
        for pre, ids in zip(pres, results):
            if (comma_ids and not comma_ids.isdisjoint(ids)) or (unk in ids and "," in pre):
                pieces = sp.encode(pre, out_type=str)
                if any(len(p) > 1 and p[-1] == "," and p[-2].isdigit() for p in pieces):
                    pieces, _ = self._resplit_comma(pieces, None, pre)
                    ids = [self._piece_id(p) for p in pieces]
            out.append((ids, None, None))
        return out

    def _needs_resplit(self, ids: list[int], pre: str) -> bool:
        return bool((self._comma_ids and not self._comma_ids.isdisjoint(ids)) or (self._sp_unk in ids and "," in pre))

    def _piece_id(self, piece: str) -> int:
        return self.sp_model.piece_to_id(piece)

    def _encode_many(
        self,
        texts: Sequence[Any],
        split_words: bool = False,
        want_tokens: bool = False,
        want_offsets: bool = False,
    ) -> list[_Seq]:
        """Encode many texts (str, or lists of words when ``split_words``) without special tokens."""
        # plan: every text becomes parts; text parts are preprocessed and batched through SentencePiece
        plans: list[list[tuple]] = []
        pres: list[str] = []
        aligns: list[tuple[list[int], list[int]] | None] = []
        special_re = self._special_re
        for text in texts:
            if split_words:
                words = text
                chunks = [(w, i) for i, w in enumerate(words)]
            else:
                chunks = [(text, None)]
            plan = []
            for chunk, word_index in chunks:
                if special_re.search(chunk) is None:
                    parts = [("text", chunk, 0, len(chunk))]
                else:
                    parts = self._split_specials(chunk)
                for kind, value, start, end in parts:
                    if kind == "special":
                        plan.append(("special", value, word_index))
                        continue
                    if want_offsets:
                        pre = self.preprocess_text(value)
                        if pre == value:  # nothing changed: the alignment is the identity
                            aligns.append((range(start, start + len(pre)), range(start + 1, start + len(pre) + 1)))
                        else:
                            pre, starts, ends = self._preprocess_aligned(value, start)
                            aligns.append((starts, ends))
                    else:
                        pre = self.preprocess_text(value)
                        aligns.append(None)
                    plan.append(("text", len(pres), word_index))
                    pres.append(pre)
            plans.append(plan)
        encoded = self._encode_segments(pres, want_tokens and not want_offsets, want_offsets)
        seqs: list[_Seq] = []
        for plan in plans:
            # fast path: one text part, nothing else asked for
            if len(plan) == 1 and plan[0][0] == "text" and not (want_tokens or want_offsets or split_words):
                seqs.append(_Seq(encoded[plan[0][1]][0]))
                continue
            ids: list[int] = []
            tokens: list[str] | None = [] if (want_tokens or want_offsets) else None
            offsets: list[tuple[int, int]] | None = [] if want_offsets else None
            words: list[int | None] | None = [] if split_words else None
            special_pos: list[int] | None = None
            for kind, value, word_index in plan:
                if kind == "special":
                    if special_pos is None:
                        special_pos = []
                    special_pos.append(len(ids))
                    ids.append(self._special_ids[value])
                    if tokens is not None:
                        tokens.append(value)
                    if offsets is not None:
                        offsets.append((0, 0))
                    if words is not None:
                        words.append(None)
                    continue
                seg_ids, seg_pieces, seg_offsets = encoded[value]
                if seg_ids is None:
                    seg_ids = [self._piece_id(p) for p in seg_pieces]
                ids.extend(seg_ids)
                if tokens is not None:
                    if seg_pieces is None:
                        seg_pieces = [self._id_to_token(i) for i in seg_ids]
                    tokens.extend(seg_pieces)
                if offsets is not None:
                    offsets.extend(self._map_offsets(seg_pieces, seg_offsets, pres[value], aligns[value]))
                if words is not None:
                    words.extend([word_index] * len(seg_ids))
            seqs.append(_Seq(ids, tokens, offsets, words, special_pos))
        return seqs

    @staticmethod
    def _map_offsets(pieces, sp_offsets, pre: str, align) -> list[tuple[int, int]]:
        """SentencePiece's spans into the preprocessed string -> spans into the original text."""
        starts, ends = align
        n = len(starts)
        if n == 0:
            return [(0, 0)] * len(pieces)
        out: list[tuple[int, int]] = []
        append = out.append
        map_one = FNetTokenizer._map_one
        if isinstance(starts, range) and n == len(pre):
            # identity alignment (shifted): the spans are SentencePiece's own, moved by the shift
            shift = starts.start
            if "  " not in pre and pre[:1] != " ":
                # single spaces only: a leading "▁" covers at most one space
                return [
                    (ps + shift + (pre[ps] == " " and piece[0] == SPIECE_UNDERLINE), pe + shift)
                    if pe - ps > 1 and piece != SPIECE_UNDERLINE and ps >= 0 and pe <= n
                    else (ps + shift, pe + shift)
                    if pe - ps == 1 and piece[0] != SPIECE_UNDERLINE
                    else map_one(piece, ps, pe, pre, starts, ends)
                    for piece, (ps, pe) in zip(pieces, sp_offsets)
                ]
            for piece, (ps, pe) in zip(pieces, sp_offsets):
                if pe > ps >= 0 and pe <= n and piece != SPIECE_UNDERLINE:
                    if piece[0] == SPIECE_UNDERLINE:
                        while ps < pe - 1 and pre[ps].isspace():
                            ps += 1
                    append((ps + shift, pe + shift))
                else:
                    append(map_one(piece, ps, pe, pre, starts, ends))
            return out
        for piece, (ps, pe) in zip(pieces, sp_offsets):
            append(map_one(piece, ps, pe, pre, starts, ends))
        return out

    @staticmethod
    def _map_one(piece: str, ps: int, pe: int, pre: str, starts, ends) -> tuple[int, int]:
        """One piece's span (see ``_map_offsets``); ``starts``/``ends`` are not empty."""
        n = len(starts)
        ps = min(max(ps, 0), n)
        if piece == SPIECE_UNDERLINE:
            # a lone "▁" gets the span of the character that follows it (as transformers does)
            q = ps
            while q < len(pre) and pre[q].isspace():
                q += 1
            if q < n:
                return (starts[q], ends[q])
            return (ends[n - 1], ends[n - 1])
        if pe > ps:
            pe = min(pe, n)
            # the whitespace a leading "▁" stands for is not part of the span
            if piece[0] == SPIECE_UNDERLINE and len(piece) > 1:
                while ps < pe - 1 and pre[ps].isspace():
                    ps += 1
            return (starts[ps], ends[pe - 1])
        point = starts[ps] if ps < n else ends[n - 1]
        return (point, point)

    def _seq_words(self, seq: _Seq) -> list[int | None]:
        """Word index of every token of ``seq`` (a piece starting with "▁" starts a new word)."""
        base = seq.base
        if base.words is None:
            table = self._word_start_table()
            specials = set(base.special_pos or ())
            words: list[int | None] = []
            counter = -1
            after_special = True
            for k, i in enumerate(base.ids):
                if k in specials:
                    words.append(None)
                    after_special = True
                    continue
                if after_special or counter < 0 or (i < len(table) and table[i]):
                    counter += 1
                after_special = False
                words.append(counter)
            base.words = words
        return base.words[seq.start: seq.start + len(seq.ids)]

    def _word_start_table(self) -> bytearray:
        table = getattr(self, "_word_start", None)
        if table is None:
            sp = self.sp_model
            table = bytearray(
                1 if sp.id_to_piece(i).startswith(SPIECE_UNDERLINE) and not sp.is_unknown(i) else 0
                for i in range(self._sp_size)
            )
            self._word_start = table
        return table

    # ---------------------------------------------------------------------------------------------
    # token <-> id

    def _id_to_token(self, index: int) -> str:
        if 0 <= index < self._sp_size:
            return self.sp_model.id_to_piece(index)
        token = self._added_rev.get(index)
        if token is None:
            raise ValueError(f"token id {index} is out of range: the vocabulary has {self.vocab_size} ids")
        return token

    def tokenize(self, text: str) -> list[str]:
        """Token strings of ``text`` (no ``[CLS]``/``[SEP]`` added; special tokens in the text are kept)."""
        _check_text(text, "text")
        return self._encode_many([text], want_tokens=True)[0].tokens

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        if isinstance(tokens, str):
            return self._token_to_id(tokens)
        if not isinstance(tokens, (list, tuple)):
            raise TypeError(f"tokens must be a str or a list of str, got {type(tokens).__name__}")
        return [self._token_to_id(_check_text(t, "every token")) for t in tokens]

    def _check_ids(self, ids: Any) -> list[int]:
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        if isinstance(ids, int) and not isinstance(ids, bool):
            return [ids]
        if not isinstance(ids, (list, tuple)):
            raise TypeError(f"ids must be an int, a list of ints or a tensor, got {type(ids).__name__}")
        for i in ids:
            if not isinstance(i, int) or isinstance(i, bool):
                raise TypeError(f"ids must be ints, got {type(i).__name__} ({i!r:.40})")
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} is out of range: the vocabulary has {self.vocab_size} ids")
        return list(ids)

    def convert_ids_to_tokens(self, ids: int | Sequence[int], skip_special_tokens: bool = False):
        single = isinstance(ids, int) and not isinstance(ids, bool)
        ids = self._check_ids(ids)
        if single:
            return self._id_to_token(ids[0])
        return [self._id_to_token(i) for i in ids if not (skip_special_tokens and i in self._all_special_ids_set)]

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        """Join tokens back into text (SentencePiece decoding; special tokens are kept as words)."""
        specials = set(self.all_special_tokens)
        out = ""
        run: list[str] = []
        prev_special = False
        for token in tokens:
            if token in specials:
                if not prev_special:
                    out += " "
                out += self.sp_model.decode(run) + token
                run = []
                prev_special = True
            else:
                run.append(token)
                prev_special = False
        out += self.sp_model.decode(run)
        return out.strip()

    def decode(
        self,
        token_ids: Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> str:
        """Text of ``token_ids`` (a list of ints or a 1-d tensor)."""
        ids = self._check_ids(token_ids)
        specials = self._all_special_ids_set
        out = ""
        run: list[int] = []
        prev_special = False
        for i in ids:
            if i in specials or i >= self._sp_size:
                if skip_special_tokens:
                    continue
                if not prev_special:
                    out += " "
                out += self.sp_model.decode(run) + self._id_to_token(i)
                run = []
                prev_special = True
            else:
                run.append(i)
                prev_special = False
        out += self.sp_model.decode(run)
        out = out.strip()
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        if clean_up_tokenization_spaces:
            out = clean_up_tokenization(out)
        return out

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: bool | None = None) -> list[str]:
        if hasattr(sequences, "tolist"):
            sequences = sequences.tolist()
        if not isinstance(sequences, (list, tuple)):
            raise TypeError(f"sequences must be a list of id lists or a 2-d tensor, got {type(sequences).__name__}")
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces) for s in sequences]

    # ---------------------------------------------------------------------------------------------
    # special-token layout

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        """``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]``."""
        out = [self.cls_token_id] + list(token_ids_0) + [self.sep_token_id]
        if token_ids_1 is not None:
            out += list(token_ids_1) + [self.sep_token_id]
        return out

    def get_special_tokens_mask(self, token_ids_0: list[int], token_ids_1: list[int] | None = None,
                                already_has_special_tokens: bool = False) -> list[int]:
        """1 for special tokens, 0 for sequence tokens."""
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError(
                    "already_has_special_tokens=True takes one list that already holds the special tokens; "
                    "do not pass token_ids_1"
                )
            return [1 if i in self._all_special_ids_set else 0 for i in token_ids_0]
        mask = [1] + [0] * len(token_ids_0) + [1]
        if token_ids_1 is not None:
            mask += [0] * len(token_ids_1) + [1]
        return mask

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int], token_ids_1: list[int] | None = None) -> list[int]:
        """0 for ``[CLS] A [SEP]``, 1 for ``B [SEP]``."""
        first = [0] * (len(token_ids_0) + 2)
        if token_ids_1 is None:
            return first
        return first + [1] * (len(token_ids_1) + 1)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return 3 if pair else 2

    # ---------------------------------------------------------------------------------------------
    # __call__

    @staticmethod
    def _padding_strategy(padding: Any) -> str:
        if padding is None or padding is False or padding == "do_not_pad":
            return "do_not_pad"
        if padding is True or padding == "longest":
            return "longest"
        if padding == "max_length":
            return "max_length"
        raise ValueError(f"padding must be one of {PADDING_VALUES}, got {padding!r}")

    @staticmethod
    def _truncation_strategy(truncation: Any) -> str:
        if truncation is None or truncation is False or truncation == "do_not_truncate":
            return "do_not_truncate"
        if truncation is True or truncation == "longest_first":
            return "longest_first"
        if truncation in ("only_first", "only_second"):
            return truncation
        raise ValueError(f"truncation must be one of {TRUNCATION_VALUES}, got {truncation!r}")

    @staticmethod
    def _check_length(name: str, value: Any, minimum: int) -> None:
        if value is None:
            return
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")

    def _normalize_inputs(self, text: Any, text_pair: Any, split_words: bool):
        """-> (batched, list of first texts, list of pair texts or None)."""
        if split_words:
            def is_single(x):
                return isinstance(x, (list, tuple)) and all(isinstance(w, str) for w in x)

            def check_single(x, what):
                if not isinstance(x, (list, tuple)):
                    raise TypeError(
                        f"{what} must be a list of words (str) with is_split_into_words=True, "
                        f"got {type(x).__name__}"
                    )
                for w in x:
                    _check_text(w, f"every word of {what}")
                return list(x)

            batched = isinstance(text, (list, tuple)) and len(text) > 0 and not is_single(text)
        else:
            def check_single(x, what):
                return _check_text(x, what)

            if isinstance(text, str):
                batched = False
            elif isinstance(text, (list, tuple)):
                batched = True
            else:
                _check_text(text, "text")
        if batched:
            firsts = [check_single(t, f"text[{k}]") for k, t in enumerate(text)]
            if text_pair is None:
                return True, firsts, None
            if not isinstance(text_pair, (list, tuple)) or (split_words and is_single(text_pair) and text_pair):
                raise TypeError("text is a batch, so text_pair must be a batch (list) of the same length")
            if len(text_pair) != len(firsts):
                raise ValueError(
                    f"text and text_pair must have the same length, got {len(firsts)} and {len(text_pair)}"
                )
            pairs = [check_single(t, f"text_pair[{k}]") for k, t in enumerate(text_pair)]
            return True, firsts, pairs
        first = check_single(text, "text")
        if text_pair is None:
            return False, [first], None
        return False, [first], [check_single(text_pair, "text_pair")]

    def __call__(
        self,
        text: str | Sequence[str] | Sequence[Sequence[str]],
        text_pair: str | Sequence[str] | Sequence[Sequence[str]] | None = None,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | None = None,
        return_token_type_ids: bool | None = None,
        return_attention_mask: bool | None = None,
        return_overflowing_tokens: bool = False,
        return_special_tokens_mask: bool = False,
        return_offsets_mapping: bool = False,
        return_length: bool = False,
        verbose: bool = True,
    ) -> BatchEncoding:
        """Encode a text, a pair, or a batch of either, like transformers' tokenizers.

        Returns a :class:`BatchEncoding` with ``input_ids``, ``token_type_ids`` and ``attention_mask``
        (each optional) plus, when asked, ``special_tokens_mask``, ``offset_mapping``, ``length``
        (tokens before padding) and ``overflow_to_sample_mapping``.  A single text gives flat lists,
        a batch gives lists of rows; overflowing windows always give rows.

        ``is_split_into_words=True`` takes each text as a list of words (NER): every word is encoded on
        its own, ``word_ids()`` are the word indices and offsets are relative to each word.  With
        ``return_overflowing_tokens`` and ``stride``, a text longer than ``max_length`` gives several
        windows (rows) that overlap by ``stride`` tokens; ``truncation="only_second"`` slides them over
        the pair (QA contexts), ``"only_first"``/``True`` over the first text; ``overflow_to_sample_mapping``
        gives each row's example.
        """
        padding_strategy = self._padding_strategy(padding)
        truncation_strategy = self._truncation_strategy(truncation)
        self._check_length("max_length", max_length, 1)
        self._check_length("stride", stride, 0)
        self._check_length("pad_to_multiple_of", pad_to_multiple_of, 1)
        if return_tensors not in TENSOR_TYPES:
            raise ValueError(f"return_tensors must be one of {TENSOR_TYPES}, got {return_tensors!r}")
        batched, firsts, pairs = self._normalize_inputs(text, text_pair, is_split_into_words)
        if truncation_strategy == "only_second" and pairs is None:
            raise ValueError("truncation='only_second' needs a text_pair; use truncation=True for single texts")
        if padding_strategy != "do_not_pad" and self.pad_token_id is None:
            raise ValueError("padding was requested but this tokenizer has no pad_token; set pad_token first")
        if truncation_strategy != "do_not_truncate" and max_length is None:
            max_length = self.model_max_length
        if padding_strategy == "max_length" and max_length is None:
            max_length = self.model_max_length
        if return_overflowing_tokens and truncation_strategy == "do_not_truncate":
            raise ValueError("return_overflowing_tokens=True needs truncation (e.g. truncation='only_second')")

        want_offsets = return_offsets_mapping
        everything = firsts + (pairs or [])
        seqs = self._encode_many(
            everything, split_words=is_split_into_words, want_tokens=False, want_offsets=want_offsets
        )
        firsts_enc = seqs[: len(firsts)]
        pairs_enc = seqs[len(firsts):] if pairs is not None else None

        rows: list[dict] = []
        for k, a in enumerate(firsts_enc):
            b = None if pairs_enc is None else pairs_enc[k]
            for row in self._rows_for_example(a, b, add_special_tokens, truncation_strategy, max_length, stride,
                                              return_overflowing_tokens, verbose):
                row["sample"] = k
                rows.append(row)

        return self._finish(
            rows,
            batched=batched or return_overflowing_tokens,  # windows always come as rows
            padding_strategy=padding_strategy,
            max_length=max_length,
            pad_to_multiple_of=pad_to_multiple_of,
            return_tensors=return_tensors,
            return_token_type_ids=return_token_type_ids,
            return_attention_mask=return_attention_mask,
            return_overflowing_tokens=return_overflowing_tokens,
            return_special_tokens_mask=return_special_tokens_mask,
            return_offsets_mapping=return_offsets_mapping,
            return_length=return_length,
        )

    encode_plus = __call__
    batch_encode_plus = __call__

    def _rows_for_example(self, a: _Seq, b: _Seq | None, add_special_tokens: bool, strategy: str,
                          max_length: int | None, stride: int, overflow: bool, verbose: bool) -> list[dict]:
        n_special = (3 if b is not None else 2) if add_special_tokens else 0
        total = len(a) + (len(b) if b is not None else 0) + n_special
        if strategy == "do_not_truncate" or max_length is None or total <= max_length:
            if strategy == "do_not_truncate" and verbose:
                if total > self.model_max_length:
                    self._warn_long(total)
                elif max_length is not None and total > max_length and not self._warned_max_length:
                    self._warned_max_length = True
                    warnings.warn(
                        f"an encoding has {total} tokens, more than max_length={max_length}, and it was not cut "
                        "because truncation was not requested; pass truncation=True to cut it",
                        UserWarning,
                        stacklevel=4,
                    )
            return [self._assemble(a, b, add_special_tokens)]
        if max_length < n_special:
            raise ValueError(
                f"max_length={max_length} is too small: the special tokens alone need {n_special} positions; "
                f"use max_length >= {n_special + 1}"
            )
        budget = max_length - n_special  # tokens of text that fit
        if b is not None and strategy == "longest_first":
            if overflow:
                raise ValueError(
                    "return_overflowing_tokens with a pair needs truncation='only_first' or 'only_second' "
                    "(the windows slide over one of the texts), not 'longest_first'"
                )
            remove = total - max_length
            la, lb = len(a), len(b)
            first_remove = min(abs(la - lb), remove)
            second = remove - first_remove
            if la > lb:
                ra, rb = first_remove + second // 2, second - second // 2
            else:
                ra, rb = second // 2, first_remove + second - second // 2
            return [self._assemble(a.slice(0, la - ra), b.slice(0, lb - rb), add_special_tokens)]
        if strategy == "only_second":
            target, other = b, a
        else:
            target, other = a, b
        room = budget - (len(other) if other is not None else 0)
        if room <= 0:
            which = "first" if strategy == "only_second" else "second"
            raise ValueError(
                f"cannot truncate with truncation={strategy!r} to max_length={max_length}: the {which} text "
                f"alone takes {len(other)} tokens; use a larger max_length or truncation='longest_first'"
            )
        starts = [0]
        if overflow:
            if stride >= room:
                raise ValueError(
                    f"stride={stride} must be smaller than the window ({room} tokens of text fit in "
                    f"max_length={max_length}); lower stride or raise max_length"
                )
            while starts[-1] + room < len(target):
                starts.append(starts[-1] + room - stride)
        rows = []
        for start in starts:
            piece = target.slice(start, start + room)
            if strategy == "only_second":
                rows.append(self._assemble(a, piece, add_special_tokens))
            else:
                rows.append(self._assemble(piece, b, add_special_tokens))
        return rows

    def _warn_long(self, total: int) -> None:
        if not self._warned_long:
            self._warned_long = True
            warnings.warn(
                f"Token indices sequence length is longer than the specified maximum sequence length for this "
                f"model ({total} > {self.model_max_length}). Running this sequence through the model will result "
                "in indexing errors; pass truncation=True to cut it",
                UserWarning,
                stacklevel=4,
            )

    def _assemble(self, a: _Seq, b: _Seq | None, add_special_tokens: bool) -> dict:
        offsets = None
        if add_special_tokens:
            cls_, sep = self.cls_token_id, self.sep_token_id
            ids = [cls_, *a.ids, sep]
            types = [0] * len(ids)
            special = [1] + [0] * len(a.ids) + [1]
            if a.offsets is not None:
                offsets = [(0, 0), *a.offsets, (0, 0)]
            if b is not None:
                ids += b.ids
                ids.append(sep)
                types += [1] * (len(b.ids) + 1)
                special += [0] * len(b.ids) + [1]
                if offsets is not None:
                    offsets += b.offsets
                    offsets.append((0, 0))
        else:
            ids = list(a.ids)
            types = [0] * len(ids)
            special = [0] * len(ids)
            if a.offsets is not None:
                offsets = list(a.offsets)
            if b is not None:
                ids += b.ids
                types += [1] * len(b.ids)
                special += [0] * len(b.ids)
                if offsets is not None:
                    offsets += b.offsets
        return {"input_ids": ids, "token_type_ids": types, "special_tokens_mask": special,
                "offset_mapping": offsets, "parts": (a, b, add_special_tokens)}

    def _row_info(self, row: dict, what: str) -> list:
        """Word ids / sequence ids / tokens of an (unpadded) row."""
        a, b, special = row["parts"]
        if what == "tokens":
            return [self._id_to_token(i) for i in row["input_ids"]]
        if what == "words":
            wa = self._seq_words(a)
            wb = self._seq_words(b) if b is not None else None
        else:
            wa = [0] * len(a.ids)
            wb = [1] * len(b.ids) if b is not None else None
        if special:
            out = [None, *wa, None]
            if wb is not None:
                out += wb
                out.append(None)
        else:
            out = list(wa) + (wb if wb is not None else [])
        return out

    def _finish(self, rows: list[dict], batched: bool, padding_strategy: str, max_length: int | None,
                pad_to_multiple_of: int | None, return_tensors: str | None, return_token_type_ids: bool | None,
                return_attention_mask: bool | None, return_overflowing_tokens: bool,
                return_special_tokens_mask: bool, return_offsets_mapping: bool, return_length: bool) -> BatchEncoding:
        if return_token_type_ids is None:
            return_token_type_ids = "token_type_ids" in self.model_input_names
        if return_attention_mask is None:
            return_attention_mask = True
        lengths = [len(r["input_ids"]) for r in rows]
        target = None
        if padding_strategy == "longest":
            target = max(lengths) if lengths else 0
        elif padding_strategy == "max_length":
            target = max_length
        if target is not None and pad_to_multiple_of:
            target = -(-target // pad_to_multiple_of) * pad_to_multiple_of
        keys = ["input_ids"]
        if return_token_type_ids:
            keys.append("token_type_ids")
        if return_attention_mask:
            keys.append("attention_mask")
        if return_special_tokens_mask:
            keys.append("special_tokens_mask")
        if return_offsets_mapping:
            keys.append("offset_mapping")
        pad_values = {
            "input_ids": self.pad_token_id,
            "token_type_ids": self.pad_token_type_id,
            "attention_mask": 0,
            "special_tokens_mask": 1,
            "offset_mapping": (0, 0),
        }
        columns: dict[str, list] = {key: [] for key in keys}
        left = self.padding_side == "left"
        for row, n in zip(rows, lengths):
            pad = (target - n) if (target is not None and target > n) else 0
            for key in keys:
                value = [1] * n if key == "attention_mask" else row[key]
                if pad:
                    filler = [pad_values[key]] * pad
                    value = filler + value if left else value + filler
                columns[key].append(value)
        if return_length:
            columns["length"] = lengths
        if return_overflowing_tokens:
            columns["overflow_to_sample_mapping"] = [r["sample"] for r in rows]
        if not batched:
            columns = {k: v[0] for k, v in columns.items()}
        enc = BatchEncoding(
            columns,
            word_ids=_LazyRows(self, rows, "words", target, left, None),
            sequence_ids=_LazyRows(self, rows, "seq_ids", target, left, None),
            tokens=_LazyRows(self, rows, "tokens", target, left, self.pad_token),
        )
        if return_tensors is not None:
            if not batched:
                for key in list(enc.keys()):
                    enc[key] = [enc[key]]
            enc.convert_to_tensors(return_tensors)
        return enc

    # ---------------------------------------------------------------------------------------------
    # convenience API

    def encode(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        stride: int = 0,
        is_split_into_words: bool = False,
        return_tensors: str | None = None,
    ) -> Any:
        """Ids of one text (or pair): ``[CLS] A [SEP]`` / ``[CLS] A [SEP] B [SEP]``."""
        if not is_split_into_words:
            _check_text(text, "text")
            if text_pair is not None:
                _check_text(text_pair, "text_pair")
        enc = self(text, text_pair, add_special_tokens=add_special_tokens, padding=padding, truncation=truncation,
                   max_length=max_length, stride=stride, is_split_into_words=is_split_into_words,
                   return_tensors=return_tensors, return_token_type_ids=False, return_attention_mask=False)
        return enc["input_ids"]

    def pad(
        self,
        encoded_inputs: Any,
        padding: bool | str = True,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | None = None,
    ) -> BatchEncoding:
        """Pad a list of encodings (dicts of lists) or a dict of lists of rows to one length."""
        strategy = self._padding_strategy(padding)
        self._check_length("max_length", max_length, 1)
        self._check_length("pad_to_multiple_of", pad_to_multiple_of, 1)
        if return_tensors not in TENSOR_TYPES:
            raise ValueError(f"return_tensors must be one of {TENSOR_TYPES}, got {return_tensors!r}")
        if isinstance(encoded_inputs, (list, tuple)):
            if not encoded_inputs:
                raise ValueError("pad() got an empty list of encodings")
            if not all(isinstance(e, Mapping) for e in encoded_inputs):
                raise TypeError("pad() takes a list of dicts (one per example) or a dict of lists")
            keys = list(encoded_inputs[0].keys())
            batch = {k: [self._as_list(e[k]) for e in encoded_inputs] for k in keys}
        elif isinstance(encoded_inputs, Mapping):
            batch = {k: self._as_list(v) for k, v in encoded_inputs.items()}
        else:
            raise TypeError(f"pad() takes a list of dicts or a dict of lists, got {type(encoded_inputs).__name__}")
        if "input_ids" not in batch:
            raise ValueError(f"pad() needs 'input_ids' among the keys, got {sorted(batch)}")
        single = batch["input_ids"] and not isinstance(batch["input_ids"][0], list)
        if single:
            batch = {k: [v] for k, v in batch.items()}
        if strategy != "do_not_pad" and self.pad_token_id is None:
            raise ValueError("padding was requested but this tokenizer has no pad_token; set pad_token first")
        if strategy == "max_length" and max_length is None:
            max_length = self.model_max_length
        lengths = [len(r) for r in batch["input_ids"]]
        target = None
        if strategy == "longest":
            target = max(lengths)
        elif strategy == "max_length":
            target = max_length
        if target is not None and pad_to_multiple_of:
            target = -(-target // pad_to_multiple_of) * pad_to_multiple_of
        if return_attention_mask is None:
            return_attention_mask = True
        if return_attention_mask and "attention_mask" not in batch:
            batch["attention_mask"] = [[1] * n for n in lengths]
        pad_values = {"input_ids": self.pad_token_id, "token_type_ids": self.pad_token_type_id, "attention_mask": 0,
                      "special_tokens_mask": 1, "offset_mapping": (0, 0)}
        left = self.padding_side == "left"
        out = {}
        for key, rows in batch.items():
            if key in pad_values and target is not None:
                new_rows = []
                for row, n in zip(rows, lengths):
                    if len(row) != n:
                        raise ValueError(f"{key!r} and 'input_ids' have different lengths ({len(row)} vs {n})")
                    filler = [pad_values[key]] * max(0, target - n)
                    new_rows.append(filler + list(row) if left else list(row) + filler)
                out[key] = new_rows
            else:
                out[key] = rows
        if single and return_tensors is None:
            out = {k: v[0] for k, v in out.items()}
        enc = BatchEncoding(out)
        return enc.convert_to_tensors(return_tensors)

    @staticmethod
    def _as_list(value: Any) -> Any:
        if hasattr(value, "tolist"):
            return value.tolist()
        if isinstance(value, tuple):
            return list(value)
        return value

    # ---------------------------------------------------------------------------------------------
    # saving and loading

    def _config_dict(self) -> dict:
        added_tokens_decoder = {}
        for token in self.all_special_tokens:
            i = self._special_ids[token]
            added_tokens_decoder[str(i)] = {
                "content": token,
                "lstrip": token == self.mask_token,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
        return {
            "tokenizer_class": "FNetTokenizer",
            "do_lower_case": self.do_lower_case,
            "remove_space": self.remove_space,
            "keep_accents": self.keep_accents,
            "unk_token": self.unk_token,
            "sep_token": self.sep_token,
            "pad_token": self.pad_token,
            "cls_token": self.cls_token,
            "mask_token": self.mask_token,
            "model_max_length": self.model_max_length,
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            "padding_side": self.padding_side,
            "model_input_names": list(self.model_input_names),
            "added_tokens_decoder": dict(sorted(added_tokens_decoder.items(), key=lambda kv: int(kv[0]))),
        }

    def save_pretrained(self, save_directory: str | os.PathLike) -> tuple[str, str, str]:
        """Write ``spiece.model``, ``tokenizer_config.json`` and ``special_tokens_map.json`` (atomically).

        Other files in the folder (e.g. the model's ``config.json`` and ``model.safetensors``) are left alone.
        """
        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"save_directory {str(directory)!r} is a file, not a folder")
        directory.mkdir(parents=True, exist_ok=True)
        special_map = {}
        for name in SPECIAL_ORDER:
            token = getattr(self, name)
            if token is None:
                continue
            if name == "mask_token":
                special_map[name] = {"content": token, "lstrip": True, "normalized": False, "rstrip": False,
                                     "single_word": False}
            else:
                special_map[name] = token
        paths = (directory / VOCAB_FILE_NAME, directory / TOKENIZER_CONFIG_FILE, directory / SPECIAL_TOKENS_MAP_FILE)
        _atomic_write(paths[0], self._sp_bytes)
        _atomic_write(paths[1], (json.dumps(self._config_dict(), indent=2, ensure_ascii=False) + "\n").encode())
        _atomic_write(paths[2], (json.dumps(special_map, indent=2, ensure_ascii=False) + "\n").encode())
        self.vocab_file = str(paths[0])
        return tuple(str(p) for p in paths)

    @classmethod
    def from_pretrained(cls, pretrained_path: str | os.PathLike, **kwargs: Any) -> FNetTokenizer:
        """Load from a folder holding ``spiece.model`` (plus, when present, ``tokenizer_config.json`` and
        ``special_tokens_map.json``, as written by this class or by transformers), or from a ``.model``
        file.  ``kwargs`` override the saved options."""
        path = Path(pretrained_path)
        if path.is_file():
            vocab_file, directory = path, path.parent
        elif path.is_dir():
            vocab_file, directory = path / VOCAB_FILE_NAME, path
            if not vocab_file.is_file():
                found = sorted(p.name for p in path.iterdir())[:12]
                hint = " (a tokenizer.json alone cannot be loaded: the SentencePiece model is needed)" if (
                    path / "tokenizer.json").exists() else ""
                raise TokenizerFileError(
                    f"no {VOCAB_FILE_NAME} in {str(path)!r}{hint}; the folder holds {found}. Save a tokenizer "
                    "there with FNetTokenizer.save_pretrained or train one with FNetTokenizer.train"
                )
        else:
            raise TokenizerFileError(f"tokenizer path {str(path)!r} does not exist")
        options: dict[str, Any] = {}
        config_path = directory / TOKENIZER_CONFIG_FILE
        if config_path.is_file() and path.is_dir():
            config = cls._read_json(config_path)
            for key in ("do_lower_case", "remove_space", "keep_accents", "model_max_length",
                        "clean_up_tokenization_spaces", "padding_side"):
                if key in config and config[key] is not None:
                    options[key] = config[key]
            for key in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
                if key in config:
                    options[key] = _token_content(config[key])
        map_path = directory / SPECIAL_TOKENS_MAP_FILE
        if map_path.is_file() and path.is_dir():
            special_map = cls._read_json(map_path)
            for key in ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
                if key in special_map:
                    options[key] = _token_content(special_map[key])
        mml = options.get("model_max_length")
        if mml is not None:
            if isinstance(mml, float) and mml.is_integer():
                mml = int(mml)
            if not isinstance(mml, int) or mml >= _NO_LIMIT:
                mml = _NO_LIMIT  # transformers' "no limit"
            options["model_max_length"] = mml
        options.update(kwargs)
        return cls(vocab_file, **options)

    @staticmethod
    def _read_json(path: Path) -> dict:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read {str(path)!r}: {err}; fix or delete the file") from None
        if not isinstance(data, dict):
            raise ValueError(f"{str(path)!r} must hold a JSON object, got {type(data).__name__}")
        return data

    # ---------------------------------------------------------------------------------------------
    # training

    @classmethod
    def train(
        cls,
        files: str | os.PathLike | Iterable[str | os.PathLike],
        vocab_size: int = 32000,
        output_dir: str | os.PathLike | None = None,
        model_type: str = "unigram",
        character_coverage: float = 0.9995,
        input_sentence_size: int = 1_000_000,
        shuffle_input_sentence: bool = True,
        do_lower_case: bool = False,
        remove_space: bool = True,
        keep_accents: bool = True,
        max_sentence_length: int = 16384,
        model_max_length: int = 512,
        seed: int = 0,
        num_threads: int | None = None,
        user_defined_symbols: Sequence[str] = (),
        split_by_number: bool = True,
        **sentencepiece_options: Any,
    ) -> FNetTokenizer:
        """Train a SentencePiece model on text files (one sentence or paragraph per line).

        The text goes through the tokenizer's own preprocessing (``do_lower_case``, ``remove_space``,
        ``keep_accents``) while it is read, so the model is trained on what it will see.  Lines are
        streamed; ``input_sentence_size`` sentences are sampled (reservoir sampling,
        ``shuffle_input_sentence``) so files larger than memory work.  ``character_coverage``: 1.0 is
        recommended for English and other small alphabets, 0.9995 for Chinese/Japanese.  Lines longer
        than ``max_sentence_length`` bytes (which SentencePiece would skip) are cut at spaces.

        Ids: ``<unk>`` 0, ``<s>`` 1, ``</s>`` 2, ``<pad>`` 3, ``[CLS]`` 4, ``[SEP]`` 5, ``[MASK]`` 6, then
        ``user_defined_symbols``, then the learned pieces.  SentencePiece training is seeded with
        ``seed``; with one thread it is reproducible, with several threads it may not be bitwise so.

        Returns the tokenizer; with ``output_dir`` it is also saved there (``save_pretrained``).
        """
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
        cls._check_length("vocab_size", vocab_size, 8)
        cls._check_length("input_sentence_size", input_sentence_size, 0)
        if not isinstance(character_coverage, (int, float)) or not 0.0 < character_coverage <= 1.0:
            raise ValueError(f"character_coverage must be in (0, 1], got {character_coverage!r}")
        # a throw-away tokenizer-like object for the preprocessing
        prep = cls.__new__(cls)
        prep.remove_space, prep.keep_accents, prep.do_lower_case = remove_space, keep_accents, do_lower_case

        counter = {"lines": 0}

        def sentences():
            for p in paths:
                with open(p, encoding="utf-8", errors="replace") as handle:
                    for line in handle:
                        line = prep.preprocess_text(line.rstrip("\n"))
                        if not line.strip():
                            continue
                        counter["lines"] += 1
                        if len(line.encode("utf-8")) <= max_sentence_length:
                            yield line
                        else:  # SentencePiece would skip it: cut it into pieces at spaces
                            yield from _split_long_line(line, max_sentence_length)

        # find empty input before SentencePiece does (its message is cryptic)
        if not any(True for _ in _first(sentences())):
            raise ValueError(f"the training files contain no text: {[str(p) for p in paths]}")
        counter["lines"] = 0
        specials = ["[CLS]", "[SEP]", "[MASK]"]
        user = [s for s in user_defined_symbols if s not in specials]
        import io

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
                    f"vocab_size={vocab_size} is too small for the characters of this text at "
                    f"character_coverage={character_coverage}: {message.strip()}"
                ) from None
            if "Vocabulary size" in message or "vocab_size" in message:
                raise ValueError(
                    f"vocab_size={vocab_size} is too big for this text ({counter['lines']} lines): {message.strip()}; "
                    "use a smaller vocab_size or more text"
                ) from None
            raise ValueError(f"SentencePiece training failed: {message.strip()}") from None
        tokenizer = cls.__new__(cls)
        FNetTokenizer._init_from_bytes(
            tokenizer, model.getvalue(), do_lower_case=do_lower_case, remove_space=remove_space,
            keep_accents=keep_accents, model_max_length=model_max_length,
        )
        for piece, i in TRAIN_SPECIAL_IDS.items():
            if tokenizer.sp_model.id_to_piece(i) != piece:  # pragma: no cover - guards SentencePiece changes
                raise RuntimeError(f"trained model has {tokenizer.sp_model.id_to_piece(i)!r} at id {i}, not {piece!r}")
        if output_dir is not None:
            tokenizer.save_pretrained(output_dir)
        return tokenizer

    def _init_from_bytes(self, serialized: bytes, **options: Any) -> None:
        directory = tempfile.mkdtemp(prefix="fnet-spm-")
        try:
            path = Path(directory) / VOCAB_FILE_NAME
            path.write_bytes(serialized)
            FNetTokenizer.__init__(self, path, **options)
        finally:
            try:
                os.unlink(Path(directory) / VOCAB_FILE_NAME)
                os.rmdir(directory)
            except OSError:
                pass
        self.vocab_file = "(in memory: save_pretrained writes spiece.model)"


def _split_long_line(line: str, max_bytes: int):
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


def _first(iterator):
    for item in iterator:
        yield item
        return


class _LazyRows:
    """Word ids, sequence ids or tokens of the rows of a BatchEncoding, built when first asked for."""

    def __init__(self, tokenizer: FNetTokenizer, rows: list[dict], what: str, target: int | None, left: bool,
                 pad_value: Any):
        self._tok = tokenizer
        self._rows = rows
        self._what = what
        self._target = target
        self._left = left
        self._pad = pad_value

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: int) -> list:
        row = self._rows[index]
        values = self._tok._row_info(row, self._what)
        if self._target is not None and self._target > len(values):
            filler = [self._pad] * (self._target - len(values))
            values = filler + values if self._left else values + filler
        return values
