"""Task readers (classification, CoNLL, multiple choice) and their featurization.

Featurization runs against stand-in tokenizers built here with ``tokenizers`` and wrapped in
``transformers.PreTrainedTokenizerFast``: a SentencePiece-like unigram (offsets of ``▁word`` include
the preceding space, lone ``▁`` tokens) and a BERT-like WordPiece (lowercasing, accent stripping,
punctuation split). Featurization only uses the tokenizer interface that ``FNetTokenizer`` shares.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fnet.tasks import featurize, load_task_examples
from fnet.tasks.classification import read_classification
from fnet.tasks.multiple_choice import read_multiple_choice
from fnet.tasks.token_classification import read_conll, token_predictions_to_tags, word_ids_from_offsets
from conftest import SHARED_DATA

SHARED = SHARED_DATA  # ../shared/data, or $FNET_SHARED_DATA (tests/conftest.py)

CORPUS = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Redondo Beach Blvd is a long road in Los Angeles County, California.",
    "She said that the movie was wonderful, touching and far too long!",
    "Markets fell sharply on Tuesday after the central bank raised rates.",
    "Rick and Morty is an animated series about a scientist and his grandson.",
    "A man is sitting on a bench. He opens a newspaper and starts reading.",
    "Why is this person asking about divorce? He wants to marry again.",
    "The team won the championship in 1998, 2004 and again in 2011.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "I would not recommend this hotel: the room was dirty and noisy.",
] * 3


def make_tokenizer(kind: str, corpus=CORPUS):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
    if kind == "unigram":
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=300, special_tokens=specials, unk_token="<unk>")
    else:
        tok = Tokenizer(models.WordPiece(unk_token="<unk>"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials)
    tok.train_from_iterator(corpus, trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, cls_token="[CLS]", sep_token="[SEP]", pad_token="<pad>", unk_token="<unk>",
        mask_token="[MASK]", model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


@pytest.fixture(scope="module", params=["unigram", "wordpiece"])
def tokenizer(request):
    return make_tokenizer(request.param)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------
# classification reader
# --------------------------------------------------------------------------------------------------


def test_csv_header_string_labels_detected(tmp_path):
    path = write(tmp_path, "d.csv", 'id,review,label\n1,"great, really",pos\n2,awful,neg\n3,"fine\nmostly",neutral\n')
    ex = read_classification(path)
    assert ex.texts == ["great, really", "awful", "fine\nmostly"]
    assert ex.pairs is None
    assert ex.label_names == ["neg", "neutral", "pos"]  # sorted, independent of row order
    assert ex.labels == [2, 0, 1]
    assert ex.label2id == {"neg": 0, "neutral": 1, "pos": 2}
    assert ex.problem_type == "single_label_classification"


def test_headerless_tsv_by_index_like_agnews(tmp_path):
    path = write(tmp_path, "ag.tsv", 'Stocks "rally" again\tBusiness\nTeam wins cup\tSports\n')
    ex = read_classification(path)
    assert ex.texts == ['Stocks "rally" again', "Team wins cup"]  # TSV quotes are literal
    assert ex.label_names == ["Business", "Sports"] and ex.labels == [0, 1]
    swapped = write(tmp_path, "swapped.tsv", "World\tPeace talks resume\n")
    ex2 = read_classification(swapped, text_column=1, label_column=0, label_names=["Sports", "World"])
    assert ex2.texts == ["Peace talks resume"] and ex2.labels == [1]


def test_integer_labels_map_to_themselves_and_named_columns(tmp_path):
    path = write(tmp_path, "d.tsv", "sentence\tlabel\nok\t2\nmeh\t0\n")
    ex = read_classification(path)
    assert ex.label_names == ["0", "1", "2"] and ex.labels == [2, 0]  # a class absent here keeps its id
    path2 = write(tmp_path, "d2.tsv", "txt\ttarget_y\nhello\t1\n")
    ex2 = read_classification(path2, text_column="txt", label_column="target_y")
    assert ex2.texts == ["hello"] and ex2.labels == [1]


def test_jsonl_pairs_and_regression(tmp_path):
    rows = [{"sentence1": "A man sings.", "sentence2": "A person sings.", "label": 4.2},
            {"sentence1": "Cats.", "sentence2": "Dogs.", "label": "0.5"}]
    path = write(tmp_path, "sts.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    ex = read_classification(path)
    assert ex.problem_type == "regression"
    assert ex.pairs == ["A person sings.", "Dogs."]
    assert ex.labels == [4.2, 0.5] and ex.label_names is None and ex.num_labels == 1


def test_multi_label_delimited_and_json_list(tmp_path):
    path = write(tmp_path, "m.csv", 'text,labels\nx,sports|politics\ny,"[""tech""]"\nz,politics\n')
    ex = read_classification(path)
    assert ex.problem_type == "multi_label_classification"
    assert ex.label_names == ["politics", "sports", "tech"]
    assert ex.labels == [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    jl = write(tmp_path, "m.jsonl", '{"text": "a", "label": ["x", "y"]}\n{"text": "b", "label": ["y"]}\n')
    ex2 = read_classification(jl)
    assert ex2.labels == [[1.0, 1.0], [0.0, 1.0]]


def test_skip_empty_rows(tmp_path):
    path = write(tmp_path, "e.csv", "label,review\n1,good\n0,\n0,bad\n")
    with pytest.raises(ValueError, match=r"e\.csv:3: empty"):
        read_classification(path)
    ex = read_classification(path, skip_empty=True)
    assert ex.texts == ["good", "bad"] and ex.skipped == 1


MALFORMED = [
    # (file name, content, reader kwargs, line, what the message must say)
    ("fields.csv", "sentence,label\ngood,1\nbad,0,extra\n", {}, 3, "expected 2 fields, found 3"),
    ("emptytext.tsv", "sentence\tlabel\nfine\t1\n \t\t\n\t0\n", {}, 4, "empty or non-string text"),
    ("nolabel.csv", "sentence,label\nfine,\n", {}, 2, "empty label"),
    ("json.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": 1\n', {}, 2, "invalid JSON"),
    ("notobj.jsonl", '{"text": "a", "label": 1}\n[1, 2]\n', {}, 2, "JSON object"),
    ("missing.jsonl", '{"text": "a", "label": 1}\n{"text": "b"}\n', {}, 2, "missing column 'label'"),
    ("unknown.csv", "text,label\na,pos\nb,meh\n", {"label_names": ["neg", "pos"]}, 3, "unknown label 'meh'"),
    ("multi.csv", "text,label\na,x|y\nb,x|zz\n", {"label_names": ["x", "y"]}, 3, "unknown label 'zz'"),
    ("reg.csv", "text,label\na,0.5\nb,high\n", {"problem_type": "regression"}, 3, "bad regression label"),
    ("frac.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": 0.5}\n',
     {"problem_type": "single_label_classification"}, 2, "fractional"),
    ("nocol.csv", "text,label\na,1\n", {"text_column": "sentence"}, 1, "no column 'sentence'"),
]


@pytest.mark.parametrize("name,content,kwargs,line,what", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_classification_rows_name_file_and_line(tmp_path, name, content, kwargs, line, what):
    path = write(tmp_path, name, content)
    with pytest.raises(ValueError) as err:
        read_classification(path, **kwargs)
    message = str(err.value)
    assert f"{path}:{line}:" in message, message
    assert what in message, message


def test_unknown_format_and_headerless_without_columns(tmp_path):
    with pytest.raises(ValueError, match="format"):
        read_classification(write(tmp_path, "d.xml", "<a/>"))
    path = write(tmp_path, "wide.tsv", "a\tb\tc\td\n")
    with pytest.raises(ValueError, match=r"wide\.tsv:1: headerless file with 4 columns"):
        read_classification(path)


# --------------------------------------------------------------------------------------------------
# CoNLL reader
# --------------------------------------------------------------------------------------------------


CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
"""


def test_conll_reader_multi_column(tmp_path):
    ex = read_conll(write(tmp_path, "c.conll", CONLL))
    assert ex.sentences == [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"]]
    assert ex.tags == [["B-ORG", "O", "B-MISC", "O"], ["B-PER", "I-PER"]]
    assert ex.label_names == ["O", "B-MISC", "B-ORG", "B-PER", "I-PER"]


@pytest.mark.parametrize("content,line,what", [
    ("a\tO\nb\n", 2, "expected a token and a tag"),
    ("a\tO\nb\tB_PER\n", 2, "bad tag 'B_PER'"),
    ("a\tO\n\nb\tX\tO\n", 3, "expected 2 fields"),
    ("a\tO\nb\tB-XYZ\n", 2, "unknown tag 'B-XYZ'"),
])
def test_conll_malformed(tmp_path, content, line, what):
    path = write(tmp_path, "bad.conll", content)
    kwargs = {"label_names": ["O", "B-PER", "I-PER"]} if "XYZ" in content else {}
    with pytest.raises(ValueError) as err:
        read_conll(path, **kwargs)
    assert f"{path}:{line}:" in str(err.value) and what in str(err.value), str(err.value)


# --------------------------------------------------------------------------------------------------
# multiple-choice reader
# --------------------------------------------------------------------------------------------------


def test_multiple_choice_layouts(tmp_path):
    swag = write(tmp_path, "swag.csv",
                 "video-id,sent1,sent2,ending0,ending1,ending2,ending3,label\n"
                 "v1,A man sits down.,He,reads.,flies away.,eats a car.,sings loud.,0\n")
    ex = read_multiple_choice(swag)
    assert ex.layout == "swag" and ex.num_choices == 4 and ex.labels == [0] and ex.ids == ["v1"]
    assert ex.contexts == ["A man sits down."] and ex.questions == ["He"]
    cosmos = write(tmp_path, "c.jsonl", json.dumps(
        {"id": "q", "context": "ctx", "question": "why?", "answer0": "a", "answer1": "b", "answer2": "c",
         "answer3": "d", "label": 3}) + "\n")
    ex2 = read_multiple_choice(cosmos)
    assert ex2.layout == "cosmosqa" and ex2.endings == [["a", "b", "c", "d"]] and ex2.labels == [3]


@pytest.mark.parametrize("row,line,what", [
    ("c,q,a,b,c,d,4", 3, "bad label '4'"),
    ("c,q,a,,c,d,1", 3, "empty or non-string 'answer1'"),
    ("c,q,a,b,c,1", 3, "expected 7 fields"),
])
def test_multiple_choice_malformed(tmp_path, row, line, what):
    path = write(tmp_path, "mc.csv", "context,question,answer0,answer1,answer2,answer3,label\n"
                 "c,q,a,b,c,d,0\n" + row + "\n")
    with pytest.raises(ValueError) as err:
        read_multiple_choice(path)
    assert f"{path}:{line}:" in str(err.value) and what in str(err.value), str(err.value)


def test_multiple_choice_unknown_layout(tmp_path):
    with pytest.raises(ValueError, match="layout"):
        read_multiple_choice(write(tmp_path, "x.csv", "a,b,c\n1,2,3\n"))


# --------------------------------------------------------------------------------------------------
# featurization
# --------------------------------------------------------------------------------------------------


def test_featurize_classification(tmp_path, tokenizer):
    torch = pytest.importorskip("torch")
    path = write(tmp_path, "p.tsv", "sentence1\tsentence2\tlabel\nThe fox jumps.\tA dog sleeps.\tyes\n"
                 "Markets fell.\tRates rose.\tno\n")
    ex = load_task_examples("classification", path)
    feats = featurize("classification", ex, tokenizer, max_length=16)
    assert feats["input_ids"].shape == (2, 16)
    assert feats["labels"].tolist() == [1, 0] and feats["labels"].dtype == torch.long
    # the second text is segment 1, and the row decodes to both texts
    assert feats["token_type_ids"][0].max().item() == 1
    assert feats["input_ids"][0, 0].item() == tokenizer.cls_token_id
    reg = load_task_examples("regression", write(tmp_path, "r.csv", "text,score\na,1\nb,2\n"))
    rf = featurize("classification", reg, tokenizer, 8)
    assert rf["labels"].dtype == torch.float32 and rf["labels"].tolist() == [1.0, 2.0]


def _check_alignment(ex, feats, max_length):
    labels = feats["labels"].tolist()
    for i, k in enumerate(feats.meta["row_sample"]):
        tags = ex.tags[k]
        wids = feats.meta["word_ids"][i]
        labelled = [(t, lab) for t, lab in enumerate(labels[i]) if lab != -100]
        # exactly the first sub-token of each word that has one carries the word's tag (a window
        # that starts inside a word does not label that word)
        firsts = {}
        for t, w in enumerate(wids):
            if w is not None and w not in firsts and feats.meta["first_token"][i][t]:
                firsts[w] = t
        assert [t for t, _ in labelled] == sorted(firsts.values())
        for w, t in firsts.items():
            assert ex.label_names[labels[i][t]] == tags[w]
        # specials and padding are never labelled
        for t, tid in enumerate(feats["input_ids"][i].tolist()):
            if wids[t] is None:
                assert labels[i][t] == -100
    return True


def test_token_classification_alignment_round_trip(tmp_path, tokenizer):
    path = write(tmp_path, "t.conll",
                 "Redondo\tB-location\nBeach\tI-location\nBlvd\tI-location\n,\tO\nunbelievably\tO\n"
                 "Morty's\tB-creative-work\n\nemma\tB-person\nand\tO\nkaite\tB-person\n!!!\tO\n")
    ex = load_task_examples("ner", path)
    feats = featurize("ner", ex, tokenizer, max_length=48)
    assert _check_alignment(ex, feats, 48)
    # some word is split into several sub-tokens, so the -100 rule is exercised
    assert any(wids.count(w) > 1 for wids in feats.meta["word_ids"] for w in wids if w is not None)
    # gold ids (with -100 replaced) decode back to exactly the gold tags
    ids = feats["labels"].clamp(min=0)
    assert token_predictions_to_tags(ids, feats) == ex.tags
    # logits work too
    import torch

    logits = torch.nn.functional.one_hot(ids, len(ex.label_names)).float()
    assert token_predictions_to_tags(logits, feats) == ex.tags


def test_words_without_subtokens_and_truncation():
    from fnet.tasks.token_classification import TokenClassificationExamples

    wp = make_tokenizer("wordpiece")
    # U+0301 alone is stripped by the BERT normaliser: the word produces no token at all
    ex = TokenClassificationExamples(
        sentences=[["fox", "\u0301", "jumps"], ["the"] * 30 + ["fox"]],
        tags=[["B-X", "I-X", "O"], ["O"] * 30 + ["B-X"]],
        label_names=["O", "B-X", "I-X"],
    )
    feats = featurize("token_classification", ex, wp, max_length=12)
    assert 1 not in feats.meta["word_ids"][0]
    assert feats["labels"][0].tolist().count(-100) == 12 - 2
    decoded = token_predictions_to_tags(feats["labels"].clamp(min=0), feats)
    assert decoded[0] == ["B-X", "O", "O"]  # the token-less word is predicted O
    assert decoded[1] == ["O"] * 30 + ["B-X"]  # the long sentence is windowed: its last word is read too
    assert feats.meta["long_sentences"] == 1 and feats.meta["row_sample"].count(1) > 1


def test_word_ids_from_offsets_leading_space_tokens():
    words = ["ab", "c"]  # text "ab c"
    offsets = [(0, 0), (0, 2), (2, 3), (3, 4), (2, 4), (0, 0)]  # "▁c" style (2, 4) covers the space
    seq = [None, 0, 0, 0, 0, None]
    assert word_ids_from_offsets(words, offsets, seq) == [None, 0, None, 1, 1, None]


def test_featurize_multiple_choice(tmp_path, tokenizer):
    path = write(tmp_path, "mc.csv", "id,context,question,answer0,answer1,answer2,answer3,label\n"
                 + "x,\"" + "The fox jumps over the lazy dog near the river bank. " * 8 + "\",Why?,He wants to."
                 + ",Rates rose.,The dog sleeps.,None of the above choices.,1\n")
    ex = load_task_examples("multiple_choice", path)
    feats = featurize("multiple_choice", ex, tokenizer, max_length=40)
    assert feats["input_ids"].shape == (1, 4, 40)
    assert feats["labels"].tolist() == [1]
    # the context was truncated, the question + ending kept whole
    for k, ending in enumerate(ex.endings[0]):
        row = feats["input_ids"][0, k].tolist()
        kept = tokenizer("Why? " + ending, add_special_tokens=False)["input_ids"]
        sep = tokenizer.sep_token_id
        last_sep = len(row) - 1 - row[::-1].index(sep)
        assert row[last_sep - len(kept):last_sep] == kept
    # question + ending longer than max_length: falls back to truncating both
    long_q = write(tmp_path, "lq.csv", "context,question,answer0,answer1,label\nshort,"
                   + "why " * 60 + ",a,b,0\n")
    f2 = featurize("mc", load_task_examples("mc", long_q), tokenizer, max_length=24)
    assert f2["input_ids"].shape == (1, 2, 24)


def test_dispatch_errors(tmp_path, tokenizer):
    with pytest.raises(ValueError, match="unknown task"):
        load_task_examples("summarization", tmp_path / "x")
    ex = read_conll(write(tmp_path, "t.conll", "a\tO\n"))
    with pytest.raises(TypeError):
        featurize("classification", ex, tokenizer)


# --------------------------------------------------------------------------------------------------
# real data (../shared/data)
# --------------------------------------------------------------------------------------------------


def _shared(rel: str) -> Path:
    path = SHARED / rel
    if not path.exists():
        pytest.skip(f"{path} is absent (shared data is only on development and CI machines)")
    return path


def test_real_classification_files():
    sst = read_classification(_shared("classification/sst2/dev.tsv"))
    assert len(sst) == 6735 and sst.label_names == ["0", "1"]
    ag = read_classification(_shared("classification/agnews/dev.tsv"))
    assert len(ag) == 10001 and ag.label_names == ["Business", "Sci/Tech", "Sports", "World"]
    chn = read_classification(_shared("classification/chnsenticorp/chnsenticorp_htl_all.csv"), skip_empty=True)
    assert len(chn) + chn.skipped == 7766 and sum(chn.labels) == 5322


def test_real_conll_and_multiple_choice(tokenizer):
    wnut = read_conll(_shared("ner/wnut17/dev.conll"))
    assert len(wnut) == 1009 and "B-creative-work" in wnut.label_names
    sub = type(wnut)(sentences=wnut.sentences[:200], tags=wnut.tags[:200], label_names=wnut.label_names)
    feats = featurize("ner", sub, tokenizer, max_length=128)
    _check_alignment(sub, feats, 128)
    decoded = token_predictions_to_tags(feats["labels"].clamp(min=0), feats)
    # every word of every sentence is recovered (tweets: emoji, URLs, odd spacing; long ones windowed)
    assert decoded == sub.tags
    assert any(wids.count(w) > 1 for wids in feats.meta["word_ids"] for w in wids if w is not None)
    cosmos = read_multiple_choice(_shared("multiple_choice/cosmosqa_valid.csv"))
    assert len(cosmos) == 2985 and cosmos.num_choices == 4 and set(cosmos.labels) == {0, 1, 2, 3}


def _fnet_tokenizer():
    model = _shared("tokenizers/sentencepiece_test_en_1k.model")
    try:
        from fnet.tokenization import FNetTokenizer
    except ImportError as exc:  # pragma: no cover - the tokenizer module is part of the package
        pytest.skip(f"fnet.tokenization unavailable: {exc}")
    return FNetTokenizer(model)


def test_fnet_tokenizer_featurization():
    """The project's own SentencePiece tokenizer drives every featurizer the same way."""
    tok = _fnet_tokenizer()
    wnut = read_conll(_shared("ner/wnut17/dev.conll"))
    sub = type(wnut)(sentences=wnut.sentences[:300], tags=wnut.tags[:300], label_names=wnut.label_names)
    feats = featurize("ner", sub, tok, max_length=128)
    assert feats.meta["long_sentences"] >= 0
    assert set(feats) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    _check_alignment(sub, feats, 128)
    assert token_predictions_to_tags(feats["labels"].clamp(min=0), feats) == sub.tags
    cosmos = read_multiple_choice(_shared("multiple_choice/cosmosqa_valid.csv"))
    small = type(cosmos)(ids=cosmos.ids[:20], contexts=cosmos.contexts[:20], questions=cosmos.questions[:20],
                         endings=cosmos.endings[:20], labels=cosmos.labels[:20])
    mc = featurize("multiple_choice", small, tok, max_length=64)
    assert mc["input_ids"].shape == (20, 4, 64) and mc["labels"].tolist() == cosmos.labels[:20]
