"""Shared by the tokenizer tests: the independent oracle (the reference preprocessing re-implemented,
then ``sentencepiece`` itself), generated text, the test strings and the tokenizer fixtures.

Shared data (../shared/data or $FNET_SHARED_DATA) is optional: tests that need it skip with a reason; a
model trained on generated text covers the same ground without it.
"""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

import pytest
import sentencepiece as spm

from fnet.tokenization import FNetTokenizer
from conftest import SHARED_DATA

SHARED = SHARED_DATA  # ../shared/data, or $FNET_SHARED_DATA (tests/conftest.py)
EN_1K = SHARED / "tokenizers" / "sentencepiece_test_en_1k.model"
JA_8K = SHARED / "tokenizers" / "sentencepiece_test_ja_8k.model"
ZH_CORPUS = SHARED / "corpus" / "zh" / "peoples_daily_199801.txt"
SST2 = SHARED / "classification" / "sst2" / "train.tsv"
U = "\u2581"


def generate_lines(n: int = 3000, seed: int = 0) -> list[str]:
    """Deterministic pseudo-English: syllable words, accents, numbers with commas, punctuation."""
    rng = random.Random(seed)
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["é", "ö", "ñ", "ç"]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(2000)]
    words += "the a man woman worked as is his her work wife job story name this that".split() * 20
    lines = []
    for _ in range(n):
        tokens = []
        for _ in range(rng.randint(3, 18)):
            r = rng.random()
            if r < 0.08:
                tokens.append(f"{rng.randint(1, 999)},{rng.randint(0, 999):03d}")
            elif r < 0.14:
                tokens.append(rng.choice([",", ".", "!", "?", "(", ")", '"', "'s", "2,", "12,"]))
            else:
                w = rng.choice(words)
                tokens.append(w.capitalize() if rng.random() < 0.1 else w)
        lines.append(" ".join(tokens))
    return lines


# ------------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "generated.txt"
    path.write_text("\n".join(generate_lines()) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory, corpus_file) -> Path:
    out = tmp_path_factory.mktemp("trained")
    FNetTokenizer.train([corpus_file], vocab_size=600, output_dir=out, character_coverage=1.0, num_threads=1)
    return out


@pytest.fixture(scope="session")
def trained(trained_dir) -> FNetTokenizer:
    return FNetTokenizer.from_pretrained(trained_dir)


@pytest.fixture(scope="session")
def en1k() -> FNetTokenizer:
    if not EN_1K.is_file():
        pytest.skip(f"shared data not found: {EN_1K} (set FNET_SHARED_DATA)")
    return FNetTokenizer(EN_1K)


def model_path(name: str, request) -> Path:
    if name == "trained":
        return Path(request.getfixturevalue("trained_dir")) / "spiece.model"
    path = {"en1k": EN_1K, "ja8k": JA_8K}[name]
    if not path.is_file():
        pytest.skip(f"shared data not found: {path} (set FNET_SHARED_DATA)")
    return path


# ------------------------------------------------------------------------------------------------
# the oracle


def ref_preprocess(text: str, remove_space=True, keep_accents=True, do_lower_case=False) -> str:
    if remove_space:
        text = " ".join(text.strip().split())
    text = text.replace("``", '"').replace("''", '"')
    if not keep_accents:
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c))
    if do_lower_case:
        text = text.lower()
    return text


def ref_encode(sp: spm.SentencePieceProcessor, text: str, **options) -> tuple[list[str], list[int]]:
    """SentencePiece on the preprocessed text, plus the ALBERT digit-comma rule."""
    pre = ref_preprocess(text, **options)
    pieces = sp.encode(pre, out_type=str)
    out: list[str] = []
    changed = False
    for piece in pieces:
        if len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit():
            changed = True
            sub = sp.encode(piece[:-1].replace(U, ""), out_type=str)
            if piece[0] != U and sub[0][0] == U:
                sub = sub[1:] if len(sub[0]) == 1 else [sub[0][1:]] + sub[1:]
            out += sub + [","]
        else:
            out.append(piece)
    if not changed:  # then the ids are exactly sentencepiece's own
        return out, sp.encode(pre, out_type=int)
    return out, [sp.piece_to_id(p) for p in out]


LONG = " ".join(generate_lines(400, seed=7))[:20000]
STRINGS = [
    "",
    " ",
    "   \t\n ",
    "Hello world",
    "the man worked as a teacher.",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\r\nhere",
    "multiple     spaces    between",
    "accents: café naïve résumé Ångström façade",
    "1,000,000 and 12,345.67 and 3, 4",
    "digits 2, 3, 42, 999,",
    "x12,y 7,8, 0,",
    "CJK 日本語のテキスト 中文测试 한국어",
    "日本語だけの文です。",
    "emoji 😀👍🏽 family 👨\u200d👩\u200d👧 !",
    "mixed Ελληνικά Русский עברית العربية हिन्दी",
    "``quoted'' text and ``more''",
    "'''''` odd quotes ``",
    "full-width ＡＢＣ１２３，",
    "ligature ﬁne and ½",
    "zero\u200bwidth\u200c joiners",
    "control \x00\x01\x7f chars",
    "ΣΊΣΥΦΟΣ ΟΔΟΣ σίσυφος",
    "İstanbul DİYARBAKIR",
    "non-breaking\u00a0space and\u2003em\u3000ideographic",
    "e\u0301 combining a\u0308",
    "!!!???...,,,;;;",
    "a" * 300,
    "Ḁ̴̛̗͔̓̈́ z̸͍̓a̷̼͝l̵̮̊g̶͚̈ő̸̠",
    LONG,
]
OPTIONS = [
    {},
    {"remove_space": False},
    {"keep_accents": False},
    {"do_lower_case": True, "keep_accents": False},
]


# ------------------------------------------------------------------------------------------------
# exactness against sentencepiece
