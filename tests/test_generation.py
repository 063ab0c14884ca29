"""CGMH constrained generation: keywords are kept in order, bookkeeping, determinism, bad input; the defaults
that write sentences (length prior, grow-then-polish moves, steps scaled with the length)."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pretraining_helpers import make_words, train_tokenizer, write_corpus

from fnet import FNetConfig, FNetForMaskedLM, FNetForPreTraining, FNetForSequenceClassification
from fnet.apps.generate import GenerateConfig, resolve_length_prior
from fnet.generation import (GROW, POLISH, STEPS_PER_PIECE, LengthPrior, MaskedLMScorer, default_steps,
                             generate, growth_move_probabilities, load_generator, pseudo_log_likelihood)

WORDS = make_words(300)  # the vocabulary write_corpus draws its sentences from


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("generation") / "corpus.txt")


@pytest.fixture(scope="module")
def tokenizer(corpus):
    return train_tokenizer(corpus, corpus.parent / "tokenizer", vocab_size=300)


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


# ----------------------------------------------------------------------------- defaults that write sentences


def test_the_prior_is_the_length_histogram_cut_to_the_bounds_and_smoothed():
    prior = LengthPrior.from_lengths([5, 5, 5, 10, 40, 0], "test")  # 40 is beyond the bound, 0 is no sentence
    p = prior.bounded(3, 12)
    assert len(p) == 13 and p[:3] == [0.0, 0.0, 0.0]
    assert sum(p) == pytest.approx(1.0, abs=1e-12)
    # the 4 in-bound sentences: 3 of 5 pieces, 1 of 10; the smoothing floor is 1e-3 of that mass over 10 lengths
    floor = 4 * 1e-3 / 10
    assert p[5] == pytest.approx((3 + floor) / (4 + 10 * floor)) and p[10] == pytest.approx((1 + floor) / (4 + 10 * floor))
    assert 0 < p[7] < 1e-3  # never seen: unlikely, not impossible
    assert prior.median(3, 12) == 5 and prior.median(6, 12) == 10
    # nothing inside the bounds: uniform over them
    assert LengthPrior.from_lengths([50], "long").bounded(3, 6)[3:] == pytest.approx([0.25] * 4)
    with pytest.raises(ValueError, match="no sentences"):
        LengthPrior.from_lengths([0], "empty")


def test_the_poisson_fallback_is_a_poisson():
    p = LengthPrior.poisson(16).bounded(1, 64)
    assert max(range(65), key=p.__getitem__) in (15, 16)  # the mode of Poisson(16)
    assert p[16] == pytest.approx(math.exp(16 * math.log(16) - 16 - math.lgamma(17)), rel=0.01)


def test_text_file_lengths_are_the_tokenised_sentences(corpus, tokenizer):
    prior = LengthPrior.from_text([corpus], tokenizer)
    sentences = [line for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    expected = LengthPrior.from_lengths([len(tokenizer.encode(s, add_special_tokens=False)) for s in sentences], "")
    assert prior.weights == expected.weights
    # a sample of at most max_sentences, seeded
    small = LengthPrior.from_text([corpus], tokenizer, max_sentences=10)
    assert sum(small.weights) == 10 and small == LengthPrior.from_text([corpus], tokenizer, max_sentences=10)
    with pytest.raises(ValueError, match="--length-from: .* is not a file"):
        LengthPrior.from_text([corpus.parent / "missing.txt"], tokenizer)


def test_the_model_folder_gives_its_pretraining_cache_else_its_files(corpus, tokenizer, tmp_path):
    """fnet pretrain leaves run_config.json (train_files) and the tokenised shards in OUTPUT/cache."""
    from fnet.data.pretraining import build_shards

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    assert LengthPrior.from_model_dir(model_dir, tokenizer) is None  # not a pretraining output
    (model_dir / "run_config.json").write_text(json.dumps({"train_files": [str(corpus)], "data_cache": None}))
    from_files = LengthPrior.from_model_dir(model_dir, tokenizer)
    assert from_files is not None and "sentences of" in from_files.source
    shards = build_shards([str(corpus)], tokenizer, model_dir / "cache")
    from_cache = LengthPrior.from_model_dir(model_dir, tokenizer)
    assert "cached in" in from_cache.source
    assert from_cache.weights == from_files.weights  # the same sentences, counted two independent ways
    (model_dir / "run_config.json").write_text(json.dumps({"train_files": [str(tmp_path / "gone.txt")]}))
    assert LengthPrior.from_model_dir(model_dir, tokenizer) is None  # neither the cache nor the files
    del shards
    config = GenerateConfig(model=str(model_dir), keywords=["x"])
    assert resolve_length_prior(config, tokenizer).source.startswith("a Poisson prior")
    with pytest.raises(ValueError, match="--no-length-prior"):
        resolve_length_prior(GenerateConfig(model=str(model_dir), keywords=["x"], length_prior=False,
                                            length_from=[str(corpus)]), tokenizer)
    assert resolve_length_prior(GenerateConfig(model=str(model_dir), keywords=["x"], length_prior=False), tokenizer) is None


def test_moves_grow_first_then_polish():
    assert growth_move_probabilities(0, 20) == pytest.approx(GROW)
    assert growth_move_probabilities(20, 20) == pytest.approx(POLISH) == growth_move_probabilities(35, 20)
    steps = [growth_move_probabilities(n, 20) for n in range(0, 26)]
    assert all(sum(m) == pytest.approx(1.0) and min(m) > 0 for m in steps)
    inserts = [m[1] for m in steps]
    assert all(a > b for a, b in zip(inserts[:20], inserts[1:21]))  # inserting falls until the target
    assert GROW[1] > GROW[0] + GROW[2] and POLISH[0] > POLISH[1]


def test_each_chain_draws_its_length_and_steps_scale_with_it(model, tokenizer):
    prior = LengthPrior.from_lengths([6] * 50 + [12] * 50, "two lengths")
    samples = generate(model, tokenizer, [WORDS[3]], num_samples=8, seed=0, length_prior=prior, steps=3)
    targets = [s["target_length"] for s in samples]
    assert set(targets) == {6, 12}, targets  # both lengths drawn, nothing else (the floor is 1e-3)
    for sample in samples:
        pieces = len(tokenizer.encode(sample["text"], add_special_tokens=False))
        assert pieces <= sample["target_length"], sample  # the chain's support ends at its target
    scaled = generate(model, tokenizer, [WORDS[3]], num_samples=1, seed=0,
                      length_prior=LengthPrior.from_lengths([5] * 10, "five"))
    assert scaled[0]["target_length"] == 5 and scaled[0]["proposed"] == default_steps(5)
    assert default_steps(10) == 10 * STEPS_PER_PIECE
    # chain k's length draw is its own: the same with one chain as with eight
    assert generate(model, tokenizer, [WORDS[3]], num_samples=1, seed=5, length_prior=prior, steps=3)[0] == samples[5]


def test_weighted_moves_grow_a_chain_faster_than_equal_ones(model, tokenizer):
    """The same few steps and target: inserting first leaves the chains longer than equal move weights."""
    prior = LengthPrior.from_lengths([14] * 10, "fourteen")
    grown = generate(model, tokenizer, [WORDS[8]], num_samples=3, seed=1, length_prior=prior, steps=10)
    flat = generate(model, tokenizer, [WORDS[8]], num_samples=3, seed=1, length_prior=prior, steps=10,
                    move_probabilities=(1 / 3, 1 / 3, 1 / 3))
    lengths = [len(tokenizer.encode(s["text"], add_special_tokens=False)) for s in grown]
    flat_lengths = [len(tokenizer.encode(s["text"], add_special_tokens=False)) for s in flat]
    assert sum(lengths) >= sum(flat_lengths) + 6, (lengths, flat_lengths)


def test_without_a_prior_the_chain_is_cgmh_s_pll_sum(model, tokenizer):
    samples = generate(model, tokenizer, [WORDS[2]], num_samples=2, seed=0, steps=10, length_prior=None,
                       max_length=20)
    assert all(s["proposed"] == 10 for s in samples)
    assert all(len(tokenizer.encode(s["text"], add_special_tokens=False)) <= 20 for s in samples)
