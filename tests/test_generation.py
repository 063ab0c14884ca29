"""CGMH constrained generation: keywords are kept in order, bookkeeping, determinism, bad input."""

from __future__ import annotations

import math
import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pretraining_helpers import make_words, train_tokenizer, write_corpus

from fnet import FNetConfig, FNetForMaskedLM, FNetForPreTraining, FNetForSequenceClassification
from fnet.generation import MaskedLMScorer, generate, load_generator, pseudo_log_likelihood

WORDS = make_words(300)  # the vocabulary write_corpus draws its sentences from


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generation")
    return train_tokenizer(write_corpus(folder / "corpus.txt"), folder / "tokenizer", vocab_size=300)


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    config = FNetConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, intermediate_size=64,
                        max_position_embeddings=64, hidden_dropout_prob=0.0, pad_token_id=tokenizer.pad_token_id)
    return FNetForMaskedLM(config).eval()


def _in_order(words: list[str], keywords: list[str]) -> bool:
    """Whether ``keywords`` are a subsequence of ``words`` (each keyword a whole word)."""
    remaining = iter(words)
    return all(any(word == keyword for word in remaining) for keyword in keywords)


def test_a_bare_word_boundary_piece_is_never_proposed(model, tokenizer):
    """A lone '\u2581' decodes to nothing, so a sentence holding it would print as fewer pieces than it has
    (a keyword plus it printed as the keyword alone)."""
    from fnet.generation import MaskedLMScorer

    bare = [i for i, p in enumerate(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))) if p == "\u2581"]
    assert bare, "the test tokenizer should have the bare boundary piece"
    assert all(bool(MaskedLMScorer(model, tokenizer).banned[i]) for i in bare)


@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keywords=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3), seed=st.integers(0, 1000))
def test_every_sample_keeps_every_keyword_in_order_and_is_longer(model, tokenizer, keywords, seed):
    samples = generate(model, tokenizer, keywords, num_samples=2, steps=12, seed=seed)
    keyword_pieces = sum(len(tokenizer.encode(w, add_special_tokens=False)) for w in keywords)
    for sample in samples:
        assert set(sample) == {"text", "score", "accepted", "proposed", "target_length"}
        assert _in_order(sample["text"].split(), keywords), (keywords, sample["text"])
        assert len(tokenizer.encode(sample["text"], add_special_tokens=False)) > keyword_pieces, sample
        assert 0 <= sample["accepted"] <= sample["proposed"] == 12
        assert math.isfinite(sample["score"]) and sample["score"] < 0


def test_the_same_seed_gives_the_same_samples(model, tokenizer):
    first = generate(model, tokenizer, [WORDS[5]], num_samples=2, steps=20, seed=3)
    assert first == generate(model, tokenizer, [WORDS[5]], num_samples=2, steps=20, seed=3)
    assert first != generate(model, tokenizer, [WORDS[5]], num_samples=2, steps=20, seed=4)
    # chain k is seeded seed + k, whatever the number of samples
    assert generate(model, tokenizer, [WORDS[5]], num_samples=1, steps=20, seed=4)[0] == first[1]


def test_annealing_and_length_bounds(model, tokenizer):
    samples = generate(model, tokenizer, [WORDS[7]], num_samples=2, steps=25, seed=0, temperature=2.0,
                       final_temperature=0.1, min_length=4, max_length=6)
    for sample in samples:
        assert 4 <= len(tokenizer.encode(sample["text"], add_special_tokens=False)) <= 6
        assert sample["accepted"] <= sample["proposed"]


def test_pll_matches_a_direct_computation(model, tokenizer):
    text = " ".join(WORDS[:3])
    pll, pieces = pseudo_log_likelihood(model, tokenizer, text)
    ids = tokenizer.encode(text, add_special_tokens=False)
    expected = 0.0
    for i, piece in enumerate(ids):
        masked = ids[:i] + [tokenizer.mask_token_id] + ids[i + 1:]
        inputs = torch.tensor([[tokenizer.cls_token_id, *masked, tokenizer.sep_token_id]])
        with torch.no_grad():
            logits = model(input_ids=inputs).logits[0, i + 1]  # the model's own forward
        expected += float(torch.log_softmax(logits, -1)[piece])
    assert pieces == len(ids)
    assert pll == pytest.approx(expected, abs=1e-4)


def test_a_pretraining_model_works_too(tokenizer):
    config = FNetConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, intermediate_size=64,
                        max_position_embeddings=64, token_mixer="attention", num_attention_heads=2,
                        pad_token_id=tokenizer.pad_token_id)
    samples = generate(FNetForPreTraining(config), tokenizer, [WORDS[0]], steps=5)
    assert WORDS[0] in samples[0]["text"]


def test_unrepresentable_keyword_fails_in_one_line(model, tokenizer):
    with pytest.raises(ValueError, match="cannot represent.*--keywords") as err:
        generate(model, tokenizer, ["日本"], steps=1)
    assert "\n" not in str(err.value)


def test_model_without_mlm_head_fails_in_one_line(tokenizer, tmp_path):
    config = FNetConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, intermediate_size=64,
                        pad_token_id=tokenizer.pad_token_id)
    classifier = FNetForSequenceClassification(config)
    with pytest.raises(ValueError, match="no masked-LM head"):
        MaskedLMScorer(classifier, tokenizer)
    classifier.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="no trained masked-LM head.*fnet pretrain") as err:
        load_generator(tmp_path)
    assert "\n" not in str(err.value)


def test_load_generator_reads_a_pretraining_directory(model, tokenizer, tmp_path):
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, loaded_tokenizer = load_generator(tmp_path)
    keywords = [WORDS[9]]
    assert generate(loaded, loaded_tokenizer, keywords, steps=5) == generate(model, tokenizer, keywords, steps=5)


def test_a_bert_masked_lm_with_its_wordpiece_vocabulary_generates(tmp_path):
    """A transformers BERT MLM folder (vocab.txt, '##' continuations, [unusedN] reserved entries)."""
    transformers = pytest.importorskip("transformers")
    vocab = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "dog", "sat",
             "on", "a", "mat", "ran", "far", "##s", "##ly", "##ed", "."]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=48, max_position_embeddings=40)
    transformers.BertForMaskedLM(config).save_pretrained(tmp_path)
    model, tokenizer = load_generator(tmp_path)
    assert type(tokenizer).__name__ == "WordPieceTokenizer"
    text = dict(zip(vocab, tokenizer.text_piece_mask()))
    assert not any(text[t] for t in vocab[:7]) and all(text[t] for t in vocab[7:])  # specials, [unusedN] never drawn
    starts = dict(zip(vocab, tokenizer.word_start_mask()))
    assert starts["cat"] and not starts["##s"]
    for sample in generate(model, tokenizer, ["cat", "mat"], num_samples=3, steps=15, seed=1):
        words = re.findall(r"[\w#]+|[^\w\s]", sample["text"])  # BERT's words: decode glues "mat" + "." into "mat."
        assert _in_order(words, ["cat", "mat"]) and "[unused0]" not in sample["text"], sample
        assert sample["proposed"] == 15 and math.isfinite(sample["score"])
