"""WordPiece (BERT) tokenizers against transformers' AutoTokenizer on the real all-MiniLM-L6-v2 files, and
AutoTokenizer's choice of kind by the files present."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from conftest import shared_data
from tokenizer_oracle import corpus_file, trained_dir  # noqa: F401 (fixtures)
from fnet.tokenization import AutoTokenizer, FNetTokenizer, TokenizerFileError, WordPieceTokenizer

transformers = pytest.importorskip("transformers")

HARD = [
    "Café naïve résumé — Ångström über façade",  # accents (stripped by the uncased normalizer)
    "北京欢迎你 and 東京 mixed with English",  # CJK: one word per character
    "Wait!!!... what?!?! (really) [[nested]] --- ok;;;",  # punctuation runs
    "pneumonoultramicroscopicsilicovolcanoconiosis " + "x" * 101 + " short",  # long words; >100 chars is [UNK]
    "tabs\tand\nnewlines\r\n  and   spaces \u00a0nbsp\u200bzero-width",  # whitespace and control characters
    "emoji 😀👍🏽 and math ∑∫ and symbols ©®™",
    "hello [MASK] world [SEP] glued[CLS]text [UNK]",  # special tokens written in the text
    "",
    "   ",
    "don't can't it's O'Neill's rock'n'roll",
    "1,000,000.50 $3.14 20% #1 @user e-mail@example.com http://x.y/z?a=b",
]
PAIRS = [
    ("a b c d e f", "g h i j k l m n o p q r"),
    ("g h i j k l m n o p q r", "a b c d e f"),
    ("one two three four five", "six seven eight nine ten"),
    ("Café naïve résumé — Ångström", "北京欢迎你 and 東京"),
]
KEYS = dict(return_offsets_mapping=True, return_special_tokens_mask=True)



@pytest.fixture(scope="module")
def vocab_txt_dir(minilm_dir, tmp_path_factory) -> Path:
    """The MiniLM vocabulary as a BERT folder with vocab.txt only (no tokenizer.json)."""
    vocab = json.loads((minilm_dir / "tokenizer.json").read_text())["model"]["vocab"]
    path = tmp_path_factory.mktemp("vocab-txt")
    (path / "vocab.txt").write_text("".join(t + "\n" for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])),
                                    encoding="utf-8")
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        (path / name).write_bytes((minilm_dir / name).read_bytes())
    return path


@pytest.fixture(scope="module", params=["tokenizer.json", "vocab.txt"])
def both(request, minilm_dir, vocab_txt_dir):
    folder = minilm_dir if request.param == "tokenizer.json" else vocab_txt_dir
    ours = AutoTokenizer.from_pretrained(folder)
    reference = transformers.AutoTokenizer.from_pretrained(str(folder))
    return ours, reference


def _lines(relative: str, n: int) -> list[str]:
    path = shared_data(relative)
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [line.split("\t")[0] for line in lines[:n]]


def _plain(enc) -> dict:
    """Every value as nested lists (tensors too), offsets as tuples."""
    def fix(value):
        value = value.tolist() if hasattr(value, "tolist") else value
        if isinstance(value, (list, tuple)):
            return [fix(v) for v in value]
        return value
    out = {k: fix(v) for k, v in enc.items()}
    if "offset_mapping" in out:
        rows = out["offset_mapping"]
        nested = rows and isinstance(rows[0][0], list)
        out["offset_mapping"] = [[tuple(p) for p in r] for r in rows] if nested else [tuple(p) for p in rows]
    return out


def assert_same(ours, reference, *args, **kwargs):
    got, want = ours(*args, **kwargs), reference(*args, **kwargs)
    got_d, want_d = _plain(got), _plain(want)
    assert set(got_d) == set(want_d), (sorted(got_d), sorted(want_d))
    for key in want_d:
        if got_d[key] != want_d[key]:
            rows = got_d[key] if isinstance(got_d[key][0], list) else [got_d[key]]
            refs = want_d[key] if isinstance(want_d[key][0], list) else [want_d[key]]
            for k, (g, w) in enumerate(zip(rows, refs)):
                if g != w:
                    at = next(i for i, (x, y) in enumerate(zip(g + [None], w + [None])) if x != y)
                    pytest.fail(f"{key} of row {k} differs at position {at}: ours {g[at:at + 4]}, transformers "
                                f"{w[at:at + 4]} (input {args!r:.120})")
    n = len(want["input_ids"]) if isinstance(want["input_ids"][0], list) else 1
    for i in range(n):
        assert got.word_ids(i) == want.word_ids(i), f"word_ids of row {i}"
    return got


def test_kind_by_files_present(minilm_dir, vocab_txt_dir, tmp_path):
    assert isinstance(AutoTokenizer.from_pretrained(minilm_dir), WordPieceTokenizer)
    tok = AutoTokenizer.from_pretrained(vocab_txt_dir)
    assert isinstance(tok, WordPieceTokenizer) and tok.vocab_file.endswith("vocab.txt")
    assert isinstance(AutoTokenizer.from_pretrained(minilm_dir / "tokenizer.json"), WordPieceTokenizer)
    empty = tmp_path / "no-tokenizer"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    with pytest.raises(TokenizerFileError) as err:
        AutoTokenizer.from_pretrained(empty)
    message = str(err.value)
    assert "\n" not in message and str(empty) in message and "--tokenizer" in message
    assert all(name in message for name in ("spiece.model", "tokenizer.json", "vocab.txt"))


def test_spiece_model_wins(trained_dir, minilm_dir, tmp_path):
    """A folder with spiece.model loads FNetTokenizer even when a tokenizer.json sits beside it."""
    folder = tmp_path / "both"
    folder.mkdir()
    for path in Path(trained_dir).iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "tokenizer.json").write_bytes((minilm_dir / "tokenizer.json").read_bytes())
    assert isinstance(AutoTokenizer.from_pretrained(folder), FNetTokenizer)


def test_real_sentences_match_transformers(both):
    ours, reference = both
    texts = _lines("classification/sst2/train.tsv", 200) + _lines("classification/agnews/test.tsv", 100)
    assert_same(ours, reference, texts, **KEYS)
    assert_same(ours, reference, texts[:64], padding=True, return_tensors="pt", **KEYS)
    assert_same(ours, reference, texts[64:128], truncation=True, max_length=24, padding="max_length", **KEYS)


def test_pairs_and_pair_truncation_match_transformers(both):
    ours, reference = both
    firsts = _lines("classification/agnews/test.tsv", 40)
    seconds = _lines("classification/sst2/train.tsv", 40)
    assert_same(ours, reference, firsts, seconds, **KEYS)
    for max_length in (9, 12, 13, 30, 64):
        assert_same(ours, reference, firsts, seconds, truncation=True, max_length=max_length, **KEYS)
        assert_same(ours, reference, [a for a, _ in PAIRS], [b for _, b in PAIRS], truncation="longest_first",
                    max_length=max_length, padding=True, **KEYS)
    assert_same(ours, reference, firsts, seconds, truncation="only_first", max_length=80, **KEYS)
    assert_same(ours, reference, seconds, firsts, truncation="only_second", max_length=80, **KEYS)


@pytest.mark.parametrize("text", HARD)
def test_hard_strings_match_transformers(both, text):
    ours, reference = both
    assert_same(ours, reference, text, **KEYS)
    assert_same(ours, reference, text, "second part, 北京!", **KEYS)
    assert ours.tokenize(text) == reference.tokenize(text)


def test_split_words_and_overflowing_windows_match_transformers(both):
    ours, reference = both
    words = [["Hello", "wörld", "[MASK]", "北京", "!!!"], ["one"], ["a", "b", "c"]]
    assert_same(ours, reference, words, is_split_into_words=True, **KEYS)
    question, context = "Who founded it?", " ".join(_lines("classification/agnews/test.tsv", 3))
    got = assert_same(ours, reference, question, context, truncation="only_second", max_length=32, stride=8,
                      return_overflowing_tokens=True, **KEYS)
    assert len(got["input_ids"]) > 2  # several windows


def test_decode_matches_transformers(both):
    ours, reference = both
    for text in HARD + _lines("classification/sst2/train.tsv", 20):
        ids = ours(text, "and a pair")["input_ids"]
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == reference.decode(ids, skip_special_tokens=skip)
        tokens = ours.convert_ids_to_tokens(ids)
        assert tokens == reference.convert_ids_to_tokens(ids)
        assert ours.convert_tokens_to_string(tokens) == reference.convert_tokens_to_string(tokens)


def test_save_load_round_trip_and_transformers_reads_it(minilm_dir, tmp_path):
    ours = AutoTokenizer.from_pretrained(minilm_dir, model_max_length=128)
    paths = ours.save_pretrained(tmp_path / "saved")
    assert Path(paths[0]).name == "tokenizer.json" and (tmp_path / "saved" / "vocab.txt").is_file()
    again = AutoTokenizer.from_pretrained(tmp_path / "saved")
    assert isinstance(again, WordPieceTokenizer) and again.model_max_length == 128 and again.do_lower_case is True
    reference = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "saved"))
    texts = HARD + [a for a, _ in PAIRS]
    assert again(texts)["input_ids"] == ours(texts)["input_ids"] == reference(texts)["input_ids"]
    clone = pickle.loads(pickle.dumps(ours))
    assert clone(texts, **KEYS) == ours(texts, **KEYS)


def test_options_and_bad_files(minilm_dir, vocab_txt_dir, tmp_path):
    cased = WordPieceTokenizer.from_pretrained(vocab_txt_dir, do_lower_case=False)
    assert cased.tokenize("Hello") == ["[UNK]"]  # an uncased vocabulary has no "H"-words
    assert cased.do_lower_case is False
    rebuilt = WordPieceTokenizer.from_pretrained(minilm_dir, do_lower_case=False)  # overrides tokenizer.json
    assert rebuilt.tokenize("Hello") == ["[UNK]"] and rebuilt.do_lower_case is False
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read"):
        WordPieceTokenizer(bad)
    with pytest.raises(ValueError, match="lacks the special tokens"):
        WordPieceTokenizer(vocab_txt_dir / "vocab.txt", cls_token="<s>")
    roberta_like = json.loads((minilm_dir / "tokenizer.json").read_text())
    roberta_like["post_processor"] = {"type": "RobertaProcessing", "sep": ["[SEP]", 102], "cls": ["[CLS]", 101],
                                      "trim_offsets": True, "add_prefix_space": False}
    other = tmp_path / "other" / "tokenizer.json"
    other.parent.mkdir()
    other.write_text(json.dumps(roberta_like))
    with pytest.raises(ValueError, match="not BERT's"):
        WordPieceTokenizer(other)


def test_wordpiece_by_hub_id_offline(minilm_dir, tmp_path, monkeypatch):
    from hub_helpers import add_to_hub_cache

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tokenizer_files = tmp_path / "files"
    tokenizer_files.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (tokenizer_files / name).write_bytes((minilm_dir / name).read_bytes())
    add_to_hub_cache(tmp_path / "hub", "sentence-transformers/all-MiniLM-L6-v2", tokenizer_files)
    tok = AutoTokenizer.from_pretrained("sentence-transformers/all-MiniLM-L6-v2", cache_dir=tmp_path / "hub")
    assert isinstance(tok, WordPieceTokenizer)
    assert tok(HARD)["input_ids"] == AutoTokenizer.from_pretrained(minilm_dir)(HARD)["input_ids"]
    with pytest.raises(FileNotFoundError) as err:
        AutoTokenizer.from_pretrained("someone/absent-tokenizer", cache_dir=tmp_path / "hub")
    assert "--tokenizer someone/absent-tokenizer" in str(err.value) and "offline" in str(err.value)
