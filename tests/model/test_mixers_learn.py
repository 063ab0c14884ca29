"""Every sequence mixer learns a task that needs mixing, also from grown query/key weights."""

from __future__ import annotations

import pytest
import torch

from fnet.config import FNetConfig
from fnet.modeling import FNetForSequenceClassification


def _batch(generator: torch.Generator, b: int, n: int = 16):
    """Label 1 when token 7 appears somewhere after [CLS] in a variable-length, padded row."""
    ids = torch.randint(10, 40, (b, n), generator=generator)
    ids[:, 0] = 4
    lengths = torch.randint(6, n + 1, (b,), generator=generator)
    mask = (torch.arange(n)[None] < lengths[:, None]).long()
    labels = torch.randint(0, 2, (b,), generator=generator)
    where = (torch.rand(b, generator=generator) * (lengths - 1)).long() + 1
    rows = torch.arange(b)[labels == 1]
    ids[rows, where[labels == 1]] = 7
    return ids.masked_fill(mask == 0, 0), mask, labels


def _fit(mixer: str, qk_scale: float, steps: int = 100) -> float:
    torch.manual_seed(0)
    config = FNetConfig(vocab_size=40, hidden_size=32, num_hidden_layers=2, intermediate_size=64, num_attention_heads=1,
                        max_position_embeddings=16, token_mixer=mixer, num_labels=2, pad_token_id=0,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = FNetForSequenceClassification(config)
    with torch.no_grad():  # q and k as large as after pretraining or a high learning rate
        for name, param in model.named_parameters():
            if name.endswith(("query.weight", "key.weight")):
                param.mul_(qk_scale)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        ids, mask, labels = _batch(generator, 32)
        loss = torch.nn.functional.cross_entropy(model(input_ids=ids, attention_mask=mask).logits, labels)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    model.eval()
    ids, mask, labels = _batch(torch.Generator().manual_seed(99), 256)
    with torch.no_grad():
        return (model(input_ids=ids, attention_mask=mask).logits.argmax(-1) == labels).float().mean().item()


@pytest.mark.parametrize("mixer", ["attention", "performer"])
def test_mixer_fits_a_task_that_needs_mixing(mixer):
    accuracy = _fit(mixer, qk_scale=20.0)
    assert accuracy > 0.95, f"{mixer} reached accuracy {accuracy:.3f} (majority ~0.5)"
