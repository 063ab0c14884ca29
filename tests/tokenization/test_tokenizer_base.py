"""TokenizerBase's contract: a kind that implements only the listed primitives gets the whole surface."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fnet.io import atomic_write_text
from fnet.tokenization import TokenizerBase
from fnet.tokenization.encoding import EncodedText

SPECIALS = ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"]


class WhitespaceTokenizer(TokenizerBase):
    """One token per whitespace-separated word, read from a vocab.txt (the primitives, nothing more)."""

    tokenizer_class = "WhitespaceTokenizer"
    option_names = ("lowercase",)

    def __init__(self, vocab_file, lowercase=False, **shared):
        self.lowercase = lowercase
        shared = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                  "mask_token": "[MASK]", **shared}
        super().__init__(**shared)
        self.vocab_file = str(vocab_file)
        self._tokens = Path(vocab_file).read_text(encoding="utf-8").split("\n")
        self._ids = {t: i for i, t in enumerate(self._tokens)}
        self._index_special_tokens()

    def _encode_batch(self, texts, split_words=False, want_tokens=False, want_offsets=False):
        out = []
        for text in texts:
            words = [(m.group(0), m.start(), m.end(), None) for m in re.finditer(r"\S+", text)] if not split_words \
                else [(w, 0, len(w), k) for k, w in enumerate(text)]
            tokens = [w.lower() if self.lowercase else w for w, _, _, _ in words]
            out.append(EncodedText([self._token_to_id(t) for t in tokens], tokens,
                                   [(s, e) for _, s, e, _ in words] if want_offsets else None,
                                   [k for _, _, _, k in words] if split_words else None))
        return out

    def _compute_word_ids(self, encoded):
        return list(range(len(encoded.ids)))

    def _token_to_id(self, token):
        return self._ids.get(token, self._ids["[UNK]"])

    def _id_to_token(self, index):
        if not 0 <= index < len(self._tokens):
            raise ValueError(f"token id {index} is out of range")
        return self._tokens[index]

    @property
    def vocab_size(self):
        return len(self._tokens)

    def get_vocab(self):
        return dict(self._ids)

    def _piece_role(self, index):
        return True, True  # every token is a whole word

    def _decode_ids(self, ids):
        return " ".join(self._tokens[i] for i in ids)

    def _decode_tokens(self, tokens):
        return " ".join(tokens)

    @classmethod
    def _vocabulary_file(cls, path):
        return path / "vocab.txt" if path.is_dir() else path

    def _save_vocabulary(self, directory):
        return atomic_write_text(directory / "vocab.txt", "\n".join(self._tokens))

    def _kind_options(self):
        return {"lowercase": self.lowercase}


@pytest.fixture
def tok(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(SPECIALS + ["a", "b", "c", "d"]), encoding="utf-8")
    return WhitespaceTokenizer(path)


def test_primitives_give_the_surface(tok, tmp_path):
    enc = tok(["a b", "c d d a"], ["c", "d"], padding=True, return_offsets_mapping=True,
              return_special_tokens_mask=True)
    assert enc["input_ids"] == [[3, 5, 6, 1, 7, 1, 2, 2], [3, 7, 8, 8, 5, 1, 8, 1]]
    assert enc["token_type_ids"][0] == [0, 0, 0, 0, 1, 1, 0, 0]
    assert enc["attention_mask"][0] == [1] * 6 + [0, 0]
    assert enc["special_tokens_mask"][0] == [1, 0, 0, 1, 0, 1, 1, 1]
    assert enc["offset_mapping"][1] == [(0, 0), (0, 1), (2, 3), (4, 5), (6, 7), (0, 0), (0, 1), (0, 0)]
    assert enc.word_ids(0) == [None, 0, 1, None, 0, None, None, None]
    cut = tok("a b c d", "a", truncation="only_first", max_length=6, stride=1, return_overflowing_tokens=True)
    assert cut["input_ids"] == [[3, 5, 6, 1, 5, 1], [3, 6, 7, 1, 5, 1], [3, 7, 8, 1, 5, 1]]
    assert tok.decode(enc["input_ids"][0], skip_special_tokens=True) == "a b c"
    assert tok.convert_ids_to_tokens([3, 5, 4, 1], skip_special_tokens=True) == ["a"]
    assert tok(["a", "b"], return_tensors="pt")["input_ids"].shape == (2, 3)
    tok.lowercase = True
    paths = tok.save_pretrained(tmp_path / "saved")
    assert [Path(p).name for p in paths] == ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json"]
    again = WhitespaceTokenizer.from_pretrained(tmp_path / "saved")
    assert again.lowercase and again("A b")["input_ids"] == [3, 5, 6, 1]


def test_a_kind_must_implement_every_primitive():
    class Partial(TokenizerBase):
        def _encode_batch(self, texts, split_words=False, want_tokens=False, want_offsets=False):
            return []

    with pytest.raises(TypeError, match="abstract"):
        Partial(unk_token="[UNK]", sep_token="[SEP]", pad_token=None, cls_token="[CLS]", mask_token=None)
