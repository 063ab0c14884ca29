"""Tests for ``fnet tokenizer train`` (src/fnet/cli/tokenizer.py)."""

from __future__ import annotations

import random

import pytest

from fnet.cli.main import main
from fnet.tokenization import FNetTokenizer


def _write_corpus(path, n=2000, seed=0):
    rng = random.Random(seed)
    syllables = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 3))) for _ in range(800)]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 14))) for _ in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_train_then_load(tmp_path, capsys):
    corpus = _write_corpus(tmp_path / "a.txt")
    corpus2 = _write_corpus(tmp_path / "b.txt", n=500, seed=1)
    out = tmp_path / "tok"
    code = main(["tokenizer", "train", "--input", str(corpus), str(corpus2), "--vocab-size", "300",
                 "--output", str(out), "--character-coverage", "1.0", "--input-sentence-size", "5000"])
    assert code == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "300" in printed
    tok = FNetTokenizer.from_pretrained(out)
    assert tok.vocab_size == 300
    assert [tok.convert_ids_to_tokens(i) for i in range(7)] == ["<unk>", "<s>", "</s>", "<pad>", "[CLS]", "[SEP]",
                                                                "[MASK]"]
    assert tok("ba ko [MASK]")["input_ids"][0] == 4


def test_train_bpe_lowercase(tmp_path):
    corpus = _write_corpus(tmp_path / "a.txt")
    corpus.write_text(corpus.read_text().upper())
    out = tmp_path / "tok"
    assert main(["tokenizer", "train", "--input", str(corpus), "--vocab-size", "200", "--output", str(out),
                 "--model-type", "bpe", "--lowercase", "--character-coverage", "1"]) == 0
    tok = FNetTokenizer.from_pretrained(out)
    assert tok.do_lower_case and tok.tokenize("BAKO") == tok.tokenize("bako")


def test_errors_are_one_line(tmp_path, capsys):
    code = main(["tokenizer", "train", "--input", str(tmp_path / "missing.txt"), "--vocab-size", "100",
                 "--output", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert "missing.txt" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    corpus = _write_corpus(tmp_path / "a.txt", n=50)
    assert main(["tokenizer", "train", "--input", str(corpus), "--vocab-size", "90000", "--output",
                 str(tmp_path / "o")]) == 2
    assert "vocab_size" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--help"], ["tokenizer", "--help"], ["tokenizer", "train", "--help"]])
def test_help_on_every_level(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    assert "usage" in capsys.readouterr().out


def _exit_code(argv):
    """The exit status of a command, whether argparse (SystemExit) or fnet's one-line error path refused it."""
    try:
        return main(argv)
    except SystemExit as exit_info:
        return exit_info.code


def test_bad_arguments(tmp_path, capsys):
    assert _exit_code(["tokenizer", "train", "--input", "x", "--vocab-size", "-5", "--output", "o"]) == 2
    assert "--vocab-size" in capsys.readouterr().err
    assert _exit_code(["tokenizer", "train", "--input", "x", "--vocab-size", "10", "--output", "o",
                       "--model-type", "char"]) == 2
    assert _exit_code(["tokenizer", "train", "--input", "x", "--vocab-size", "10", "--output", "o",
                       "--character-coverage", "2"]) == 2
    assert "--character-coverage" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    capsys.readouterr()
    assert main(["tokenizer"]) == 2
    assert "train" in capsys.readouterr().out
