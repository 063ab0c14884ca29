"""A tiny random BERT teacher folder (WordPiece vocab.txt + sentence-transformers recipe) for distillation tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import transformers


def make_tiny_teacher(path: Path, words: list[str], layers: int = 4) -> Path:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, "##s", ".", ","]
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("".join(t + "\n" for t in vocab))
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=layers,
                                     num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                                     attn_implementation="eager")
    transformers.BertModel(config).eval().save_pretrained(path)
    (path / "1_Pooling").mkdir(exist_ok=True)
    (path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": True}))
    (path / "modules.json").write_text(json.dumps([{"type": "sentence_transformers.models.Normalize"}]))
    return path
