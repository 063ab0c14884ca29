"""`fnet pretrain` end to end on a tiny model: the output directory loads in fnet and transformers."""

from __future__ import annotations

import json
import pytest
import torch

from fnet.cli.main import main

from pretraining_helpers import one_thread, read_metrics, tiny_model_config, train_tokenizer, write_corpus  # noqa: F401


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_pretrain")
    train = write_corpus(root / "train.txt", n_docs=40)
    held = write_corpus(root / "eval.txt", n_docs=8, seed=7)
    train_tokenizer(train, root / "tok")
    return {"train": train, "eval": held, "tok": root / "tok", "model": tiny_model_config(root / "model.json"),
            "cache": root / "cache"}


def base_args(files, output, *extra):
    return ["pretrain", "--train-files", str(files["train"]), "--tokenizer", str(files["tok"]), "--output", str(output),
            "--config", str(files["model"]), "--seq-len", "32", "--batch-size", "4", "--threads", "1",
            "--data-cache", str(files["cache"]), "--no-progress", *extra]


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr()
    for option in ("--train-files", "--tokenizer", "--output", "--preset", "--config", "--seq-len", "--grad-accum",
                   "--resume", "--bf16", "--whole-word-mask", "--short-seq-prob", "--mlm-prob", "--keep-last"):
        assert option in out.out, option


def test_few_steps_make_a_model_directory(files, tmp_path, capsys):
    output = tmp_path / "run"
    code = main(base_args(files, output, "--max-steps", "6", "--eval-files", str(files["eval"]), "--eval-every", "3",
                          "--eval-batches", "2", "--save-every", "3", "--log-every", "2", "--whole-word-mask"))
    err = capsys.readouterr().err
    assert code == 0, err
    assert "fnet pretrain: " in err and " parameters, " in err, "the start line (logged by the library) reaches stderr"
    from fnet.modeling import FNetForPreTraining
    from fnet.tokenization import FNetTokenizer

    ours = FNetForPreTraining.from_pretrained(output)
    tokenizer = FNetTokenizer.from_pretrained(output)
    assert ours.config.vocab_size == len(tokenizer) and ours.config.pad_token_id == tokenizer.pad_token_id
    assert ours.config.hidden_size == 32
    import transformers

    theirs = transformers.FNetForPreTraining.from_pretrained(output).eval()
    ids = torch.tensor([tokenizer.encode("Kalo mine ruta.", "Shi po ve.")])
    with torch.no_grad():
        a = ours(input_ids=ids).prediction_logits
        b = theirs(input_ids=ids).prediction_logits
    assert torch.allclose(a, b, atol=1e-4), f"max abs diff {(a - b).abs().max():.3g}"

    rows = read_metrics(output / "metrics.jsonl")
    assert [r["step"] for r in rows if "loss" in r] == [2, 4, 6]
    evals = [r for r in rows if "eval_loss" in r]
    assert [r["step"] for r in evals] == [3, 6]
    assert {"eval_mlm_acc", "eval_nsp_acc", "eval_loss"} <= set(evals[0])
    assert all({"mlm_acc", "nsp_acc", "tokens_per_s"} <= set(r) for r in rows if "loss" in r)
    assert sorted(p.name for p in (output / "checkpoints").iterdir()) == ["step-3", "step-6"]
    summary = json.loads((output / "train_summary.json").read_text())
    assert summary["steps"] == 6


def test_toml_run_config_and_command_line_override(files, tmp_path, capsys):
    run = tmp_path / "run.toml"
    run.write_text(
        f'train-files = ["{files["train"]}"]\ntokenizer = "{files["tok"]}"\noutput = "{tmp_path / "out"}"\n'
        f'preset = "fnet-tiny"\nseq_len = 32\nbatch_size = 2\nmax_steps = 50\ndropout = 0.0\nthreads = 1\n'
        f'data_cache = "{files["cache"]}"\nprogress = false\nsave_every = 0\n'
    )
    assert main(["pretrain", "--config", str(run), "--max-steps", "2"]) == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "train_summary.json").read_text())
    assert summary["steps"] == 2
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["hidden_size"] == 128 and config["hidden_dropout_prob"] == 0.0


def test_user_errors_are_one_line(files, tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\n\xc3\x28 broken\n")
    args = base_args(files, tmp_path / "o1", "--max-steps", "1")
    args[args.index("--train-files") + 1] = str(bad)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "bad.txt: line 2: invalid UTF-8 at byte offset 5" in err and "Traceback" not in err, err

    assert main(["pretrain", "--train-files", str(files["train"]), "--output", str(tmp_path / "o2")]) == 2
    assert "--tokenizer is required" in capsys.readouterr().err

    run = tmp_path / "typo.json"
    run.write_text(json.dumps({"max_stepz": 3}))
    assert main(["pretrain", "--config", str(run)]) == 2
    assert "unknown option(s) ['max_stepz']" in capsys.readouterr().err


def test_existing_checkpoints_need_resume(files, tmp_path, capsys):
    output = tmp_path / "run"
    assert main(base_args(files, output, "--max-steps", "2", "--save-every", "2")) == 0
    assert main(base_args(files, output, "--max-steps", "4", "--save-every", "2")) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main(base_args(files, output, "--max-steps", "4", "--save-every", "2", "--resume")) == 0
    assert json.loads((output / "train_summary.json").read_text())["resumed_from"] == 2
