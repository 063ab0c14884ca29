"""Tests for SentencePiece training (fnet.tokenization.training through FNetTokenizer.train)."""

from __future__ import annotations

import pytest

from fnet.tokenization import FNetTokenizer
from tokenizer_oracle import ZH_CORPUS, corpus_file, generate_lines, ref_encode  # noqa: F401 (fixture)


# training


def test_train_fixed_ids_english_generated(corpus_file, tmp_path):
    tok = FNetTokenizer.train(corpus_file, vocab_size=300, output_dir=tmp_path, model_type="bpe",
                              character_coverage=1.0, input_sentence_size=2000, num_threads=1)
    pieces = [tok.sp_model.id_to_piece(i) for i in range(7)]
    assert pieces == ["<unk>", "<s>", "</s>", "<pad>", "[CLS]", "[SEP]", "[MASK]"]
    assert tok.vocab_size == 300 and (tmp_path / "spiece.model").is_file()
    assert FNetTokenizer.from_pretrained(tmp_path)("kola mope")["input_ids"] == tok("kola mope")["input_ids"]


def test_train_on_very_long_lines(tmp_path):
    """A file whose lines are far longer than SentencePiece's sentence limit (like one speech per line)."""
    path = tmp_path / "long.txt"
    path.write_text("\n".join(" ".join(generate_lines(300, seed=s)) for s in range(3)) + "\n", encoding="utf-8")
    assert min(len(x) for x in path.read_text().splitlines()) > 16384
    tok = FNetTokenizer.train(path, vocab_size=300, character_coverage=1.0, num_threads=1)
    assert tok.vocab_size == 300


def test_train_lowercase(corpus_file):
    tok = FNetTokenizer.train(corpus_file, vocab_size=300, do_lower_case=True, character_coverage=1.0, num_threads=1)
    assert tok.do_lower_case
    assert not any(any(c.isupper() for c in tok.sp_model.id_to_piece(i)) for i in range(7, 300))


def test_train_chinese(tmp_path):
    if not ZH_CORPUS.is_file():
        pytest.skip(f"shared data not found: {ZH_CORPUS}")
    with open(ZH_CORPUS, encoding="utf-8") as handle:
        lines = [next(handle) for _ in range(300)]
    path = tmp_path / "zh.txt"
    path.write_text("".join(lines), encoding="utf-8")
    tok = FNetTokenizer.train([path], vocab_size=2000, character_coverage=0.9995, num_threads=1)
    assert [tok.convert_ids_to_tokens(i) for i in (0, 3, 4, 5, 6)] == ["<unk>", "<pad>", "[CLS]", "[SEP]", "[MASK]"]
    sp = tok.sp_model
    for line in lines[:50]:
        assert tok.encode(line, add_special_tokens=False) == ref_encode(sp, line)[1]
    unk_share = sum(i == 0 for line in lines for i in tok.encode(line)) / sum(len(tok.encode(x)) for x in lines)
    assert unk_share < 0.01


def test_train_bad_input(tmp_path, corpus_file):
    with pytest.raises(ValueError, match="not found"):
        FNetTokenizer.train([tmp_path / "missing.txt"], vocab_size=100)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(ValueError, match="no text"):
        FNetTokenizer.train([empty], vocab_size=100)
    with pytest.raises(ValueError, match="too big"):
        FNetTokenizer.train([corpus_file], vocab_size=50000, num_threads=1)
    with pytest.raises(ValueError, match="too small for the characters"):
        FNetTokenizer.train([corpus_file], vocab_size=20, character_coverage=1.0, num_threads=1)
    with pytest.raises(ValueError, match="model_type"):
        FNetTokenizer.train([corpus_file], vocab_size=100, model_type="wordpiece")
    with pytest.raises(ValueError, match="character_coverage"):
        FNetTokenizer.train([corpus_file], vocab_size=100, character_coverage=1.5)
    with pytest.raises(ValueError, match="at least one"):
        FNetTokenizer.train([], vocab_size=100)


# ------------------------------------------------------------------------------------------------
