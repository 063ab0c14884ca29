"""`fnet finetune` picks lr, warmup and epochs by how the run starts; explicit values win."""

from __future__ import annotations

import argparse

import pytest

from fnet.options import add_arguments, build
from fnet.training.finetune import MAX_EPOCHS, MIN_STEPS, FinetuneConfig, pretrained_lr


def _config(model: str, **kw) -> FinetuneConfig:
    return FinetuneConfig(task="classification", model=model, train="t.tsv", output="out", **kw)


def test_pretrained_and_scratch_resolve_differently(tmp_path):
    pretrained = _config(str(tmp_path)).resolved(steps_per_epoch=1000)
    scratch = _config("fnet-mini").resolved(steps_per_epoch=1000)
    assert not _config(str(tmp_path)).from_scratch() and _config("fnet-tiny").from_scratch()
    assert pretrained.lr == 1e-4 and scratch.lr == 1e-3
    assert pretrained.warmup_ratio == scratch.warmup_ratio == 0.1
    assert pretrained.epochs == scratch.epochs == 3.0


def test_pretrained_rate_follows_the_width_as_electra(tmp_path):
    assert (pretrained_lr(128), pretrained_lr(256), pretrained_lr(768), pretrained_lr(1024), pretrained_lr(4096)) == \
        (3e-4, 3e-4, 1e-4, 5e-5, 5e-5)
    assert 1e-4 < pretrained_lr(384) < pretrained_lr(300) < 3e-4  # MiniLM's 384: between Small and Base
    assert _config(str(tmp_path)).resolved(steps_per_epoch=100, hidden_size=256).lr == 3e-4
    assert _config("fnet-mini").resolved(steps_per_epoch=100, hidden_size=256).lr == 1e-3  # scratch: no width rule
    assert _config(str(tmp_path), lr=2e-5).resolved(steps_per_epoch=100, hidden_size=256).lr == 2e-5


def test_small_training_sets_get_more_epochs_up_to_a_cap(tmp_path):
    model = str(tmp_path)
    assert _config(model).resolved(steps_per_epoch=20).epochs == MIN_STEPS / 20  # 15 passes reach 300 steps
    assert _config(model).resolved(steps_per_epoch=7).epochs == MAX_EPOCHS  # 43 would be needed: capped
    assert _config(model).resolved(steps_per_epoch=150).epochs == 3.0  # 450 steps already
    assert _config(model).resolved().epochs == 3.0  # size unknown


def test_explicit_values_win(tmp_path):
    config = _config(str(tmp_path), lr=3e-5, epochs=1.5, warmup_ratio=0.0).resolved(steps_per_epoch=5)
    assert (config.lr, config.epochs, config.warmup_ratio) == (3e-5, 1.5, 0.0)
    scratch = _config("fnet-mini", lr=2e-4).resolved(steps_per_epoch=5)
    assert scratch.lr == 2e-4 and scratch.epochs == MAX_EPOCHS


def test_cli_flags_keep_none_until_resolved_and_override():
    parser = argparse.ArgumentParser()
    add_arguments(parser, FinetuneConfig)
    config = build(FinetuneConfig, parser.parse_args(["--task", "classification", "--model", "fnet-mini",
                                                      "--lr", "0.01"]))
    assert config.lr == 0.01 and config.epochs is None and config.warmup_ratio is None
    assert config.resolved(steps_per_epoch=1000).lr == 0.01
    help_text = " ".join(parser.format_help().split())
    assert "3e-4 at hidden 256, 1e-4 at hidden 768, 5e-5 at hidden 1024" in help_text
    assert "1e-3 from a preset" in help_text and "gets 300 optimizer steps, at most 20 passes" in help_text


@pytest.mark.parametrize("flag,value", [("lr", 0.0), ("epochs", -1.0), ("warmup_ratio", 1.0)])
def test_bad_values_name_the_flag(tmp_path, flag, value):
    config = _config(str(tmp_path), **{flag: value})
    with pytest.raises(ValueError, match=f"--{flag.replace('_', '-')}"):
        config.validate()
