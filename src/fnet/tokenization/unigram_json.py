"""A Unigram ``tokenizer.json`` (what transformers 5 saves for FNet/ALBERT, without ``spiece.model``) run by
the ``tokenizers`` library behind the calls ``FNetTokenizer`` makes on a ``SentencePieceProcessor``.

``FNetTokenizer`` keeps its own pipeline around the model (special and added tokens cut out first, the FNet
preprocessing, the ALBERT digit-comma rule, offsets mapped to the original text), so a ``tokenizer.json``
made from a SentencePiece model gives the ids of that model's ``spiece.model``. From the file come:

* the Unigram pieces, scores and unknown piece; unknown text gets the id of ``unk_token`` (transformers 5's
  ``FNetTokenizer(vocab=...)`` writes ``unk_id`` 1 whatever the vocabulary, which is ``<s>`` in FNet's);
* the ``Precompiled`` normalizer (SentencePiece's own NFKC-like character map), when present;
* ``do_lower_case``/``keep_accents`` (defaults of ``FNetTokenizer``): from its ``Lowercase`` and
  ``StripAccents`` steps;
* its ``added_tokens`` at their ids.

Normalizer steps other than the FNet/ALBERT ones, or another model type, are refused (one line saying what).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["UnigramJson", "VOCAB_JSON_NAME", "precompiled_charsmap"]

VOCAB_JSON_NAME = "tokenizer.json"
_U = "\u2581"
_UNK_SURFACE = " \u2047 "  # what SentencePiece decodes an unknown piece to
# Replace patterns of the FNet/ALBERT normalizer: the quotes, extra spaces, and the plain SentencePiece " " -> "▁"
_KNOWN_REPLACES = {"``", "''", " {2,}", " "}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _proto_bytes(data: bytes, path: tuple[int, ...]) -> bytes | None:
    """The bytes of a nested length-delimited protobuf field (``path``: field numbers), None when absent:
    enough of the wire format to read SentencePiece's character map without the ``protobuf`` package."""
    field, rest = path[0], path[1:]
    pos = 0
    try:
        while pos < len(data):
            key, pos = _varint(data, pos)
            number, wire = key >> 3, key & 7
            if wire == 0:
                _, pos = _varint(data, pos)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            elif wire == 2:
                size, pos = _varint(data, pos)
                if number == field:
                    value = data[pos:pos + size]
                    return _proto_bytes(value, rest) if rest else value
                pos += size
            else:
                return None
    except IndexError:
        return None
    return None


def precompiled_charsmap(model_bytes: bytes) -> bytes | None:
    """SentencePiece's character map (``ModelProto.normalizer_spec.precompiled_charsmap``) of ``spiece.model``
    bytes, or None."""
    return _proto_bytes(model_bytes, (3, 2))


def _steps(node: dict | None) -> list[dict]:
    if not node:
        return []
    if node.get("type") == "Sequence":
        return [s for child in node.get("normalizers", node.get("pretokenizers", [])) for s in _steps(child)]
    return [node]


def _pattern(step: dict) -> str | None:
    pattern = step.get("pattern") or {}
    return pattern.get("String", pattern.get("Regex"))


class UnigramJson:
    """The model of a Unigram ``tokenizer.json`` with the ``SentencePieceProcessor`` calls FNetTokenizer uses."""

    def __init__(self, data: dict, file_bytes: bytes, where: str):
        model = data.get("model") or {}
        if model.get("type") != "Unigram":
            raise ValueError(f"{where} holds a {model.get('type')!r} model, not a Unigram (SentencePiece) one; "
                             "FNetTokenizer reads Unigram tokenizer.json files (load WordPiece ones with "
                             "fnet.AutoTokenizer or WordPieceTokenizer)")
        self.where = where
        self.data = data
        self.file_bytes = file_bytes
        self.pieces = [str(p) for p, _ in model["vocab"]]
        self.scores = [float(s) for _, s in model["vocab"]]
        self._unk = model.get("unk_id")
        self.charsmap = None
        self.do_lower_case, self.keep_accents = False, True
        for step in _steps(data.get("normalizer")):
            kind = step.get("type")
            if kind == "Precompiled":
                self.charsmap = step.get("precompiled_charsmap")
            elif kind == "Lowercase":
                self.do_lower_case = True
            elif kind == "StripAccents":
                self.keep_accents = False
            elif kind == "NFKD" or (kind == "Replace" and _pattern(step) in _KNOWN_REPLACES):
                continue
            else:
                raise ValueError(f"{where}: normalizer step {json.dumps(step)[:80]} is not one of the FNet/ALBERT "
                                 "pipeline's (quotes, NFKD, StripAccents, Lowercase, Precompiled)")
        for step in _steps(data.get("pre_tokenizer")):
            if step.get("type") not in ("WhitespaceSplit", "Metaspace"):
                raise ValueError(f"{where}: pre-tokenizer {step.get('type')!r} is not the FNet/ALBERT pipeline's "
                                 "(WhitespaceSplit, Metaspace)")
        self.added_tokens = {int(t["id"]): {"content": t["content"], "special": bool(t.get("special", False))}
                             for t in data.get("added_tokens") or []}
        self._control = frozenset(i for i, t in self.added_tokens.items() if t["special"] and i < len(self.pieces))
        self._ids = {p: i for i, p in enumerate(self.pieces)}
        self._backend: Any = None

    @classmethod
    def from_sentencepiece(cls, sp: Any, serialized: bytes) -> UnigramJson:
        """The Unigram model of a ``SentencePieceProcessor`` (``serialized``: its ``spiece.model`` bytes), for
        writing the ``tokenizer.json`` transformers 5 loads beside ``spiece.model``."""
        import base64

        n = sp.get_piece_size()
        charsmap = precompiled_charsmap(serialized)
        data = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
                "normalizer": None, "pre_tokenizer": None, "post_processor": None, "decoder": None,
                "model": {"type": "Unigram", "unk_id": sp.unk_id(),
                          "vocab": [[sp.id_to_piece(i), sp.get_score(i)] for i in range(n)], "byte_fallback": False}}
        out = cls(data, b"", "spiece.model")
        out.charsmap = base64.b64encode(charsmap).decode("ascii") if charsmap else None
        return out

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> UnigramJson:
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as err:
            from fnet.tokenization.base import TokenizerFileError

            raise TokenizerFileError(f"cannot read {str(path)!r}: {err.strerror}") from None
        return cls.from_bytes(raw, repr(str(path)))

    @classmethod
    def from_bytes(cls, raw: bytes, where: str = "tokenizer.json") -> UnigramJson:
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read {where} as a tokenizer.json: {err}; re-save it with save_pretrained "
                             "or copy an intact tokenizer.json") from None
        if not isinstance(data, dict):
            raise ValueError(f"{where} must hold a JSON object")
        return cls(data, raw, where)

    def with_unk(self, unk_token: str) -> UnigramJson:
        """Unknown text gets the id of ``unk_token`` (when the model has that piece); builds the backend."""
        from tokenizers import Tokenizer, normalizers, pre_tokenizers
        from tokenizers.models import Unigram

        unk = self._ids.get(unk_token, self._unk)
        if unk is None:
            raise ValueError(f"{self.where} has no unknown piece: unk_token {unk_token!r} is not among its pieces")
        self._unk = unk
        backend = Tokenizer(Unigram(list(zip(self.pieces, self.scores)), unk_id=unk,
                                    byte_fallback=bool(self.data["model"].get("byte_fallback", False))))
        if self.charsmap:  # base64 in the file, bytes for the library
            import base64

            backend.normalizer = normalizers.Precompiled(base64.b64decode(self.charsmap))
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement=_U, prepend_scheme="always")])
        self._backend = backend
        return self

    # ---------------------------------------------------------------------------------------------
    # the SentencePieceProcessor calls

    def get_piece_size(self) -> int:
        return len(self.pieces)

    def id_to_piece(self, index: int) -> str:
        return self.pieces[index]

    def piece_to_id(self, piece: str) -> int:
        return self._ids.get(piece, self._unk)

    def get_score(self, index: int) -> float:
        return self.scores[index]

    def unk_id(self) -> int:
        return self._unk

    def is_unknown(self, index: int) -> bool:
        return index == self._unk

    def is_control(self, index: int) -> bool:
        return index in self._control and index != self._unk

    def is_unused(self, index: int) -> bool:
        return False

    def encode(self, text: str | list[str], out_type: Any = int, num_threads: int = -1) -> Any:
        """Ids, pieces or {"ids", "pieces", "offsets"} (spans into each string) of a string or a list of them."""
        del num_threads  # the tokenizers library parallelises batches itself
        single = isinstance(text, str)
        encodings = self._backend.encode_batch([text] if single else list(text), add_special_tokens=False)
        if out_type is int:
            out = [e.ids for e in encodings]
        elif out_type is str:
            out = [e.tokens for e in encodings]
        else:
            out = [{"ids": e.ids, "pieces": e.tokens, "offsets": e.offsets} for e in encodings]
        return out[0] if single else out

    def decode(self, items: list[Any]) -> str:
        """Text of ids or pieces, as SentencePiece decodes them (control pieces vanish, unknown ones are " ⁇ ")."""
        parts = []
        for item in items:
            index = item if isinstance(item, int) else self._ids.get(item, self._unk)
            if self.is_control(index):
                continue
            piece = item if isinstance(item, str) else self.pieces[index]
            parts.append(_UNK_SURFACE if index == self._unk else piece)
        text = "".join(parts).replace(_U, " ")
        return text[1:] if text.startswith(" ") else text

    # ---------------------------------------------------------------------------------------------
    # saving

    def canonical_bytes(self) -> bytes:
        """What decides the ids (pieces, scores, unknown id, character map): what ``fingerprint`` hashes, equal
        for a file and the file ``to_json`` writes from it."""
        return json.dumps({"vocab": list(zip(self.pieces, self.scores)), "unk_id": self._unk,
                           "charsmap": self.charsmap}, ensure_ascii=False).encode("utf-8")

    def to_json(self, tok: Any) -> str:
        """The tokenizer.json of ``tok`` (an FNetTokenizer on this model): transformers 5's FNet/ALBERT pipeline
        with ``tok``'s options, special layout and added tokens."""
        normalizer = [{"type": "Replace", "pattern": {"String": "``"}, "content": '"'},
                      {"type": "Replace", "pattern": {"String": "''"}, "content": '"'}]
        if not tok.keep_accents:
            normalizer += [{"type": "NFKD"}, {"type": "StripAccents"}]
        if tok.do_lower_case:
            normalizer.append({"type": "Lowercase"})
        if self.charsmap:
            normalizer.append({"type": "Precompiled", "precompiled_charsmap": self.charsmap})
        metaspace = {"type": "Metaspace", "replacement": _U, "prepend_scheme": "always", "split": True}
        cls_, sep = tok.cls_token, tok.sep_token

        def special(name: str, type_id: int) -> dict:
            return {"SpecialToken": {"id": name, "type_id": type_id}}

        def seq(name: str, type_id: int) -> dict:
            return {"Sequence": {"id": name, "type_id": type_id}}

        data = dict(self.data)
        data["model"] = {**self.data["model"], "unk_id": self._unk}
        data["truncation"] = None
        data["padding"] = None
        data["normalizer"] = {"type": "Sequence", "normalizers": normalizer}
        data["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, metaspace]}
        data["decoder"] = metaspace
        data["post_processor"] = {
            "type": "TemplateProcessing",
            "single": [special(cls_, 0), seq("A", 0), special(sep, 0)],
            "pair": [special(cls_, 0), seq("A", 0), special(sep, 0), seq("B", 1), special(sep, 1)],
            "special_tokens": {t: {"id": t, "ids": [tok.convert_tokens_to_ids(t)], "tokens": [t]} for t in (cls_, sep)},
        }
        data["added_tokens"] = [{"id": i, "content": t.content, "single_word": t.single_word, "lstrip": t.lstrip,
                                 "rstrip": t.rstrip, "normalized": t.normalized, "special": t.special}
                                for i, t in tok.added_tokens_decoder.items()]
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
