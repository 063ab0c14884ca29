"""Issue 24 (second break-it round): nothing lost, nothing silent.

Outputs never overlap inputs, --resume continues only what fnet made, fnet's temporary names cannot
collide with a user's files, numbers are validated where they enter, and a diverging run stops before
anything non-finite is saved. Each test reproduces a failure of main at 1452b74."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from fnet import run_folder
from fnet.cli.main import main
from fnet.options import build, option

from test_reliability import LEGACY, pretrain_args, tree_digest

# ----------------------------------------------------------------------------- inputs and outputs are disjoint


def test_resume_into_a_folder_fnet_did_not_make_is_refused(tmp_path, capsys):
    """`fnet pretrain --tokenizer X --output X --resume` on a BERT-like folder overwrote its weights."""
    teacher = tmp_path / "teacher"
    shutil.copytree(LEGACY / "classifier", teacher)
    (teacher / "fnet_task.json").unlink()  # a plain model folder: config, weights, tokenizer, no fnet marker
    before = tree_digest(teacher)
    args = pretrain_args(teacher, tmp_path / "cache", "--max-steps", "2", "--resume")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--resume continues only a run that `fnet pretrain` made" in err and len(err.strip().splitlines()) == 1
    assert tree_digest(teacher) == before


def test_resume_of_a_run_of_another_kind_is_refused(tmp_path):
    with run_folder.claim(tmp_path / "run", "distill") as out:
        (out.path / "checkpoints").mkdir()
    with pytest.raises(run_folder.OutputError, match="only a run that `fnet pretrain` made"):
        with run_folder.claim(tmp_path / "run", "pretrain", resume=True):
            pass
    with run_folder.claim(tmp_path / "run", "distill", resume=True) as out:  # its own kind continues
        assert out.previous["kind"] == "distill"


@pytest.mark.parametrize("relation", ["is", "contains", "lies inside"])
def test_an_output_overlapping_an_input_is_refused_even_with_overwrite(tmp_path, relation):
    model = tmp_path / "runs" / "clf"
    shutil.copytree(LEGACY / "classifier", model)
    output = {"is": model, "contains": tmp_path / "runs", "lies inside": model / "eval"}[relation]
    before = tree_digest(model)
    for overwrite in (False, True):
        with pytest.raises(run_folder.OutputError, match=f"{relation} the --model folder"):
            with run_folder.claim(output, "evaluate", overwrite=overwrite, inputs={"--model": str(model)}):
                pass
        with pytest.raises(run_folder.OutputError, match=f"{relation} the --model folder"):
            run_folder.check_claim(output, "evaluate", overwrite=overwrite, inputs={"--model": str(model)})
    assert tree_digest(model) == before
    assert not (model / "eval").exists()


def test_input_files_count_too_and_hub_ids_are_skipped(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("text,label\na,0\n")
    with pytest.raises(run_folder.OutputError, match="contains the --train file"):
        run_folder.check_claim(data, "finetune", overwrite=True, inputs={"--train": str(data / "train.csv")})
    # a Hub id that happens to read like a relative path is not on disk: nothing to protect
    run_folder.check_claim(tmp_path / "out", "finetune", inputs={"--model": "owner/name"})


def test_grow_with_its_source_inside_the_output_keeps_the_source(tmp_path, capsys):
    """`fnet grow --model runs2/pre --output runs2 --overwrite` deleted its source."""
    source = tmp_path / "runs2" / "pre"
    shutil.copytree(LEGACY / "pretrain-run", source)
    before = tree_digest(source)
    code = main(["grow", "--model", str(source), "--output", str(tmp_path / "runs2"), "--overwrite",
                 "--intermediate-size", "64"])
    assert code == 2
    assert "contains the --model folder" in capsys.readouterr().err
    assert tree_digest(source) == before


def test_overwrite_leaves_a_users_own_hidden_folders_alone(tmp_path):
    """--overwrite deleted a user's .old-NAME/ and .tmp-NAME/ beside the output."""
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    for name in (".old-out", ".tmp-out"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "mine.txt").write_text("the user's")
    with run_folder.claim(target, "test", overwrite=True) as out:
        (out.path / "new.txt").write_text("new")
    assert (target / "new.txt").read_text() == "new" and not (target / "old.txt").exists()
    for name in (".old-out", ".tmp-out"):
        assert (tmp_path / name / "mine.txt").read_text() == "the user's"
    assert not any(p.name.startswith(".fnet-") for p in tmp_path.iterdir())  # fnet's own names are gone


def test_claim_file_claims_its_side_record_and_refuses_its_input(tmp_path):
    """`fnet embed --output sents.npy` replaced an existing sents.json; `--input texts.json --output
    texts.npy` replaced its own input."""
    (tmp_path / "sents.json").write_text("{}")
    with pytest.raises(run_folder.OutputError, match="sents.json .*already exists"):
        with run_folder.claim_file(tmp_path / "sents.npy", side_files=(tmp_path / "sents.json",)):
            pass
    assert (tmp_path / "sents.json").read_text() == "{}"
    texts = tmp_path / "texts.json"
    texts.write_text('["a"]')
    with pytest.raises(run_folder.OutputError, match="is the --input file"):
        with run_folder.claim_file(tmp_path / "texts.npy", overwrite=True, inputs={"--input": str(texts)},
                                   side_files=(texts,)):
            pass
    assert texts.read_text() == '["a"]'


# ----------------------------------------------------------------------------- validated numbers


def _numbers_config():
    from dataclasses import dataclass

    @dataclass
    class Numbers:
        lr: float = option(1e-3, "rate")
        steps: int = option(10, "steps")
        bonus: float = option(0.0, "may be negative", signed=True)

    return Numbers


@pytest.mark.parametrize("value,message", [(float("inf"), "finite"), (float("nan"), "finite"), (-1.0, ">= 0"),
                                           (True, "a number")])
def test_numbers_from_files_and_flags_are_checked_naming_the_flag(value, message):
    cls = _numbers_config()
    with pytest.raises(ValueError, match=f"'lr' \\(--lr\\) must be .*{message}"):
        build(cls, file_options={"lr": value})
    with pytest.raises(ValueError, match="must be an integer"):
        build(cls, file_options={"steps": True})  # a bool is not a count
    assert build(cls, file_options={"bonus": -0.5}).bonus == -0.5  # signed fields take negatives


def test_cli_refuses_non_finite_and_negative_flags_before_any_work(tmp_path, capsys):
    for flag, value in (("--lr", "inf"), ("--lr", "nan"), ("--clip-grad", "-1"), ("--threads", "-1")):
        out = tmp_path / f"run{flag}{value}"
        assert main(pretrain_args(out, tmp_path / "cache", "--max-steps", "2", flag, value)) == 2
        err = capsys.readouterr().err
        assert flag in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()


def test_a_config_file_bool_is_not_a_count(tmp_path, capsys):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"batch_size": True}))
    assert main(["finetune", "--task", "classification", "--model", str(LEGACY / "classifier"), "--train",
                 str(LEGACY / "train.csv"), "--output", str(tmp_path / "o"), "--config", str(config)]) == 2
    assert "'batch_size' (--batch-size) must be an integer" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- finite or refused


def make_trainer(output, poison_at: int | None = None, save_every: int = 2, max_steps: int = 8):
    """A tiny regression trainer whose loss is NaN at step ``poison_at`` (1-based)."""
    from fnet.data.collate import ListDataset, StepBatches
    from fnet.training.loop import Trainer, TrainerConfig

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    rows = [{"x": torch.randn(4), "y": torch.randn(1), "input_ids": torch.zeros(1)} for _ in range(32)]
    data = StepBatches(ListDataset(rows, lambda r: {k: torch.stack([x[k] for x in r]) for k in r[0]}), 4, 1, seed=0)
    trainer = None

    def loss_fn(model, batch):
        loss = torch.nn.functional.mse_loss(model(batch["x"]), batch["y"])
        return loss * float("nan") if trainer.step + 1 == poison_at else loss

    config = TrainerConfig(max_steps=max_steps, output_dir=str(output), log_every=1, progress=False, seed=0,
                           save_every=save_every, keep_last=10)
    trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.01), data, config, loss_fn=loss_fn)
    return trainer


def test_a_diverging_step_stops_before_the_update_and_keeps_the_last_good_checkpoint(tmp_path):
    from fnet.training.loop import NonFiniteLoss

    trainer = make_trainer(tmp_path, poison_at=5, save_every=2)
    with pytest.raises(NonFiniteLoss, match="the loss is nan at step 5.*step-4.*is kept.*lower --lr") as info:
        trainer.train()
    assert "\n" not in str(info.value)
    from fnet.training import resume

    assert [s for s, _ in resume.list_checkpoints(tmp_path)] == [2, 4]
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())  # the NaN step did not update


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    from fnet.training.loop import NonFiniteLoss

    trainer = make_trainer(tmp_path, save_every=1)
    with torch.no_grad():
        next(trainer.model.parameters())[0].fill_(float("inf"))
    with pytest.raises(NonFiniteLoss, match="holds NaN or inf"):
        trainer.save_checkpoint()
    assert not (Path(tmp_path) / "checkpoints").exists() or not any((Path(tmp_path) / "checkpoints").iterdir())


# ----------------------------------------------------------------------------- reproducible


def test_finetune_from_a_model_folder_is_reproducible_with_one_seed(tmp_path):
    """The new classification head was initialised before seeding: two runs with --seed 0 differed."""
    from safetensors.torch import load_file

    def run(name: str) -> dict[str, torch.Tensor]:
        torch.manual_seed(len(name))  # a different global RNG state before each run
        out = tmp_path / name
        assert main(["finetune", "--task", "classification", "--model", str(LEGACY / "pretrain-run"), "--train",
                     str(LEGACY / "train.csv"), "--output", str(out), "--epochs", "1", "--seq-len", "32",
                     "--batch-size", "8", "--threads", "1", "--seed", "0", "--no-progress"]) == 0
        return load_file(out / "model.safetensors")

    first, second = run("a"), run("bb")
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key


# ----------------------------------------------------------------------------- bounded by construction


def _edited_model(tmp_path, **changes) -> Path:
    model = tmp_path / "clf"
    shutil.copytree(LEGACY / "classifier", model)
    config = json.loads((model / "config.json").read_text())
    config.update(changes)
    (model / "config.json").write_text(json.dumps(config))
    return model


@pytest.mark.parametrize("changes,named", [({"hidden_size": 10_000_000}, "hidden_size=10000000"),
                                           ({"vocab_size": 10**12}, "vocab_size=1000000000000"),
                                           ({"intermediate_size": 10**9}, "intermediate_size=1000000000"),
                                           ({"max_position_embeddings": 10**11}, "max_position_embeddings"),
                                           ({"num_hidden_layers": 1_000_000}, "num_hidden_layers=1000000")])
def test_an_edited_config_is_checked_against_the_weights_before_allocating(tmp_path, capsys, changes, named):
    """A huge size in config.json made `fnet predict` try to allocate 20 GB-512 TB (or run for minutes)."""
    import time

    model = _edited_model(tmp_path, **changes)
    start = time.perf_counter()
    code = main(["predict", "--model", str(model), "--input", str(LEGACY / "inputs.txt"), "--output",
                 str(tmp_path / "p.jsonl")])
    assert code == 2 and time.perf_counter() - start < 20
    err = capsys.readouterr().err
    assert named in err and "config.json" in err and len(err.strip().splitlines()) == 1, err


def test_a_config_that_cannot_fit_memory_is_refused_without_weights(tmp_path):
    from fnet.config import FNetConfig
    from fnet.model_size import MAX_LAYERS, available_memory, check_fits

    small = FNetConfig(vocab_size=100, hidden_size=8, num_hidden_layers=2, intermediate_size=16)
    assert check_fits(small, "test") > 0
    huge_vocab = int((available_memory() or 2**40) // (4 * 8)) + 1  # float32 word embeddings alone exceed memory
    with pytest.raises(ValueError, match="needs at least .* GB for its weights .* lower the sizes"):
        check_fits(FNetConfig(vocab_size=huge_vocab, hidden_size=8, num_hidden_layers=2, intermediate_size=16), "x")
    with pytest.raises(ValueError, match=f"more than {MAX_LAYERS}"):
        check_fits(FNetConfig(vocab_size=100, hidden_size=8, num_hidden_layers=MAX_LAYERS + 1,
                              intermediate_size=16), "x")


@pytest.mark.parametrize("flag,value", [("--num-layers", "100000"), ("--hidden-size", "100000000")])
def test_grow_refuses_a_shape_that_cannot_fit_before_claiming(tmp_path, capsys, flag, value):
    """`fnet grow --num-layers 100000` ran past 300 s and left a folder with only the marker and lock."""
    out = tmp_path / "grown"
    assert main(["grow", "--model", str(LEGACY / "pretrain-run"), "--output", str(out), flag, value]) == 2
    err = capsys.readouterr().err
    assert f"{flag} {value}" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_a_nan_layer_norm_eps_is_refused():
    from fnet.config import FNetConfig

    for key in ("layer_norm_eps", "initializer_range"):
        with pytest.raises(ValueError, match=f"{key} must be a finite number > 0"):
            FNetConfig(**{key: float("nan")})


@pytest.mark.parametrize("command", ["pretrain", "finetune"])
def test_a_sequence_length_no_memory_holds_is_one_line_and_leaves_nothing(tmp_path, capsys, command):
    """`--seq-len 1000000000` ended in an allocation traceback (pretrain) or an out-of-memory kill that left
    an unfinished output folder (finetune)."""
    out = tmp_path / "out"
    if command == "pretrain":
        args = pretrain_args(out, tmp_path / "cache", "--max-steps", "1", "--seq-len", "1000000000")
    else:
        args = ["finetune", "--task", "classification", "--model", str(LEGACY / "pretrain-run"), "--train",
                str(LEGACY / "train.csv"), "--output", str(out), "--epochs", "1", "--seq-len", "1000000000",
                "--threads", "1", "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--seq-len 1000000000" in err and "lower the sizes" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_pretrain_refuses_an_output_inside_its_tokenizer_folder(tmp_path, capsys):
    tokenizer = tmp_path / "tok"
    shutil.copytree(LEGACY / "pretrain-run", tokenizer)
    before = tree_digest(tokenizer)
    args = pretrain_args(tokenizer / "run", tmp_path / "cache", "--max-steps", "1")
    args[args.index("--tokenizer") + 1] = str(tokenizer)
    assert main(args) == 2
    assert "lies inside the --tokenizer folder" in capsys.readouterr().err
    assert tree_digest(tokenizer) == before


@pytest.mark.parametrize("poison", ["nan", "int64", "bool"])
def test_weights_that_would_load_as_garbage_are_refused(tmp_path, capsys, poison):
    """int64/bool tensors in a safetensors file were cast silently; NaN weights loaded (and exported)."""
    from safetensors.torch import load_file, save_file

    model = tmp_path / "clf"
    shutil.copytree(LEGACY / "classifier", model)
    state = load_file(model / "model.safetensors")
    key = next(k for k in state if k.endswith("output.dense.weight"))
    if poison == "nan":
        state[key][0, 0] = float("nan")
    else:
        state[key] = state[key].to(torch.int64 if poison == "int64" else torch.bool)
    save_file(state, str(model / "model.safetensors"))
    code = main(["predict", "--model", str(model), "--input", str(LEGACY / "inputs.txt"), "--output",
                 str(tmp_path / "p.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and key in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "p.jsonl").exists()


@pytest.mark.parametrize("want", ["folder", "file"])
def test_a_dangling_symlink_as_output_is_named_as_such(tmp_path, want):
    """A dangling symlink as --output was reported as a full disk."""
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "gone")
    with pytest.raises(run_folder.OutputError, match="symbolic link to .*gone, which does not exist"):
        if want == "folder":
            run_folder.check_claim(link, "finetune")
        else:
            with run_folder.claim_file(link):
                pass


# ----------------------------------------------------------------------------- resumed runs keep their settings


def _distill_args(teacher: Path, text: Path, out: Path, *extra: str) -> list[str]:
    return ["distill", "--teacher", str(teacher), "--train-files", str(text), "--output", str(out), "--seq-len", "24",
            "--batch-size", "4", "--layers", "1", "--threads", "1", "--no-progress", "--save-every", "2", *extra]


@pytest.fixture(scope="module")
def distill_inputs(tmp_path_factory):
    from distill_helpers import make_tiny_teacher

    root = tmp_path_factory.mktemp("distill")
    words = ["the", "cat", "sat", "on", "mat", "dog", "ran", "far", "home", "fast"]
    text = root / "train.txt"
    text.write_text("".join(" ".join(words[(i + j) % 10] for j in range(3 + i % 5)) + " .\n" for i in range(40)))
    return make_tiny_teacher(root / "teacher", words, layers=1), make_tiny_teacher(root / "other", words[:6], layers=1), text


def test_a_resumed_run_refuses_changed_settings_and_another_teacher_tokenizer(distill_inputs, tmp_path, capsys):
    """--resume ignored a new --lr while run_config.json recorded it; a teacher with another tokenizer continued."""
    teacher, other, text = distill_inputs
    out = tmp_path / "student"
    assert main(_distill_args(teacher, text, out, "--max-steps", "2")) == 0
    assert main(_distill_args(teacher, text, out, "--max-steps", "4", "--resume", "--lr", "0.01")) == 2
    err = capsys.readouterr().err
    assert "--lr 0.01 differs from the 0.0005 the run in --output was started with" in err, err
    assert main(_distill_args(other, text, out, "--max-steps", "4", "--resume")) == 2
    assert "is not the tokenizer --output" in capsys.readouterr().err
    assert main(_distill_args(teacher, text, out, "--max-steps", "4", "--resume")) == 0  # same settings continue
    assert json.loads((out / "distill_summary.json").read_text())["resumed_from"] == 2


def test_distill_refuses_warmup_longer_than_the_run(distill_inputs, tmp_path, capsys):
    teacher, _, text = distill_inputs
    assert main(_distill_args(teacher, text, tmp_path / "s", "--max-steps", "2", "--warmup-steps", "5")) == 2
    assert "--warmup-steps 5 must be at most --max-steps 2" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_evaluate_never_writes_into_the_model_folder(tmp_path, capsys):
    """`fnet evaluate --model DIR --data F` replaced the fine-tune's metrics.json and predictions.jsonl;
    `--output runs --overwrite` (the model's parent) deleted the model."""
    model = tmp_path / "runs" / "clf"
    shutil.copytree(LEGACY / "classifier", model)
    before = tree_digest(model)
    args = ["evaluate", "--model", str(model), "--data", str(LEGACY / "train.csv"), "--threads", "1"]
    for expected in ("clf-eval-train", "clf-eval-train-2"):  # a new folder each time, beside the model
        assert main(args) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["output"] == str(tmp_path / "runs" / expected)
        assert (tmp_path / "runs" / expected / "metrics.json").is_file()
    assert main(args + ["--output", str(tmp_path / "runs"), "--overwrite"]) == 2
    assert "contains the --model folder" in capsys.readouterr().err
    assert tree_digest(model) == before


# ----------------------------------------------------------------------------- fnet embed


def _embed(tmp_path, model, *extra):
    texts = tmp_path / "texts.txt"
    if not texts.exists():
        texts.write_text("a short one\nanother line of text\n")
    return main(["embed", "--model", str(model), "--input", str(texts), "--output", str(tmp_path / "sents.npy"),
                 "--threads", "1", "--no-progress", *extra])


def test_embed_refuses_what_would_give_wrong_vectors(tmp_path, capsys):
    """`fnet embed` accepted an unfinished distill folder, a tokenizer that is not the model's, treated
    --max-length 0 as the default and ignored a Dense module listed in modules.json."""
    model = tmp_path / "m"
    shutil.copytree(LEGACY / "pretrain-run", model)
    (model / run_folder.MARKER_NAME).write_text(json.dumps({"made_by": "fnet", "kind": "distill", "state": "running"}))
    assert _embed(tmp_path, model) == 2
    assert "unfinished `fnet distill` run" in capsys.readouterr().err
    (model / run_folder.MARKER_NAME).unlink()
    from fnet.tokenization import FNetTokenizer

    FNetTokenizer.train([str(LEGACY / "train.csv")], vocab_size=36, output_dir=str(tmp_path / "tok2"))  # another one
    assert _embed(tmp_path, model, "--tokenizer", str(tmp_path / "tok2")) == 2
    assert "is not the tokenizer --model" in capsys.readouterr().err
    assert _embed(tmp_path, model, "--max-length", "0") == 2
    assert "--max-length must be >= 1" in capsys.readouterr().err
    (model / "modules.json").write_text(json.dumps([{"type": "sentence_transformers.models.Transformer"},
                                                    {"type": "sentence_transformers.models.Pooling"},
                                                    {"type": "sentence_transformers.models.Dense"}]))
    assert _embed(tmp_path, model) == 2
    assert "['Dense'] that fnet does not apply" in capsys.readouterr().err
    assert not (tmp_path / "sents.npy").exists() and not (tmp_path / "sents.json").exists()


def test_embed_keeps_an_existing_record_and_its_input(tmp_path, capsys):
    model = LEGACY / "pretrain-run"
    (tmp_path / "sents.json").write_text("{}")  # a record the user keeps
    assert _embed(tmp_path, model) == 2
    assert "sents.json (the record written beside" in capsys.readouterr().err
    assert (tmp_path / "sents.json").read_text() == "{}"
    (tmp_path / "sents.json").unlink()
    assert _embed(tmp_path, model) == 0
    capsys.readouterr()
    rows = __import__("numpy").load(tmp_path / "sents.npy")
    assert rows.shape[0] == 2 and json.loads((tmp_path / "sents.json").read_text())["rows"] == 2


# ----------------------------------------------------------------------------- fnet predict


def test_predict_reads_any_file_format_and_standard_input(tmp_path, capsys, monkeypatch):
    """predict said "pass --format csv, tsv or jsonl" but had no --format, and took no piped input."""
    import io

    data = tmp_path / "rows.data"
    data.write_text((LEGACY / "train.csv").read_text())
    args = ["predict", "--model", str(LEGACY / "classifier"), "--threads", "1"]
    assert main(args + ["--input", str(data)]) == 2
    assert "pass --format csv, tsv or jsonl" in capsys.readouterr().err
    assert main(args + ["--input", str(data), "--format", "csv"]) == 0
    by_file = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(by_file) == len((LEGACY / "train.csv").read_text().splitlines()) - 1
    monkeypatch.setattr("sys.stdin", io.StringIO("the film was lovely\n\nthe film was poor\n"))
    assert main(args + ["--input", "-"]) == 0
    piped = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["index"] for r in piped] == [0, 1, 2] and "skipped" in piped[1]


def test_predict_output_is_claimed_and_says_when_a_temperature_applies(tmp_path, capsys):
    """predict replaced an existing --output (or its own --input) silently; after `fnet calibrate` its
    probabilities changed with nothing saying a temperature was applied."""
    from fnet.calibration import TemperatureScaling
    from fnet.modeling import FNetForSequenceClassification

    model = tmp_path / "clf"
    shutil.copytree(LEGACY / "classifier", model)
    texts = tmp_path / "texts.txt"
    texts.write_text("the film was lovely\n")
    args = ["predict", "--model", str(model), "--input", str(texts), "--threads", "1"]
    assert main(args + ["--output", str(texts), "--overwrite"]) == 2
    assert "is the --input file" in capsys.readouterr().err
    assert texts.read_text() == "the film was lovely\n"
    (tmp_path / "p.jsonl").write_text("keep")
    assert main(args + ["--output", str(tmp_path / "p.jsonl")]) == 2
    assert "already exists" in capsys.readouterr().err and (tmp_path / "p.jsonl").read_text() == "keep"
    loaded = FNetForSequenceClassification.from_pretrained(model)
    TemperatureScaling(temperature=2.0, num_labels=2, labels=["0", "1"],
                       weights_sha256=__import__("fnet.calibration", fromlist=["x"]).weights_fingerprint(loaded)
                       ).save(model)
    assert main(args + ["--output", str(tmp_path / "p.jsonl"), "--overwrite"]) == 0
    assert "scaled by the temperature 2" in capsys.readouterr().err
    record = json.loads((tmp_path / "p.jsonl").read_text())
    assert record["temperature"] == 2.0
