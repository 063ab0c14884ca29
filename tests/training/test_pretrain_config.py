"""PretrainConfig: the flags and defaults of fnet 0.1's `fnet pretrain`, --config files, one-line errors."""

from __future__ import annotations

import json

import pytest

from fnet.cli.main import build_parser
from fnet.cli.pretrain import resolve_config
from fnet.training.pretrain import PretrainConfig, read_config_file

# `fnet pretrain`'s options and defaults as fnet 0.1 (commit a45e27b) declared them
OLD_DEFAULTS = {
    "train_files": None, "tokenizer": None, "output": None, "config": None, "preset": "fnet-mini", "dropout": None,
    "seq_len": 128, "batch_size": 32, "grad_accum": 1, "max_steps": 1000, "lr": 5e-4, "warmup_steps": None,
    "schedule": "linear", "weight_decay": 0.01, "clip_grad": 1.0, "seed": 0, "eval_files": None, "eval_every": 0,
    "eval_batches": 20, "save_every": 500, "keep_last": 2, "time_budget": 0.0, "resume": False, "bf16": False,
    "whole_word_mask": False, "short_seq_prob": 0.1, "mlm_prob": 0.15, "num_workers": 0, "threads": None,
    "log_every": 10, "data_cache": None, "device": "auto", "progress": True,
}


def parse(*argv):
    return build_parser().parse_args(["pretrain", *argv])


def test_every_old_flag_keeps_its_name_and_default():
    parser = build_parser()
    pretrain = parser._subparsers._group_actions[0].choices["pretrain"]
    flags = {s for action in pretrain._actions for s in action.option_strings}
    missing = sorted("--" + k.replace("_", "-") for k in OLD_DEFAULTS if "--" + k.replace("_", "-") not in flags)
    assert not missing, missing
    assert "--no-progress" in flags
    config = resolve_config(parse())
    added = {"overwrite": False, "init_from": None, "precision": None}  # flags added since fnet 0.1, off by default
    got = {k: v for k, v in vars(config).items() if k != "model_config" and k not in added}
    assert {k: vars(config)[k] for k in added} == added
    assert got == {k: v for k, v in OLD_DEFAULTS.items() if k != "config"}


def test_command_line_types_and_flags():
    config = resolve_config(parse("--train-files", "a.txt", "b.txt", "--seq-len", "64", "--lr", "1e-3", "--bf16",
                                  "--no-progress", "--warmup-steps", "7"))
    assert config.train_files == ["a.txt", "b.txt"] and config.seq_len == 64 and config.lr == 1e-3
    assert config.bf16 and not config.progress and config.warmup_steps == 7


def test_model_config_json_replaces_the_preset(tmp_path):
    model = tmp_path / "model.json"
    model.write_text(json.dumps({"hidden_size": 32, "num_hidden_layers": 1}))
    assert read_config_file(model) == {"model_config": str(model)}
    assert resolve_config(parse("--config", str(model))).model_config == str(model)


def test_run_config_file_is_overridden_by_the_command_line(tmp_path):
    run = tmp_path / "run.toml"
    run.write_text('train-files = "one.txt"\nseq_len = 64\nmax_steps = 9\nprogress = false\n')
    config = resolve_config(parse("--config", str(run), "--max-steps", "3"))
    assert config.train_files == ["one.txt"] and config.seq_len == 64 and config.max_steps == 3
    assert config.progress is False and config.model_config is None


@pytest.mark.parametrize("key", ["max_stepz", "config", "model_config"])
def test_unknown_run_config_keys_fail_with_the_valid_list(tmp_path, key):
    run = tmp_path / "run.json"
    run.write_text(json.dumps({key: 3}))
    with pytest.raises(ValueError) as err:
        read_config_file(run)
    message = str(err.value)
    assert f"unknown option(s) ['{key}']" in message and "'max_steps'" in message and "\n" not in message
    assert "'model_config'" not in message.split("valid options are")[1]


def test_checks_name_the_flag_and_fill_the_warmup():
    base = PretrainConfig(train_files=["t.txt"], tokenizer="tok", output="out")
    assert base.checked().warmup_steps == 100  # 10% of 1000 steps
    assert PretrainConfig(**{**vars(base), "max_steps": 10 ** 6}).checked().warmup_steps == 10000
    for changes, flag in [({"tokenizer": None}, "--tokenizer is required"), ({"seq_len": 0}, "--seq-len must be >= 1"),
                          ({"grad_accum": 0}, "--grad-accum must be >= 1"), ({"device": "tpu"}, "--device must be")]:
        with pytest.raises(ValueError, match=flag):
            PretrainConfig(**{**vars(base), **changes}).checked()
