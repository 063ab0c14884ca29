"""Tests for fnet.tokenization.FNetTokenizer (issue 3): exactness, special tokens, layout, offsets, words,
decoding, padding, truncation, tensors, save/load, bad input.

The segmentation oracle is ``sentencepiece.SentencePieceProcessor`` itself, applied to the text after
the reference preprocessing (re-implemented in tokenizer_oracle.py, independently of the tokenizer) and
with the ALBERT digit-comma rule.
"""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore:Token indices sequence length")
import sentencepiece as spm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fnet.tokenization import BatchEncoding, FNetTokenizer, TokenizerFileError
from fnet.tokenization.normalization import normalize_aligned
from fnet.tokenization.offsets import map_offsets
from tokenizer_oracle import (  # noqa: F401 (corpus_file, trained_dir: fixtures that `trained` needs)
    EN_1K, LONG, OPTIONS, SST2, STRINGS, U, corpus_file, en1k, generate_lines, model_path, ref_encode, ref_preprocess,
    trained, trained_dir,
)




@pytest.mark.parametrize("model", ["en1k", "ja8k", "trained"])
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults")
def test_pieces_and_ids_equal_sentencepiece(model, options, request):
    path = model_path(model, request)
    tok = FNetTokenizer(path, **options)
    sp = spm.SentencePieceProcessor(model_file=str(path))
    for text in STRINGS:
        pieces, ids = ref_encode(sp, text, **options)
        assert tok.tokenize(text) == pieces, (model, options, text[:80])
        assert tok.encode(text, add_special_tokens=False) == ids, (model, options, text[:80])
        assert tok.convert_tokens_to_ids(pieces) == [sp.piece_to_id(p) for p in pieces]
    # the batch path (one sentencepiece call for all texts) and the offsets path give the same ids
    batch = tok(STRINGS, add_special_tokens=False)["input_ids"]
    with_offsets = tok(STRINGS, add_special_tokens=False, return_offsets_mapping=True)["input_ids"]
    expected = [ref_encode(sp, t, **options)[1] for t in STRINGS]
    assert batch == expected
    assert with_offsets == expected


def test_defaults_equal_raw_sentencepiece_on_clean_text(en1k):
    """With the defaults, text without whitespace runs/quotes/special tokens is encoded exactly as raw sp."""
    sp = spm.SentencePieceProcessor(model_file=str(EN_1K))
    for text in ["Hello world", "the man worked as a teacher.", "café 日本 😀", "12 345"]:
        assert en1k.encode(text, add_special_tokens=False) == sp.encode(text)


def test_sst2_lines_equal_sentencepiece(en1k):
    if not SST2.is_file():
        pytest.skip(f"shared data not found: {SST2}")
    lines = [row.split("\t")[0] for row in SST2.read_text(encoding="utf-8").splitlines()[1:2001]]
    sp = spm.SentencePieceProcessor(model_file=str(EN_1K))
    got = en1k(lines, add_special_tokens=False)["input_ids"]
    assert got == [ref_encode(sp, t)[1] for t in lines]


def test_digit_comma_rule(trained):
    sp = trained.sp_model
    assert trained._comma_ids, "the generated corpus should give pieces like '2,'"
    raw = sp.encode("12, 3", out_type=str)
    assert any(p.endswith(",") and len(p) > 1 for p in raw)
    pieces = trained.tokenize("12, 3")
    assert pieces == ref_encode(sp, "12, 3")[0]
    assert "," in pieces and not any(len(p) > 1 and p.endswith(",") and p[-2].isdigit() for p in pieces)
    enc = trained("12, 3", add_special_tokens=False, return_offsets_mapping=True)
    assert [("12, 3")[s:e] for s, e in enc["offset_mapping"]][-3:-1] == [",", "3"] or "," in [
        "12, 3"[s:e] for s, e in enc["offset_mapping"]
    ]


def test_preprocessing(en1k):
    tok = FNetTokenizer(EN_1K, do_lower_case=True, keep_accents=False)
    assert tok.preprocess_text("  Héllo\t\tWörld ``x'' ") == 'hello world "x"'
    assert en1k.preprocess_text("  Héllo\t\tWörld ") == "Héllo Wörld"
    assert FNetTokenizer(EN_1K, remove_space=False).preprocess_text(" a  b ") == " a  b "


# ------------------------------------------------------------------------------------------------
# special tokens


def test_special_token_ids_trained(trained):
    assert (trained.unk_token_id, trained.pad_token_id, trained.cls_token_id) == (0, 3, 4)
    assert (trained.sep_token_id, trained.mask_token_id) == (5, 6)
    assert trained.vocab_size == len(trained) == 600
    vocab = trained.get_vocab()
    assert vocab["<s>"] == 1 and vocab["</s>"] == 2 and vocab["[MASK]"] == 6 and len(vocab) == 600
    # transformers 5's order: bos ([CLS]), eos ([SEP]), unk, sep, pad, cls, mask, without repeats
    assert trained.all_special_tokens == ["[CLS]", "[SEP]", "<unk>", "<pad>", "[MASK]"]
    assert trained.all_special_ids == [4, 5, 0, 3, 6]
    assert trained.model_input_names == ["input_ids", "token_type_ids"]


def test_special_tokens_appended_when_missing(en1k):
    # the 1k model has <unk> (0) but none of the others: they follow its 1000 pieces in a fixed order
    assert en1k.unk_token_id == 0
    assert (en1k.pad_token_id, en1k.cls_token_id, en1k.sep_token_id, en1k.mask_token_id) == (1000, 1001, 1002, 1003)
    assert en1k.vocab_size == len(en1k) == 1004
    assert en1k.convert_ids_to_tokens([1000, 1001, 1002, 1003]) == ["<pad>", "[CLS]", "[SEP]", "[MASK]"]
    assert en1k.get_vocab()["[MASK]"] == 1003


def test_layout_single_and_pair(trained):
    a = trained.encode("kola mope", add_special_tokens=False)
    b = trained.encode("wima", add_special_tokens=False)
    assert trained.build_inputs_with_special_tokens(a) == [4] + a + [5]
    assert trained.build_inputs_with_special_tokens(a, b) == [4] + a + [5] + b + [5]
    assert trained.create_token_type_ids_from_sequences(a) == [0] * (len(a) + 2)
    assert trained.create_token_type_ids_from_sequences(a, b) == [0] * (len(a) + 2) + [1] * (len(b) + 1)
    assert trained.get_special_tokens_mask(a) == [1] + [0] * len(a) + [1]
    assert trained.get_special_tokens_mask(a, b) == [1] + [0] * len(a) + [1] + [0] * len(b) + [1]
    full = trained.build_inputs_with_special_tokens(a, b)
    assert trained.get_special_tokens_mask(full, already_has_special_tokens=True) == [
        1 if i in (4, 5) else 0 for i in full
    ]
    enc = trained("kola mope", "wima", return_special_tokens_mask=True)
    assert enc["input_ids"] == full
    assert enc["token_type_ids"] == trained.create_token_type_ids_from_sequences(a, b)
    assert enc["special_tokens_mask"] == trained.get_special_tokens_mask(a, b)
    assert enc["attention_mask"] == [1] * len(full)
    assert enc.sequence_ids() == [None] + [0] * len(a) + [None] + [1] * len(b) + [None]


def test_mask_example_layout(trained):
    """The reference example: special tokens written in the text are single tokens; [MASK] eats the space."""
    enc = trained("the man worked as a [MASK].", "this is his [MASK].")
    enc_ids = enc["input_ids"]
    left = trained.encode("the man worked as a", add_special_tokens=False)
    dot = trained.encode(".", add_special_tokens=False)
    right = trained.encode("this is his", add_special_tokens=False)
    assert enc_ids == [4, *left, 6, *dot, 5, *right, 6, *dot, 5]
    assert enc["token_type_ids"] == [0] * (len(left) + len(dot) + 3) + [1] * (len(right) + len(dot) + 2)
    assert trained.tokenize("a [MASK]") == trained.tokenize("a[MASK]") == trained.tokenize("a    [MASK]")
    assert trained.tokenize("[CLS] x [SEP]")[0] == "[CLS]" and trained.tokenize("[CLS] x [SEP]")[-1] == "[SEP]"
    padded = trained("the man worked as a [MASK].", "this is his [MASK].", padding="max_length", max_length=512)
    assert len(padded["input_ids"]) == 512 and padded["input_ids"][len(enc_ids):] == [3] * (512 - len(enc_ids))


def test_layout_matches_transformers(trained):
    """The special-token layout (not the segmentation) agrees with transformers' FNetTokenizer."""
    transformers = pytest.importorskip("transformers")
    sp = trained.sp_model
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    try:
        hf = transformers.FNetTokenizer(vocab=vocab, do_lower_case=False, keep_accents=True)
    except Exception as err:  # pragma: no cover - depends on the installed transformers
        pytest.skip(f"cannot build transformers' FNetTokenizer from a vocabulary here: {err}")
    for args in [("kola mope lu",), ("kola mope lu", "wima lope"), ("the man worked as a [MASK].", "this is his [MASK].")]:
        ours = trained(*args, return_special_tokens_mask=True)
        theirs = hf(*args, return_special_tokens_mask=True)
        for key in ("input_ids", "token_type_ids", "special_tokens_mask"):
            assert ours[key] == theirs[key], (args, key)
    q, c = "kola mope", "kola mope lu wima lope kola sesu hurupo gakovi"
    ours = trained(q, c, truncation="only_second", max_length=22, stride=3, return_overflowing_tokens=True)
    theirs = hf(q, c, truncation="only_second", max_length=22, stride=3, return_overflowing_tokens=True)
    assert ours["input_ids"] == theirs["input_ids"]
    assert ours["overflow_to_sample_mapping"] == theirs["overflow_to_sample_mapping"]
    assert [ours.word_ids(i) for i in range(len(ours["input_ids"]))] == [
        theirs.word_ids(i) for i in range(len(theirs["input_ids"]))
    ]


# ------------------------------------------------------------------------------------------------
# offsets, words


@pytest.mark.parametrize(
    "text",
    ["Héllo   wörld  café", "  leading\tand   trailing  ", "日本語 の テキスト", "naïve ``quote'' x", "a 12, b 3,4"],
)
@pytest.mark.parametrize("options", [{}, {"keep_accents": False, "do_lower_case": True}, {"remove_space": False}])
def test_offsets_slice_back_to_original(trained, text, options):
    tok = FNetTokenizer(Path(trained.vocab_file), **options)
    enc = tok(text, return_offsets_mapping=True)
    tokens = enc.tokens()
    pieces = ["[CLS]"] + tok.tokenize(text) + ["[SEP]"]
    assert len(enc["offset_mapping"]) == len(pieces) == len(tokens)
    for piece, (s, e) in zip(pieces, enc["offset_mapping"]):
        assert 0 <= s <= e <= len(text)
        if piece in ("[CLS]", "[SEP]"):
            assert (s, e) == (0, 0)
            continue
        surface = text[s:e]
        if piece == U:
            continue
        assert surface.strip() == surface and surface  # spans do not start/end with whitespace
        body = piece.replace(U, "")
        if tok.sp_model.piece_to_id(piece) != tok.unk_token_id:
            assert ref_preprocess(surface, **options).replace(" ", "") == body.replace(" ", "") or body in ref_preprocess(
                surface, **options
            ), (piece, surface)


def test_offsets_cover_words_in_order(trained):
    text = "Kola   mope,  wima lope!  12,345 gakovi"
    enc = trained(text, return_offsets_mapping=True, add_special_tokens=False)
    pieces = trained.tokenize(text)
    spans = [span for piece, span in zip(pieces, enc["offset_mapping"]) if piece != U]
    assert "".join(text[s:e] for s, e in spans) == "".join(text.split())


def test_offsets_with_special_tokens_in_text(trained):
    text = "the man  [MASK] worked"
    enc = trained(text, return_offsets_mapping=True)
    tokens = enc.tokens()
    k = tokens.index("[MASK]")
    assert enc["offset_mapping"][k] == (0, 0)
    assert text[slice(*enc["offset_mapping"][-2])] == "worked"[-len(text[slice(*enc["offset_mapping"][-2])]):]


def test_word_ids(trained):
    enc = trained("kola mope  lu, wima")
    words = enc.word_ids()
    pieces = trained.tokenize("kola mope  lu, wima")
    assert words[0] is None and words[-1] is None
    expected, w = [], -1
    for piece in pieces:
        if piece.startswith(U) or w < 0:
            w += 1
        expected.append(w)
    assert words[1:-1] == expected
    assert max(x for x in words if x is not None) == 3


def test_split_into_words_for_ner(trained):
    words = ["Kola", "mope", "12,345", "lu"]
    enc = trained(words, is_split_into_words=True, return_offsets_mapping=True)
    ids = enc.word_ids()
    assert ids[0] is None and ids[-1] is None
    assert sorted(set(x for x in ids if x is not None)) == [0, 1, 2, 3]
    for token_word, (s, e) in zip(ids[1:-1], enc["offset_mapping"][1:-1]):
        assert 0 <= s <= e <= len(words[token_word])
    batch = trained([words, ["wima"]], is_split_into_words=True, padding=True)
    assert batch.word_ids(1)[:3] == [None, 0, 0] or batch.word_ids(1)[:3][:2] == [None, 0]
    assert len(batch["input_ids"][0]) == len(batch["input_ids"][1])


# ------------------------------------------------------------------------------------------------
# decode


def test_decode_round_trip(trained):
    for line in generate_lines(50, seed=3):
        ids = trained.encode(line)
        assert trained.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False) == " ".join(
            line.split()
        )
    text = "kola  mope ,  lu ."
    ids = trained.encode(text)
    assert trained.decode(ids, skip_special_tokens=True) == "kola mope, lu."
    assert trained.decode(ids).startswith("[CLS]") and trained.decode(ids).endswith("[SEP]")
    assert trained.batch_decode([ids, ids], skip_special_tokens=True) == ["kola mope, lu."] * 2
    assert trained.convert_tokens_to_string(trained.tokenize("kola mope")) == "kola mope"


def test_decode_tensor_and_mask(trained):
    torch = pytest.importorskip("torch")
    enc = trained("the man [MASK] lu", return_tensors="pt")
    assert "[MASK]" in trained.decode(enc["input_ids"][0])
    assert trained.batch_decode(enc["input_ids"], skip_special_tokens=True) == ["the man lu"]
    assert isinstance(enc["input_ids"], torch.Tensor)


def test_decode_accent_and_lower_normalisation(trained):
    tok = FNetTokenizer(Path(trained.vocab_file), keep_accents=False, do_lower_case=True)
    assert tok.decode(tok.encode("KOLA   Mopé"), skip_special_tokens=True) == "kola mope"


# ------------------------------------------------------------------------------------------------
# padding, truncation, windows, tensors


def test_padding_modes(trained):
    texts = ["kola", "kola mope lu wima lope"]
    plain = trained(texts)
    assert len(plain["input_ids"][0]) < len(plain["input_ids"][1])
    for padding in (True, "longest"):
        enc = trained(texts, padding=padding, return_special_tokens_mask=True, return_length=True)
        n = len(plain["input_ids"][1])
        assert all(len(r) == n for r in enc["input_ids"])
        short = len(plain["input_ids"][0])
        assert enc["input_ids"][0][short:] == [3] * (n - short)
        assert enc["attention_mask"][0] == [1] * short + [0] * (n - short)
        assert enc["token_type_ids"][0][short:] == [0] * (n - short)
        assert enc["special_tokens_mask"][0][short:] == [1] * (n - short)
        assert enc["length"] == [short, n]
        assert enc.word_ids(0)[short:] == [None] * (n - short)
    enc = trained(texts, padding="max_length", max_length=40)
    assert [len(r) for r in enc["input_ids"]] == [40, 40]
    enc = trained(texts, padding=True, pad_to_multiple_of=8)
    assert len(enc["input_ids"][0]) % 8 == 0
    for padding in (False, "do_not_pad"):
        assert trained(texts, padding=padding)["input_ids"] == plain["input_ids"]
    left = FNetTokenizer(Path(trained.vocab_file), padding_side="left")
    enc = left(texts, padding=True)
    assert enc["input_ids"][0][0] == 3 and enc["input_ids"][0][-1] == 5


def test_truncation_modes(trained):
    a, b = "kola mope lu wima lope kola sesu", "hurupo gakovi rejunuho"
    la = len(trained.encode(a, add_special_tokens=False))
    lb = len(trained.encode(b, add_special_tokens=False))
    for truncation in (True, "longest_first"):
        enc = trained(a, b, truncation=truncation, max_length=20)
        assert len(enc["input_ids"]) == 20
    enc = trained(a, b, truncation="only_first", max_length=lb + 3 + 4)
    assert enc["token_type_ids"].count(1) == lb + 1 and len(enc["input_ids"]) == lb + 7
    enc = trained(a, b, truncation="only_second", max_length=la + 3 + 2)
    assert enc["token_type_ids"].count(1) == 3
    enc = trained(a, truncation=True, max_length=6)
    assert len(enc["input_ids"]) == 6 and enc["input_ids"][0] == 4 and enc["input_ids"][-1] == 5
    # no truncation asked for: nothing is cut, and a (one-time) warning says so
    fresh = FNetTokenizer(Path(trained.vocab_file))
    with pytest.warns(UserWarning, match="truncation was not requested"):
        assert len(fresh(a, max_length=6)["input_ids"]) == la + 2
    for truncation in (False, "do_not_truncate", None):
        assert len(fresh(a, truncation=truncation, max_length=6)["input_ids"]) == la + 2
    # longest_first removes from the longer text first (as transformers does)
    enc = trained(a, b, truncation="longest_first", max_length=lb * 2 + 3)
    assert enc["token_type_ids"].count(0) - 2 == lb and enc["token_type_ids"].count(1) - 1 == lb


def test_overflow_windows_for_qa(trained):
    question = "kola mope"
    context = " ".join(generate_lines(5, seed=11))
    enc = trained(
        [question, "lu"],
        [context, "wima"],
        truncation="only_second",
        max_length=32,
        stride=8,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length",
    )
    mapping = enc["overflow_to_sample_mapping"]
    assert mapping[-1] == 1 and mapping.count(0) > 2 and mapping == sorted(mapping)
    ctx_ids = trained.encode(context, add_special_tokens=False)
    q_ids = trained.encode(question, add_special_tokens=False)
    rows = [i for i, m in enumerate(mapping) if m == 0]
    windows = []
    for i in rows:
        row = enc["input_ids"][i]
        assert len(row) == 32
        assert row[: len(q_ids) + 2] == [4, *q_ids, 5]
        seq = enc.sequence_ids(i)
        windows.append([t for t, s in zip(row, seq) if s == 1])
        for (s, e), sid in zip(enc["offset_mapping"][i], seq):
            if sid == 1:
                assert 0 <= s <= e <= len(context)
    room = 32 - 3 - len(q_ids)
    for k in range(len(windows) - 1):
        assert windows[k][-8:] == windows[k + 1][:8]  # stride tokens overlap
    rebuilt = windows[0] + [t for w in windows[1:] for t in w[8:]]
    assert rebuilt == ctx_ids
    assert all(len(w) == room for w in windows[:-1])
    # word ids keep the numbering of the whole context
    assert enc.word_ids(rows[1])[len(q_ids) + 2] is not None and enc.word_ids(rows[1])[len(q_ids) + 2] > 0


def test_overflow_single_text(trained):
    enc = trained("kola mope lu wima lope kola sesu", truncation=True, max_length=6, stride=1,
                  return_overflowing_tokens=True)
    assert isinstance(enc["input_ids"][0], list) and len(enc["input_ids"]) > 1
    assert set(enc["overflow_to_sample_mapping"]) == {0}


def test_return_tensors_pt(trained):
    torch = pytest.importorskip("torch")
    enc = trained(["kola", "kola mope lu"], padding=True, return_tensors="pt", return_offsets_mapping=True,
                  return_special_tokens_mask=True)
    n = enc["input_ids"].shape[1]
    assert enc["input_ids"].shape == (2, n) and enc["input_ids"].dtype == torch.long
    assert enc["token_type_ids"].shape == enc["attention_mask"].shape == (2, n)
    assert enc["offset_mapping"].shape == (2, n, 2)
    assert enc.input_ids is enc["input_ids"]
    assert enc.to("cpu") is enc and enc["input_ids"].device.type == "cpu"
    single = trained("kola mope", return_tensors="pt")
    assert single["input_ids"].dim() == 2 and single["input_ids"].shape[0] == 1
    assert trained.encode("kola", return_tensors="pt").shape[0] == 1
    with pytest.raises(ValueError, match="padding=True"):
        trained(["kola", "kola mope lu"], return_tensors="pt")


def test_attention_mask_and_token_types_optional(trained):
    enc = trained("kola", return_attention_mask=False, return_token_type_ids=False)
    assert list(enc.keys()) == ["input_ids"]


def test_pad_method(trained):
    rows = [trained("kola"), trained("kola mope lu wima")]
    enc = trained.pad([dict(r) for r in rows], return_tensors="pt")
    assert enc["input_ids"].shape[0] == 2 and enc["attention_mask"][0, -1].item() == 0
    enc = trained.pad({"input_ids": [[4, 10, 5], [4, 5]]}, padding="max_length", max_length=6)
    assert enc["input_ids"] == [[4, 10, 5, 3, 3, 3], [4, 5, 3, 3, 3, 3]]
    assert enc["attention_mask"] == [[1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]]
    single = trained.pad({"input_ids": [4, 10, 5]}, padding="max_length", max_length=4)
    assert single["input_ids"] == [4, 10, 5, 3]


def test_long_sequence_warns_once(trained):
    tok = FNetTokenizer(Path(trained.vocab_file), model_max_length=16)
    text = " ".join(generate_lines(3, seed=5))
    with pytest.warns(UserWarning, match="longer than the specified maximum"):
        ids = tok(text)["input_ids"]
    assert len(ids) > 16  # warned, not truncated
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tok(text)
        assert len(tok(text, truncation=True)["input_ids"]) == 16


def test_long_text_20k(trained):
    enc = trained(LONG, truncation=True, max_length=512, return_offsets_mapping=True)
    assert len(enc["input_ids"]) == 512
    full = trained(LONG, add_special_tokens=False)["input_ids"]
    assert enc["input_ids"][1:-1] == full[:510]


def test_batch_equals_single(trained):
    texts = generate_lines(20, seed=9) + ["", "the [MASK] x", "日本"]
    batch = trained(texts)
    assert batch["input_ids"] == [trained(t)["input_ids"] for t in texts]
    pairs = trained(texts, texts[::-1])
    assert pairs["input_ids"][3] == trained(texts[3], texts[::-1][3])["input_ids"]


# ------------------------------------------------------------------------------------------------
# hypothesis


FRAGMENT = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=4),
    st.sampled_from([" ", "  ", "\t", "\n", "\u00a0", "\u3000", ",", ".", "12,", "3,4", "`", "'", "``", "''",
                     "é", "e\u0301", "ü", "日本", "[MASK]", "[CLS]", "[SEP]", "<pad>", "<unk>", "kola", "Σ", "İ"]),
)
TEXT = st.lists(FRAGMENT, max_size=20).map("".join)


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(text=TEXT, options=st.sampled_from(OPTIONS))
@pytest.mark.filterwarnings("ignore:Token indices")
def test_property_offsets(trained, text, options):
    tok = FNetTokenizer(Path(trained.vocab_file), **options) if options else trained
    enc = tok(text, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    assert len(offsets) == len(enc["input_ids"])
    prev_s = prev_e = 0
    for s, e in offsets[1:-1]:
        assert 0 <= s <= e <= len(text)
        if (s, e) != (0, 0):
            assert s >= prev_s and e >= prev_e
            prev_s, prev_e = s, e
    # aligned preprocessing builds the same string as the fast one
    pre, starts, ends = normalize_aligned(text, tok.remove_space, tok.keep_accents, tok.do_lower_case)
    assert pre == tok.preprocess_text(text)
    # the shortcut for identity alignments gives the same spans as the general mapping
    res = tok.sp_model.encode(pre, out_type="offset_mapping")
    fast = map_offsets(res["pieces"], res["offsets"], pre, (starts, ends))
    general = map_offsets(res["pieces"], res["offsets"], pre, (list(starts), list(ends)))
    assert fast == general
    if not any(t in text for t in tok.all_special_tokens):
        assert tok.encode(text, add_special_tokens=False) == ref_encode(tok.sp_model, text, **options)[1]
    assert isinstance(tok.decode(enc["input_ids"]), str)


# ------------------------------------------------------------------------------------------------
# save / load


def test_save_and_load_round_trip(trained, tmp_path):
    tok = FNetTokenizer(Path(trained.vocab_file), do_lower_case=True, keep_accents=False, model_max_length=128)
    (tmp_path / "config.json").write_text('{"model_type": "fnet"}')
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    paths = tok.save_pretrained(tmp_path)
    assert sorted(Path(p).name for p in paths) == ["special_tokens_map.json", "spiece.model", "tokenizer_config.json"]
    assert (tmp_path / "config.json").read_text() == '{"model_type": "fnet"}'
    assert (tmp_path / "model.safetensors").read_bytes() == b"weights"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    loaded = FNetTokenizer.from_pretrained(tmp_path)
    assert (loaded.do_lower_case, loaded.keep_accents, loaded.model_max_length) == (True, False, 128)
    text = "KOLA Mopé [MASK] 12, 3"
    assert loaded(text) == tok(text)
    assert FNetTokenizer.from_pretrained(tmp_path, do_lower_case=False).do_lower_case is False
    assert FNetTokenizer.from_pretrained(tmp_path / "spiece.model").vocab_size == tok.vocab_size
    # saving again over the same folder works
    loaded.save_pretrained(tmp_path)


def test_load_transformers_layout(trained, tmp_path):
    """A folder as transformers writes it (option names, token dicts, 1e30 'no limit') loads."""
    (tmp_path / "spiece.model").write_bytes(Path(trained.vocab_file).read_bytes())
    config = {
        "added_tokens_decoder": {"6": {"content": "[MASK]", "lstrip": True, "normalized": False, "rstrip": False,
                                       "single_word": False, "special": True}},
        "bos_token": "[CLS]",
        "clean_up_tokenization_spaces": False,
        "cls_token": "[CLS]",
        "do_lower_case": True,
        "eos_token": "[SEP]",
        "keep_accents": False,
        "mask_token": {"content": "[MASK]", "lstrip": True, "normalized": False, "rstrip": False,
                       "single_word": False, "__type": "AddedToken"},
        "model_max_length": 1000000000000000019884624838656,
        "pad_token": "<pad>",
        "remove_space": True,
        "sep_token": "[SEP]",
        "tokenizer_class": "FNetTokenizer",
        "unk_token": "<unk>",
    }
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    (tmp_path / "special_tokens_map.json").write_text(json.dumps({"mask_token": config["mask_token"]}))
    tok = FNetTokenizer.from_pretrained(tmp_path)
    assert tok.do_lower_case and not tok.keep_accents and tok.mask_token == "[MASK]"
    assert tok.mask_token_id == 6 and tok.clean_up_tokenization_spaces is False
    assert tok.model_max_length >= 10**12
    assert tok("KOLA [MASK]")["input_ids"][-2] == 6


def test_pickle(trained):
    clone = pickle.loads(pickle.dumps(trained))
    assert clone("kola mope [MASK]") == trained("kola mope [MASK]")
    enc = pickle.loads(pickle.dumps(trained("kola mope")))
    assert isinstance(enc, BatchEncoding) and enc.input_ids == trained("kola mope")["input_ids"]


# bad input


def test_bad_inputs(trained, tmp_path):
    tok = trained
    for bad in (5, None, 3.5, b"bytes"):
        with pytest.raises(TypeError, match="must be a str"):
            tok(bad)
    with pytest.raises(TypeError, match="must be a str"):
        tok([1, 2, 3])
    with pytest.raises(TypeError, match="must be a str"):
        tok.tokenize(None)
    with pytest.raises(TypeError, match="must be a str"):
        tok.encode(12)
    with pytest.raises(TypeError, match="must be a str"):
        tok("a", 5)
    with pytest.raises(ValueError, match="same length"):
        tok(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="padding must be one of"):
        tok("a", padding="sideways")
    with pytest.raises(ValueError, match="truncation must be one of"):
        tok("a", truncation="middle")
    with pytest.raises(ValueError, match="return_tensors"):
        tok("a", return_tensors="tf")
    with pytest.raises(ValueError, match="too small"):
        tok("kola mope lu", "wima", truncation=True, max_length=2)
    with pytest.raises(ValueError, match=">= 1"):
        tok("a", max_length=0)
    with pytest.raises(TypeError, match="max_length must be an int"):
        tok("a", max_length="10")
    with pytest.raises(ValueError, match="only_second"):
        tok("kola mope", truncation="only_second", max_length=3)
    with pytest.raises(ValueError, match="first text alone"):
        tok("kola mope lu wima lope", "x", truncation="only_second", max_length=5)
    with pytest.raises(ValueError, match="stride"):
        tok("kola mope lu wima lope", truncation=True, max_length=5, stride=3, return_overflowing_tokens=True)
    with pytest.raises(ValueError, match="needs truncation"):
        tok("kola", return_overflowing_tokens=True)
    with pytest.raises(ValueError, match="longest_first"):
        tok("kola mope lu", "wima lope", truncation=True, max_length=6, return_overflowing_tokens=True)
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([10**6])
    with pytest.raises(TypeError, match="ints"):
        tok.decode(["a"])
    with pytest.raises(ValueError, match="already_has_special_tokens"):
        tok.get_special_tokens_mask([1], [2], already_has_special_tokens=True)
    no_pad = FNetTokenizer(Path(tok.vocab_file), pad_token=None)
    with pytest.raises(ValueError, match="no pad_token"):
        no_pad(["a", "b c"], padding=True)
    with pytest.raises(ValueError, match="no pad_token"):
        no_pad.pad({"input_ids": [[1], [1, 2]]})
    with pytest.raises(TypeError, match="do_lower_case"):
        FNetTokenizer(Path(tok.vocab_file), do_lower_case="yes")


def test_missing_and_corrupt_model(tmp_path):
    with pytest.raises(TokenizerFileError, match="not found"):
        FNetTokenizer(tmp_path / "spiece.model")
    with pytest.raises(ValueError, match="no spiece.model"):
        FNetTokenizer.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such tokenizer folder"):
        FNetTokenizer.from_pretrained(tmp_path / "nowhere")
    bad = tmp_path / "spiece.model"
    bad.write_bytes(b"this is not a sentencepiece model")
    with pytest.raises(ValueError, match="corrupt"):
        FNetTokenizer(bad)
    with pytest.raises(ValueError, match="corrupt"):
        FNetTokenizer.from_pretrained(tmp_path)


def test_bad_config_file(trained, tmp_path):
    (tmp_path / "spiece.model").write_bytes(Path(trained.vocab_file).read_bytes())
    (tmp_path / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="tokenizer_config.json"):
        FNetTokenizer.from_pretrained(tmp_path)


def test_load_folder_saved_by_transformers(trained, tmp_path):
    transformers = pytest.importorskip("transformers")
    sp = trained.sp_model
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    try:
        hf = transformers.FNetTokenizer(vocab=vocab, do_lower_case=True, keep_accents=False)
        hf.save_pretrained(tmp_path)
    except Exception as err:  # pragma: no cover - depends on the installed transformers
        pytest.skip(f"transformers cannot save an FNetTokenizer here: {err}")
    # transformers 5 writes tokenizer.json, not the SentencePiece model: it loads (issue 23; more in
    # test_transformers_surface.py)
    from_json = FNetTokenizer.from_pretrained(tmp_path)
    assert from_json.do_lower_case and not from_json.keep_accents
    assert from_json("kola mope", "lu")["input_ids"] == hf("kola mope", "lu")["input_ids"]
    (tmp_path / "spiece.model").write_bytes(Path(trained.vocab_file).read_bytes())
    tok = FNetTokenizer.from_pretrained(tmp_path)
    assert tok.do_lower_case and not tok.keep_accents
    assert tok("kola mope", "lu")["input_ids"] == hf("kola mope", "lu")["input_ids"]
