"""Shared by the pretraining tests: a synthetic corpus, a tokenizer trained on it, a tiny model config."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ve", "zu", "ga", "bri", "den", "for", "ul"]


def make_words(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def write_corpus(path: Path, n_docs: int = 40, sentences: tuple[int, int] = (4, 12), seed: int = 0,
                 one_line_docs: int = 0) -> Path:
    """Documents separated by blank lines, one sentence per line; ``one_line_docs`` extra documents
    are single long lines (a speech on one line) that the reader must split into sentences."""
    rng = random.Random(seed)
    words = make_words(300, seed)

    def sentence() -> str:
        text = " ".join(rng.choice(words) for _ in range(rng.randint(4, 14)))
        return text[0].upper() + text[1:] + rng.choice([".", ".", "!", "?"])

    docs = ["\n".join(sentence() for _ in range(rng.randint(*sentences))) for _ in range(n_docs)]
    docs += [" ".join(sentence() for _ in range(30)) for _ in range(one_line_docs)]
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return path


def train_tokenizer(text_file: Path, output_dir: Path, vocab_size: int = 400):
    from fnet.tokenization import FNetTokenizer

    return FNetTokenizer.train([text_file], vocab_size=vocab_size, output_dir=output_dir, num_threads=1, seed=0,
                               character_coverage=1.0)


def tiny_model_config(path: Path, **overrides) -> Path:
    """A model config.json (vocab size and pad id are replaced by the tokenizer's)."""
    config = dict(hidden_size=32, num_hidden_layers=1, intermediate_size=64, max_position_embeddings=64,
                  hidden_dropout_prob=0.0, vocab_size=400, pad_token_id=3)
    config.update(overrides)
    path.write_text(json.dumps(config))
    return path


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: tiny models run many times faster than with several threads fighting over
    a busy machine's cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
