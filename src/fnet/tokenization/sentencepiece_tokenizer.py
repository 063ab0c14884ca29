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

* **Added tokens** (``add_tokens``, ``add_special_tokens``, ``extra_special_tokens``, a saved
  ``added_tokens_decoder``) are cut out of a text like special tokens and take the ids after those (a saved
  table keeps its ids). A plain (not special) added token keeps its span and is a word of its own.

* **Files**: ``save_pretrained`` writes ``spiece.model`` and a ``tokenizer.json`` (the pipeline transformers 5
  loads; see :mod:`fnet.tokenization.unigram_json`); a folder with only ``tokenizer.json`` (as transformers 5
  saves it) loads through the ``tokenizers`` library with the same ids.

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

import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sentencepiece as spm

from fnet.io import atomic_write_bytes, atomic_write_text
from fnet.tokenization.base import TokenizerBase, TokenizerFileError
from fnet.tokenization.encoding import EncodedText, check_bool
from fnet.tokenization.normalization import normalize, normalize_aligned, split_special_tokens
from fnet.tokenization.offsets import SPIECE_UNDERLINE, digit_comma_offsets, map_offsets
from fnet.tokenization.training import TRAIN_SPECIAL_IDS, train_sentencepiece
from fnet.tokenization.unigram_json import VOCAB_JSON_NAME, UnigramJson

__all__ = ["FNetTokenizer", "VOCAB_FILE_NAME"]

VOCAB_FILE_NAME = "spiece.model"
# order in which missing special tokens are appended after the SentencePiece pieces
APPEND_ORDER = ("unk_token", "pad_token", "cls_token", "sep_token", "mask_token")


def _ends_in_digit_comma(piece: str) -> bool:
    return len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit()


class FNetTokenizer(TokenizerBase):
    """FNet's SentencePiece tokenizer (see the module docstring for the exact rules).

    Args:
        vocab_file: path of a SentencePiece model (``spiece.model``), or of a Unigram ``tokenizer.json`` as
            transformers 5 saves it (run by the ``tokenizers`` library; see :mod:`fnet.tokenization.unigram_json`).
        do_lower_case: lower-case the text before SentencePiece (None: as the ``tokenizer.json``'s normalizer
            does, else False).
        remove_space: collapse whitespace runs to one space and strip the text.
        keep_accents: when False, strip accents (NFKD, then drop combining marks) (None: as the
            ``tokenizer.json``'s normalizer does, else True).
        unk_token, sep_token, pad_token, cls_token, mask_token: the special tokens; ``pad_token`` and
            ``mask_token`` may be ``None``.
        model_max_length: longest sequence the model takes; longer encodings warn (once) unless truncated.
        clean_up_tokenization_spaces: default of ``decode``'s option of the same name.
        num_threads: threads SentencePiece may use for batches (``-1``: all cores).
        padding_side, truncation_side: "right" or "left": the end padding is added to / truncation cuts.
        bos_token, eos_token: transformers' names for ``[CLS]``/``[SEP]`` (not used by the layout).
        extra_special_tokens: more special tokens (matched whole in a text; added to the vocabulary if absent).
        added_tokens_decoder: the saved table of added tokens ({id: token}), restored at those ids.
    """

    vocab_files_names = {"vocab_file": VOCAB_FILE_NAME}
    tokenizer_class = "FNetTokenizer"
    option_names = ("do_lower_case", "remove_space", "keep_accents")
    mask_lstrip = True

    def __init__(
        self,
        vocab_file: str | os.PathLike,
        do_lower_case: bool | None = None,
        remove_space: bool = True,
        keep_accents: bool | None = None,
        unk_token: str = "<unk>",
        sep_token: str = "[SEP]",
        pad_token: str | None = "<pad>",
        cls_token: str = "[CLS]",
        mask_token: str | None = "[MASK]",
        model_max_length: int = 512,
        clean_up_tokenization_spaces: bool = True,
        num_threads: int = -1,
        padding_side: str = "right",
        truncation_side: str = "right",
        bos_token: str | None = "[CLS]",
        eos_token: str | None = "[SEP]",
        extra_special_tokens: Sequence[Any] | None = None,
        added_tokens_decoder: Mapping[Any, Any] | None = None,
    ):
        unigram = None
        if Path(vocab_file).suffix == ".json":  # a Unigram tokenizer.json (transformers 5 saves no spiece.model)
            unigram = UnigramJson.from_file(vocab_file)
            do_lower_case = unigram.do_lower_case if do_lower_case is None else do_lower_case
            keep_accents = unigram.keep_accents if keep_accents is None else keep_accents
            added_tokens_decoder = {**unigram.added_tokens, **(added_tokens_decoder or {})}
        self.do_lower_case = check_bool("do_lower_case", False if do_lower_case is None else do_lower_case)
        self.remove_space = check_bool("remove_space", remove_space)
        self.keep_accents = check_bool("keep_accents", True if keep_accents is None else keep_accents)
        if not isinstance(num_threads, int) or num_threads == 0 or num_threads < -1:
            raise ValueError(f"num_threads must be -1 (all cores) or a positive int, got {num_threads!r}")
        self.num_threads = num_threads
        super().__init__(unk_token=unk_token, sep_token=sep_token, pad_token=pad_token, cls_token=cls_token,
                         mask_token=mask_token, model_max_length=model_max_length,
                         clean_up_tokenization_spaces=clean_up_tokenization_spaces, padding_side=padding_side,
                         truncation_side=truncation_side, bos_token=bos_token, eos_token=eos_token,
                         extra_special_tokens=extra_special_tokens, added_tokens_decoder=added_tokens_decoder)
        self.vocab_file = str(vocab_file)
        if unigram is not None:
            self._use_model(unigram.with_unk(self.unk_token), unigram.file_bytes, VOCAB_JSON_NAME)
        else:
            self._load_model(vocab_file)

    def _kind_options(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.option_names}

    def _piece_role(self, index: int) -> tuple[bool, bool]:
        if not 0 <= index < self._sp_size:  # an appended special or added token
            return False, False
        sp, piece = self.sp_model, self.sp_model.id_to_piece(index)
        reserved = sp.is_control(index) or sp.is_unknown(index) or sp.is_unused(index)
        # a bare word boundary decodes to nothing: a text holding it would not re-encode to the same pieces
        return not reserved and bool(piece.replace(SPIECE_UNDERLINE, "")), piece.startswith(SPIECE_UNDERLINE)

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
        self._use_model(sp, serialized, VOCAB_FILE_NAME)

    def _use_model(self, model: Any, file_bytes: bytes, file_name: str) -> None:
        """``model``: a ``SentencePieceProcessor`` or a :class:`UnigramJson` (the same calls); ``file_bytes``
        is the vocabulary file ``save_pretrained`` writes as ``file_name``."""
        self._sp_bytes = file_bytes
        self._vocab_file_name = file_name
        self.sp_model = model
        self._build_vocab()

    def _build_vocab(self) -> None:
        sp = self.sp_model
        n = sp.get_piece_size()
        self._sp_size = n
        self._added: dict[str, int] = {}  # token -> id for the tokens past the model (special or added)
        self._added_rev: dict[int, str] = {}
        self._sp_unk = sp.unk_id()
        self._restore_saved_added()  # tokens saved past the model keep their ids
        for name in APPEND_ORDER:
            token = self._specials[name]
            if token is not None and not self._has_token(token):
                self._add_to_vocab(token, True)
        self._index_special_tokens()
        # ids whose piece ends in "<digit>," (ALBERT rule); usually empty
        self._comma_ids = frozenset(i for i in range(n) if _ends_in_digit_comma(sp.id_to_piece(i)))

    def _on_tokens_changed(self) -> None:
        # special and added tokens written in a text are cut out whole, the longest first
        whole = sorted(self._special_ids, key=len, reverse=True)
        self._special_re = re.compile("|".join(re.escape(t) for t in whole))
        self._plain_added = frozenset(t for t, special in self._added_tokens.items()
                                      if not special and t not in self.all_special_tokens)

    def _has_token(self, token: str) -> bool:
        return token in self._added or self._sp_piece_id(token) is not None

    def _add_to_vocab(self, token: str, special: bool) -> int:
        if self._has_token(token):  # a piece of the model: it keeps its id (and is now cut out whole)
            return self._token_to_id(token)
        index = self._sp_size + len(self._added)
        self._added[token] = index
        self._added_rev[index] = token
        return index

    def _base_vocab_size(self) -> int:
        return self._sp_size

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

    def _id_to_token(self, index: int) -> str:
        if 0 <= index < self._sp_size:
            return self.sp_model.id_to_piece(index)
        token = self._added_rev.get(index)
        if token is None:
            raise ValueError(f"token id {index} is out of range: the vocabulary has {self.vocab_size} ids")
        return token

    @property
    def vocab_size(self) -> int:
        """SentencePiece pieces plus the appended special tokens."""
        return self._sp_size + len(self._added)

    def get_vocab(self) -> dict[str, int]:
        vocab = {self.sp_model.id_to_piece(i): i for i in range(self._sp_size)}
        vocab.update(self._added)
        return vocab

    def __repr__(self) -> str:
        return (
            f"FNetTokenizer(vocab_file={self.vocab_file!r}, vocab_size={self.vocab_size}, "
            f"do_lower_case={self.do_lower_case}, remove_space={self.remove_space}, "
            f"keep_accents={self.keep_accents}, model_max_length={self.model_max_length}, "
            f"special_tokens={self.special_tokens_map})"
        )

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        # the tokens past the model come back at their ids
        state["_saved_added"] = {i: (t, self._added_tokens.get(t, True)) for t, i in self._added.items()}
        for key in ("sp_model", "_special_re", "_comma_ids", "_added", "_added_rev", "_special_ids",
                    "_all_special_ids_set", "_added_ids_set", "_plain_added"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self._vocab_file_name == VOCAB_JSON_NAME:
            self._use_model(UnigramJson.from_bytes(self._sp_bytes).with_unk(self.unk_token), self._sp_bytes,
                            VOCAB_JSON_NAME)
        else:
            self._load_model(None, serialized=self._sp_bytes)

    # ---------------------------------------------------------------------------------------------
    # encoding

    def preprocess_text(self, text: str) -> str:
        """The string SentencePiece sees for ``text`` (whitespace, quotes, accents, case)."""
        return normalize(text, self.remove_space, self.keep_accents, self.do_lower_case)

    def _resplit_comma(self, pieces: list[str], offsets: list[tuple[int, int]] | None, pre: str):
        """Apply the ALBERT digit-comma rule to one segment's pieces (and their offsets)."""
        new_pieces: list[str] = []
        new_offsets: list[tuple[int, int]] | None = None if offsets is None else []
        for k, piece in enumerate(pieces):
            if _ends_in_digit_comma(piece):
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
                    new_offsets.extend(digit_comma_offsets(offsets[k], pre, sub, cur))
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
                if any(_ends_in_digit_comma(p) for p in pieces):
                    pieces, _ = self._resplit_comma(pieces, None, pre)
                out.append((None, pieces, None))
            return out
        results = sp.encode(pres, out_type=int, num_threads=self.num_threads)
        for pre, ids in zip(pres, results):
            if self._needs_resplit(ids, pre):
                pieces = sp.encode(pre, out_type=str)
                if any(_ends_in_digit_comma(p) for p in pieces):
                    pieces, _ = self._resplit_comma(pieces, None, pre)
                    ids = [self._piece_id(p) for p in pieces]
            out.append((ids, None, None))
        return out

    def _needs_resplit(self, ids: list[int], pre: str) -> bool:
        return bool((self._comma_ids and not self._comma_ids.isdisjoint(ids)) or (self._sp_unk in ids and "," in pre))

    def _piece_id(self, piece: str) -> int:
        return self.sp_model.piece_to_id(piece)

    def _encode_batch(
        self,
        texts: Sequence[Any],
        split_words: bool = False,
        want_tokens: bool = False,
        want_offsets: bool = False,
    ) -> list[EncodedText]:
        """Encode many texts (str, or lists of words when ``split_words``) without special tokens."""
        # plan: every text becomes parts; text parts are preprocessed and batched through SentencePiece
        plans: list[list[tuple]] = []
        pres: list[str] = []
        aligns: list[tuple[Any, Any] | None] = []
        special_re = self._special_re
        options = (self.remove_space, self.keep_accents, self.do_lower_case)
        for text in texts:
            if split_words:
                chunks = [(w, i) for i, w in enumerate(text)]
            else:
                chunks = [(text, None)]
            plan = []
            for chunk, word_index in chunks:
                if special_re.search(chunk) is None:
                    parts = [("text", chunk, 0, len(chunk))]
                else:
                    parts = split_special_tokens(chunk, special_re, self.mask_token)
                for kind, value, start, end in parts:
                    if kind == "special":
                        plan.append(("special", (value, (start, end)), word_index))
                        continue
                    pre = normalize(value, *options)
                    if not want_offsets:
                        aligns.append(None)
                    elif pre == value:  # nothing changed: the alignment is the identity
                        aligns.append((range(start, start + len(pre)), range(start + 1, start + len(pre) + 1)))
                    else:
                        pre, starts, ends = normalize_aligned(value, *options, base=start)
                        aligns.append((starts, ends))
                    plan.append(("text", len(pres), word_index))
                    pres.append(pre)
            plans.append(plan)
        encoded = self._encode_segments(pres, want_tokens and not want_offsets, want_offsets)
        seqs: list[EncodedText] = []
        for plan in plans:
            # fast path: one text part, nothing else asked for
            if len(plan) == 1 and plan[0][0] == "text" and not (want_tokens or want_offsets or split_words):
                seqs.append(EncodedText(encoded[plan[0][1]][0]))
                continue
            ids: list[int] = []
            tokens: list[str] | None = [] if (want_tokens or want_offsets) else None
            offsets: list[tuple[int, int]] | None = [] if want_offsets else None
            words: list[int | None] | None = [] if split_words else None
            special_pos: list[int] | None = None
            for kind, value, word_index in plan:
                if kind == "special":
                    token, span = value
                    plain = token in self._plain_added  # an added token that is not special: a word, with a span
                    if not plain:
                        if special_pos is None:
                            special_pos = []
                        special_pos.append(len(ids))
                    ids.append(self._special_ids[token])
                    if tokens is not None:
                        tokens.append(token)
                    if offsets is not None:
                        offsets.append(span if plain else (0, 0))
                    if words is not None:
                        words.append(word_index if plain else None)
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
                    offsets.extend(map_offsets(seg_pieces, seg_offsets, pres[value], aligns[value]))
                if words is not None:
                    words.extend([word_index] * len(seg_ids))
            seqs.append(EncodedText(ids, tokens, offsets, words, special_pos))
        return seqs

    def _compute_word_ids(self, encoded: EncodedText) -> list[int | None]:
        """A piece starting with "▁" starts a new word; so does the first piece after a special token."""
        table = self._word_start_table()
        specials = set(encoded.special_pos or ())
        words: list[int | None] = []
        counter = -1
        after_special = True
        for k, i in enumerate(encoded.ids):
            if k in specials:
                words.append(None)
                after_special = True
                continue
            if i >= self._sp_size:  # an added token written in the text: a word of its own
                counter += 1
                words.append(counter)
                after_special = True
                continue
            if after_special or counter < 0 or (i < len(table) and table[i]):
                counter += 1
            after_special = False
            words.append(counter)
        return words

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
    # decoding

    def _decode_ids(self, ids: list[int]) -> str:
        if self._added_rev and any(i in self._added_rev for i in ids):
            return self._decode_with_added([self._id_to_token(i) for i in ids])
        return self.sp_model.decode(ids)

    def _decode_tokens(self, tokens: list[str]) -> str:
        if self._added and any(t in self._added for t in tokens):
            return self._decode_with_added(list(tokens))
        return self.sp_model.decode(tokens)

    def _decode_with_added(self, tokens: list[str]) -> str:
        """Pieces around added tokens, as transformers 5 decodes them: an added token's text as it is, the
        pieces after it with the space their "▁" stands for."""
        out, run = "", []
        for token in [*tokens, None]:
            if token is not None and token not in self._added:
                run.append(token)
                continue
            if run:
                text = self.sp_model.decode(run)
                out += " " + text if out and run[0].startswith(SPIECE_UNDERLINE) and text else text
                run = []
            if token is not None:
                out += token
        return out

    # ---------------------------------------------------------------------------------------------
    # files

    @classmethod
    def _vocabulary_file(cls, path: Path) -> Path:
        """``spiece.model``, else a Unigram ``tokenizer.json`` (what transformers 5 saves)."""
        if path.is_file():
            return path
        if not path.is_dir():
            raise TokenizerFileError(f"tokenizer path {str(path)!r} does not exist")
        for name in (VOCAB_FILE_NAME, VOCAB_JSON_NAME):
            if (path / name).is_file():
                return path / name
        found = sorted(p.name for p in path.iterdir())[:12]
        raise TokenizerFileError(
            f"no {VOCAB_FILE_NAME} or {VOCAB_JSON_NAME} in {str(path)!r}; the folder holds {found}. Save a "
            "tokenizer there with FNetTokenizer.save_pretrained or train one with FNetTokenizer.train"
        )

    @classmethod
    def _saved_options(cls, directory: Path) -> dict[str, Any]:
        options = super()._saved_options(directory)
        if not (directory / VOCAB_FILE_NAME).is_file():
            # a tokenizer.json: its normalizer says whether text is lower-cased and accents stripped
            options.pop("do_lower_case", None)
            options.pop("keep_accents", None)
        return options

    def _save_vocabulary(self, directory: Path) -> Path:
        """``spiece.model`` (when loaded from one) and ``tokenizer.json``: transformers 5 loads an FNet folder
        through its ``tokenizer.json`` (from ``spiece.model`` alone it builds a pipeline without lower-casing,
        word prefixes or ``[CLS]``/``[SEP]``)."""
        if self._vocab_file_name == VOCAB_JSON_NAME:
            return atomic_write_text(directory / VOCAB_JSON_NAME, self.sp_model.to_json(self))
        unigram = UnigramJson.from_sentencepiece(self.sp_model, self._sp_bytes)
        atomic_write_text(directory / VOCAB_JSON_NAME, unigram.to_json(self))
        return atomic_write_bytes(directory / VOCAB_FILE_NAME, self._sp_bytes)

    def _vocabulary_bytes(self) -> bytes:
        if self._vocab_file_name == VOCAB_JSON_NAME:
            return self.sp_model.canonical_bytes()
        return self._sp_bytes

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
        serialized = train_sentencepiece(
            files, vocab_size=vocab_size, model_type=model_type, character_coverage=character_coverage,
            input_sentence_size=input_sentence_size, shuffle_input_sentence=shuffle_input_sentence,
            do_lower_case=do_lower_case, remove_space=remove_space, keep_accents=keep_accents,
            max_sentence_length=max_sentence_length, seed=seed, num_threads=num_threads,
            user_defined_symbols=user_defined_symbols, split_by_number=split_by_number, **sentencepiece_options,
        )
        tokenizer = cls.__new__(cls)
        FNetTokenizer._init_from_bytes(
            tokenizer, serialized, do_lower_case=do_lower_case, remove_space=remove_space,
            keep_accents=keep_accents, model_max_length=model_max_length,
        )
        for piece, i in TRAIN_SPECIAL_IDS.items():
            if tokenizer.sp_model.id_to_piece(i) != piece:  # pragma: no cover - guards SentencePiece changes
                raise RuntimeError(f"trained model has {tokenizer.sp_model.id_to_piece(i)!r} at id {i}, not {piece!r}")
        if output_dir is not None:
            tokenizer.save_pretrained(output_dir)
        return tokenizer

    def _init_from_bytes(self, serialized: bytes, **options: Any) -> None:
        with tempfile.TemporaryDirectory(prefix="fnet-spm-") as directory:
            path = Path(directory) / VOCAB_FILE_NAME
            path.write_bytes(serialized)
            FNetTokenizer.__init__(self, path, **options)
        self.vocab_file = "(in memory: save_pretrained writes spiece.model)"
