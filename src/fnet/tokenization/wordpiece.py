"""BERT's WordPiece tokenizer, run by the Hugging Face ``tokenizers`` library (issue 12).

``WordPieceTokenizer`` loads what a BERT checkpoint ships:

* ``tokenizer.json`` (preferred): the whole pipeline (normalizer, pre-tokenizer, WordPiece model, added
  tokens) exactly as saved; its truncation and padding settings are ignored (this class truncates and pads,
  as every fnet tokenizer does);
* ``vocab.txt`` alone: the pipeline transformers' ``BertTokenizer`` builds from it: ``BertNormalizer``
  (``clean_text``, ``tokenize_chinese_chars``, ``strip_accents``, ``do_lower_case``; ``strip_accents=None``
  follows ``do_lower_case``), ``BertPreTokenizer``, WordPiece with ``##`` continuation and 100 characters
  per word at most, and the special tokens added as whole tokens.

``tokenizer_config.json``/``special_tokens_map.json`` next to it give the special tokens,
``model_max_length`` and the options above.  An option passed (or stored) for a ``tokenizer.json`` whose
normalizer is a ``BertNormalizer`` with another value rebuilds that normalizer with the option (as
transformers' fast BERT tokenizer did).

The layout is BERT's: ``[CLS] A [SEP]`` / ``[CLS] A [SEP] B [SEP]``; a ``tokenizer.json`` whose own
post-processor builds another layout (RoBERTa's ``<s> A </s></s> B </s>``, ...) is refused.

Results equal transformers' ``AutoTokenizer`` for the same folder: ids, token types, attention mask,
offsets (character spans into the original text; special tokens written in a text keep their span),
word ids (a special token written in a text is a word, as in transformers), special-tokens mask
(1 only for the added ``[CLS]``/``[SEP]``) and ``longest_first`` truncation of pairs (the ``tokenizers``
rule: the shorter text keeps its length when it fits in half the room, otherwise both get half).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fnet.io import atomic_write_text
from fnet.tokenization.base import TokenizerBase, TokenizerFileError
from fnet.tokenization.encoding import EncodedText, check_bool
from fnet.tokenization.normalization import clean_up_tokenization

__all__ = ["WordPieceTokenizer", "TOKENIZER_FILE_NAME", "VOCAB_TXT_NAME"]

TOKENIZER_FILE_NAME = "tokenizer.json"
VOCAB_TXT_NAME = "vocab.txt"
_UNSET = object()
# the special tokens a BERT vocabulary must hold (the others are added when it lacks them)
LAYOUT_SPECIALS = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


class WordPieceTokenizer(TokenizerBase):
    """A BERT WordPiece tokenizer with the surface of :class:`fnet.FNetTokenizer` (see the module docstring).

    Args:
        vocab_file: a ``tokenizer.json`` or a ``vocab.txt`` (one token per line, the line number is its id).
        do_lower_case: lower-case the text (``None``: as the ``tokenizer.json`` says; ``True`` for vocab.txt).
        strip_accents: strip accents (``None``: follow ``do_lower_case``, as BERT does).
        tokenize_chinese_chars: put spaces around CJK characters, so each is a word.
        unk_token, sep_token, pad_token, cls_token, mask_token: the special tokens (in the vocabulary).
        model_max_length, clean_up_tokenization_spaces, padding_side: as for every fnet tokenizer.
    """

    tokenizer_class = "BertTokenizer"
    option_names = ("do_lower_case", "strip_accents", "tokenize_chinese_chars")
    model_input_names = ["input_ids", "token_type_ids"]
    pair_truncation = "tokenizers"
    continuing_subword_prefix = "##"  # marks a piece that continues a word (whole-word masking reads it)

    def __init__(
        self,
        vocab_file: str | os.PathLike,
        do_lower_case: bool | None = None,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool | None = None,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str | None = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str | None = "[MASK]",
        model_max_length: int = 512,
        clean_up_tokenization_spaces: bool = False,  # transformers' default for BERT: decode as the decoder does
        padding_side: str = "right",
        truncation_side: str = "right",
        bos_token: str | None = None,
        eos_token: str | None = None,
        extra_special_tokens: Sequence[Any] | None = None,
        added_tokens_decoder: Mapping[Any, Any] | None = None,
    ):
        for name, value in (("do_lower_case", do_lower_case), ("tokenize_chinese_chars", tokenize_chinese_chars),
                            ("strip_accents", strip_accents)):
            if value is not None:
                check_bool(name, value)
        super().__init__(unk_token=unk_token, sep_token=sep_token, pad_token=pad_token, cls_token=cls_token,
                         mask_token=mask_token, model_max_length=model_max_length,
                         clean_up_tokenization_spaces=clean_up_tokenization_spaces, padding_side=padding_side,
                         truncation_side=truncation_side, bos_token=bos_token, eos_token=eos_token,
                         extra_special_tokens=extra_special_tokens, added_tokens_decoder=added_tokens_decoder)
        path = Path(vocab_file)
        if not path.is_file():
            raise TokenizerFileError(f"WordPiece vocabulary not found: {str(path)!r}; pass a tokenizer.json or "
                                     "vocab.txt file (or the folder holding one)")
        self.vocab_file = str(path)
        if path.suffix == ".json":
            backend = _read_tokenizer_json(path)
        else:
            backend = _backend_from_vocab_txt(path, self.unk_token, do_lower_case, strip_accents,
                                              tokenize_chinese_chars)
        self._set_backend(backend, do_lower_case, strip_accents, tokenize_chinese_chars)

    def _set_backend(self, backend: Any, do_lower_case, strip_accents, tokenize_chinese_chars) -> None:
        from tokenizers import AddedToken

        backend.no_truncation()
        backend.no_padding()
        normalizer = json.loads(backend.to_str()).get("normalizer") or {}
        if normalizer.get("type") == "BertNormalizer":
            saved = (normalizer.get("lowercase"), normalizer.get("strip_accents"), normalizer.get("handle_chinese_chars"))
            wanted = tuple(s if w is None else w for w, s in zip((do_lower_case, strip_accents, tokenize_chinese_chars), saved))
            if wanted != saved:
                from tokenizers import normalizers

                backend.normalizer = normalizers.BertNormalizer(
                    clean_text=normalizer.get("clean_text", True), handle_chinese_chars=wanted[2],
                    strip_accents=wanted[1], lowercase=wanted[0])
            self.do_lower_case, self.strip_accents, self.tokenize_chinese_chars = wanted
        else:  # another normalizer: it decides; record what was asked for (or nothing)
            self.do_lower_case, self.strip_accents, self.tokenize_chinese_chars = (
                do_lower_case, strip_accents, tokenize_chinese_chars)
        self._backend = backend
        core = [self._specials[name] for name in LAYOUT_SPECIALS if self._specials[name] is not None]
        missing = [t for t in core if backend.token_to_id(t) is None]
        if missing:
            raise ValueError(f"{self.vocab_file!r} lacks the special tokens {missing}; pass the tokens this "
                             "vocabulary has (e.g. unk_token='[UNK]') or use the checkpoint's own vocabulary")
        # special tokens written in a text stay whole (transformers registers them the same way)
        backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in core])
        self._index_special_tokens()  # saved added tokens at their ids, then bos/eos/extra tokens it lacks
        self._check_layout()

    def _on_tokens_changed(self) -> None:
        from tokenizers import AddedToken

        self._backend.add_special_tokens(
            [AddedToken(t, special=True, normalized=False) for t in self.all_special_tokens])

    def _has_token(self, token: str) -> bool:
        return self._backend.token_to_id(token) is not None

    def _add_to_vocab(self, token: str, special: bool) -> int:
        from tokenizers import AddedToken

        # as transformers adds them: a plain added token is matched in the normalized (e.g. lower-cased) text; one
        # the vocabulary has keeps its id
        added = AddedToken(token, special=special, normalized=not special)
        if special:
            self._backend.add_special_tokens([added])
        else:
            self._backend.add_tokens([added])
        return self._backend.token_to_id(token)

    def _base_vocab_size(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=False)

    def _added_token_flags(self, token: str) -> dict[str, bool]:
        flags = super()._added_token_flags(token)
        added = self._backend.get_added_tokens_decoder().get(self._backend.token_to_id(token))
        if added is not None:  # the pipeline's own flags (a plain added token matches normalized text)
            flags.update(lstrip=added.lstrip, rstrip=added.rstrip, single_word=added.single_word,
                         normalized=added.normalized)
        return flags

    def _check_layout(self) -> None:
        """Refuse a tokenizer.json whose post-processor builds another layout than ``[CLS] A [SEP] B [SEP]``."""
        if self._backend.post_processor is None:
            return
        a, b = self._backend.encode("a", "b", add_special_tokens=False), self._backend.encode("a", "b")
        plain_a = self._backend.encode("a", add_special_tokens=False).ids
        plain_b = self._backend.encode("b", add_special_tokens=False).ids
        ours = self.build_inputs_with_special_tokens(plain_a, plain_b)
        types = self.create_token_type_ids_from_sequences(plain_a, plain_b)
        if (b.ids, b.type_ids) != (ours, types) or a.ids != plain_a + plain_b:
            raise ValueError(
                f"{self.vocab_file!r} builds sequences as {b.tokens}, not BERT's [CLS] A [SEP] B [SEP]; only "
                "BERT-family (WordPiece) tokenizers load here"
            )

    def _kind_options(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.option_names}

    def _piece_role(self, index: int) -> tuple[bool, bool]:
        piece = self._id_to_token(index)
        reserved = piece.startswith("[") and piece.endswith("]")  # BERT's [unused0]... and [UNK]-like entries
        continuation = piece.startswith(self.continuing_subword_prefix)
        return not reserved and piece not in ("", self.continuing_subword_prefix), not continuation

    def __repr__(self) -> str:
        return (f"WordPieceTokenizer(vocab_file={self.vocab_file!r}, vocab_size={self.vocab_size}, "
                f"do_lower_case={self.do_lower_case}, model_max_length={self.model_max_length}, "
                f"special_tokens={self.special_tokens_map})")

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_backend"] = self._backend.to_str()
        return state

    def __setstate__(self, state: dict) -> None:
        from tokenizers import Tokenizer

        state = dict(state)
        state["_backend"] = Tokenizer.from_str(state["_backend"])
        self.__dict__.update(state)

    @property
    def backend_tokenizer(self) -> Any:
        """The ``tokenizers.Tokenizer`` underneath (truncation and padding switched off)."""
        return self._backend

    # ---------------------------------------------------------------------------------------------
    # vocabulary

    def _token_to_id(self, token: str) -> int:
        i = self._backend.token_to_id(token)
        return self.unk_token_id if i is None else i

    def _id_to_token(self, index: int) -> str:
        token = self._backend.id_to_token(index) if index >= 0 else None
        if token is None:
            raise ValueError(f"token id {index} is out of range: the vocabulary has {self.vocab_size} ids")
        return token

    @property
    def vocab_size(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        return self._backend.get_vocab(with_added_tokens=True)

    # ---------------------------------------------------------------------------------------------
    # encoding and decoding

    def _encode_batch(self, texts: Sequence[Any], split_words: bool = False, want_tokens: bool = False,
                      want_offsets: bool = False) -> list[EncodedText]:
        inputs = [list(t) for t in texts] if split_words else list(texts)
        encodings = self._backend.encode_batch(inputs, is_pretokenized=split_words, add_special_tokens=False)
        return [EncodedText(e.ids, e.tokens if want_tokens else None, e.offsets if want_offsets else None,
                            e.word_ids) for e in encodings]

    def _compute_word_ids(self, encoded: EncodedText) -> list[int | None]:
        return list(encoded.words)  # always filled by _encode_batch

    def decode(self, token_ids: Any, skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: bool | None = None) -> str:
        """Text of ``token_ids``: the pipeline's own decoder (WordPiece joins ``##`` pieces; special tokens
        are words of their own), as transformers decodes."""
        out = self._backend.decode(self._check_ids(token_ids), skip_special_tokens=skip_special_tokens)
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        return clean_up_tokenization(out) if clean_up_tokenization_spaces else out

    def _decode_ids(self, ids: list[int]) -> str:
        return self._backend.decode(ids, skip_special_tokens=False)

    def _decode_tokens(self, tokens: list[str]) -> str:
        return self._backend.decoder.decode(tokens) if self._backend.decoder is not None else " ".join(tokens)

    def convert_tokens_to_string(self, tokens: Sequence[str]) -> str:
        return self._decode_tokens(list(tokens))

    # ---------------------------------------------------------------------------------------------
    # files

    @classmethod
    def _vocabulary_file(cls, path: Path) -> Path:
        if path.is_file():
            return path
        if not path.is_dir():
            raise TokenizerFileError(f"tokenizer path {str(path)!r} does not exist")
        for name in (TOKENIZER_FILE_NAME, VOCAB_TXT_NAME):
            if (path / name).is_file():
                return path / name
        raise TokenizerFileError(f"no {TOKENIZER_FILE_NAME} or {VOCAB_TXT_NAME} in {str(path)!r}")

    def _save_vocabulary(self, directory: Path) -> Path:
        """``tokenizer.json`` (the pipeline) and, for a WordPiece model, ``vocab.txt`` (for older readers)."""
        data = json.loads(self._backend.to_str())
        if data.get("model", {}).get("type") == "WordPiece":
            vocab = self._backend.get_vocab(with_added_tokens=False)
            by_id = sorted(vocab.items(), key=lambda kv: kv[1])
            if [i for _, i in by_id] == list(range(len(by_id))):
                atomic_write_text(directory / VOCAB_TXT_NAME, "".join(t + "\n" for t, _ in by_id))
        return atomic_write_text(directory / TOKENIZER_FILE_NAME, self._backend.to_str(pretty=True))


def _read_tokenizer_json(path: Path) -> Any:
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as err:  # tokenizers raises its own Exception subclass, or a pyo3 PanicException
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"cannot read {str(path)!r} as a tokenizers file: {first}; re-save it with "
                         "save_pretrained or copy an intact tokenizer.json") from None


def _backend_from_vocab_txt(path: Path, unk_token: str, do_lower_case, strip_accents, tokenize_chinese_chars) -> Any:
    """The pipeline transformers' BertTokenizer builds from a vocab.txt."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import WordPiece

    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read {str(path)!r} as a UTF-8 vocabulary: {err}") from None
    if lines and lines[-1] == "":
        lines.pop()
    vocab: dict[str, int] = {}
    for index, token in enumerate(lines):
        vocab[token] = index  # a repeated line keeps its last id, as transformers' load_vocab does
    if not vocab:
        raise ValueError(f"{str(path)!r} is empty: a vocab.txt holds one token per line")
    backend = Tokenizer(WordPiece(vocab, unk_token=unk_token, max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True if tokenize_chinese_chars is None else tokenize_chinese_chars,
        strip_accents=strip_accents, lowercase=True if do_lower_case is None else do_lower_case)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    return backend
