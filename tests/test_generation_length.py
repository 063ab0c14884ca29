"""CGMH defaults that write sentences: the length prior, grow-then-polish moves, steps scaled with length."""

from __future__ import annotations

import json
import math

import pytest
import torch
from pretraining_helpers import make_words, train_tokenizer, write_corpus

from fnet import FNetConfig, FNetForMaskedLM
from fnet.generation import (GROW, POLISH, STEPS_PER_PIECE, GenerateConfig, LengthPrior, default_steps, generate,
                             growth_move_probabilities, resolve_length_prior)

WORDS = make_words(300)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("length") / "corpus.txt")


@pytest.fixture(scope="module")
def tokenizer(corpus, tmp_path_factory):
    return train_tokenizer(corpus, tmp_path_factory.mktemp("length-tok") / "tokenizer", vocab_size=300)


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    config = FNetConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, intermediate_size=64,
                        max_position_embeddings=64, hidden_dropout_prob=0.0, pad_token_id=tokenizer.pad_token_id)
    return FNetForMaskedLM(config).eval()


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
