"""The README's "Reliability" promises, one test each: nothing fnet reads runs code, no command
overwrites what it did not make, one run per folder, tokenizer identity, files follow the umask,
one-line errors with the documented exit status, no partial output."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fnet import run_folder
from fnet.cli.main import main

from pretraining_helpers import one_thread, write_corpus  # noqa: F401

LEGACY = Path(__file__).resolve().parent / "fixtures" / "legacy-0.1"
SRC = Path(__file__).resolve().parents[1] / "src"


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(args: list[str], tmp_path: Path, umask: int | None = None, fsize: int | None = None):
    """``python -m fnet ARGS`` in a subprocess (stderr checked for tracebacks)."""
    def limits():
        if umask is not None:
            os.umask(umask)
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "FNET_ALLOCATOR": "default", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "fnet", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, preexec_fn=limits, timeout=300)


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus") / "corpus.txt", n_docs=40)


def pretrain_args(output, cache, *extra):
    return ["pretrain", "--train-files", str(LEGACY / "corpus.txt"), "--tokenizer", str(LEGACY / "pretrain-run"),
            "--output", str(output), "--config", str(LEGACY / "tiny.json"), "--seq-len", "32", "--batch-size", "4",
            "--save-every", "2", "--keep-last", "1", "--threads", "1", "--data-cache", str(cache), "--no-progress",
            *extra]


class Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# ----------------------------------------------------------------------------- 1. nothing read runs code


def test_a_pickle_payload_in_a_checkpoint_does_not_run(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(LEGACY / "pretrain-run", run)
    marker = tmp_path / "pwned"
    state = run / "checkpoints" / "step-4" / "trainer_state.pt"
    state.write_bytes(pickle.dumps({"step": 4, "x": Payload(marker)}))
    assert main(pretrain_args(run, tmp_path / "cache", "--max-steps", "6", "--resume")) == 2
    assert not marker.exists()
    assert "trainer_state.pt" in capsys.readouterr().err


def test_training_state_is_saved_without_pickle_and_round_trips(tmp_path):
    import numpy as np
    import torch

    from fnet.training import resume

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    np.random.seed(3)
    saved = resume.save_checkpoint(tmp_path, 1, model, optimizer, None, {"data": {"step": 1}})
    assert not (saved / "trainer_state.pt").exists()
    assert (saved / "trainer_state.safetensors").is_file()
    expected_rng = resume.rng_state()
    state = resume.read_trainer_state(saved)
    assert state["rng"]["python"] == expected_rng["python"]
    assert np.array_equal(state["rng"]["numpy"][1], expected_rng["numpy"][1])
    assert state["rng"]["numpy"][1].dtype == expected_rng["numpy"][1].dtype
    assert torch.equal(state["rng"]["torch"], expected_rng["torch"])
    want = optimizer.state_dict()
    assert torch.equal(state["optimizer"]["state"][0]["exp_avg"], want["state"][0]["exp_avg"])
    assert state["optimizer"]["param_groups"][0]["betas"] == want["param_groups"][0]["betas"]


def test_no_unsafe_torch_load_in_the_package():
    for path in (SRC / "fnet").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "weights_only=False" not in text, path


# ----------------------------------------------------------------------------- 2. nothing overwritten


def test_finetune_refuses_its_input_model_and_leaves_it_unchanged(tmp_path, capsys):
    model = tmp_path / "clf"
    shutil.copytree(LEGACY / "classifier", model)
    before = tree_digest(model)
    args = ["finetune", "--task", "classification", "--model", str(model), "--train", str(LEGACY / "train.csv"),
            "--output", str(model), "--epochs", "1", "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "is the --model folder" in err
    assert main(args + ["--overwrite"]) == 2  # no flag lets an output replace what the command reads
    assert "is the --model folder" in capsys.readouterr().err
    assert tree_digest(model) == before


def test_pretrain_refuses_a_finished_run_without_checkpoints(tmp_path, capsys):
    done = tmp_path / "done"
    shutil.copytree(LEGACY / "pretrain-run", done)
    shutil.rmtree(done / "checkpoints")  # a run made with --save-every 0
    before = tree_digest(done)
    assert main(pretrain_args(done, tmp_path / "cache", "--max-steps", "2")) == 2
    assert "already holds" in capsys.readouterr().err
    assert tree_digest(done) == before


def test_tokenizer_train_refuses_a_model_folder(tmp_path):
    model = tmp_path / "clf"
    shutil.copytree(LEGACY / "classifier", model)
    before = tree_digest(model)
    result = run_cli(["tokenizer", "train", "--input", str(LEGACY / "corpus.txt"), "--vocab-size", "100",
                      "--output", str(model)], tmp_path)
    assert result.returncode == 2
    assert "a fine-tuned model" in one_line_error(result.stderr)
    assert tree_digest(model) == before


def test_overwrite_replaces_whole_only_on_success(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with run_folder.claim(target, "test", overwrite=True) as out:
            (out.path / "new.txt").write_text("half")
            raise RuntimeError("killed halfway")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    with run_folder.claim(target, "test", overwrite=True) as out:
        assert out.path != target
        (out.path / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == [run_folder.MARKER_NAME, "new.txt"]
    assert run_folder.read_marker(target)["state"] == "complete"
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


# ----------------------------------------------------------------------------- 3. one run per folder


def test_a_second_run_on_a_locked_folder_refuses_naming_the_holder(tmp_path):
    target = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from fnet import run_folder\n"
         f"with run_folder.claim({str(target)!r}, 'pretrain'):\n    print('ready', flush=True); time.sleep(60)"],
        env={**os.environ, "PYTHONPATH": str(SRC)}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(run_folder.FolderLocked, match=f"pid {holder.pid} on "):
            with run_folder.claim(target, "pretrain", resume=True):
                pass
    finally:
        holder.kill()
        holder.wait()
    assert (target / run_folder.LOCK_NAME).is_file()  # left by the killed holder: stale


def test_a_stale_lock_of_a_dead_process_is_reported_and_taken_over(tmp_path, caplog):
    target = tmp_path / "out"
    target.mkdir()
    (target / run_folder.LOCK_NAME).write_text(json.dumps({"pid": 999999, "host": "gone", "command": "fnet x"}))
    with caplog.at_level(logging.WARNING, logger="fnet.run_folder"):
        with run_folder.claim(target, "pretrain"):
            pass
    assert "stale lock" in caplog.text and "999999" in caplog.text
    assert not (target / run_folder.LOCK_NAME).exists()


# ----------------------------------------------------------------------------- 4. tokenizer identity


@pytest.fixture(scope="module")
def other_tokenizer(tmp_path_factory):
    """A tokenizer with the same vocabulary size as the legacy run's but other pieces."""
    from fnet.tokenization import FNetTokenizer

    root = tmp_path_factory.mktemp("other-tok")
    size = FNetTokenizer.from_pretrained(LEGACY / "pretrain-run").vocab_size
    FNetTokenizer.train([LEGACY / "corpus.txt"], vocab_size=size, model_type="bpe", output_dir=root / "tok",
                        num_threads=1, seed=0)
    return root / "tok"


def test_resume_with_another_tokenizer_refuses_naming_both(tmp_path, other_tokenizer, capsys):
    run = tmp_path / "run"
    shutil.copytree(LEGACY / "pretrain-run", run)
    args = pretrain_args(run, tmp_path / "cache", "--max-steps", "6", "--resume")
    args[args.index("--tokenizer") + 1] = str(other_tokenizer)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert str(other_tokenizer) in err and "FNetTokenizer:" in err and "not the tokenizer" in err


def test_finetune_with_another_tokenizer_refuses(tmp_path, other_tokenizer, capsys):
    args = ["finetune", "--task", "classification", "--model", str(LEGACY / "pretrain-run"), "--tokenizer",
            str(other_tokenizer), "--train", str(LEGACY / "train.csv"), "--output", str(tmp_path / "out"),
            "--no-progress"]
    assert main(args) == 2
    assert "not the tokenizer --model" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- 5. umask


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_saved_files_follow_the_umask(tmp_path, corpus, mask, file_mode, dir_mode):
    out = tmp_path / "tok"
    result = run_cli(["tokenizer", "train", "--input", str(corpus), "--vocab-size", "120",
                      "--output", str(out)], tmp_path, umask=mask)
    assert result.returncode == 0, result.stderr
    assert (out.stat().st_mode & 0o777) == dir_mode
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir()}
    assert modes and set(modes.values()) == {file_mode}, modes


# ----------------------------------------------------------------------------- 6. one error path


def test_a_full_disk_gives_one_line_and_exit_1(tmp_path):
    """RLIMIT_FSIZE makes the kernel refuse writes past 4000 bytes (EFBIG), as a full disk would (ENOSPC)."""
    out = tmp_path / "run"
    args = pretrain_args(out, tmp_path / "cache", "--max-steps", "2")
    args[args.index("--data-cache"):args.index("--data-cache") + 2] = []  # the cache goes in OUTPUT/cache
    result = run_cli(args, tmp_path, fsize=4000)
    assert result.returncode == 1, result.stderr
    line = one_line_error(result.stderr)
    assert "tokens.npy" in line and "ulimit" in line
    assert not out.exists()  # nothing half-made is left


@pytest.mark.parametrize("where", ["file", "under-file"])
def test_output_that_is_a_file_or_under_one_is_refused_first(tmp_path, capsys, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    output = blocker if where == "file" else blocker / "run"
    assert main(pretrain_args(output, tmp_path / "cache", "--max-steps", "2")) == 2
    assert "--output" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()  # refused before tokenising


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_is_refused_before_any_work(tmp_path, capsys):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        assert main(pretrain_args(parent / "run", tmp_path / "cache", "--max-steps", "2")) == 2
        assert "not writable" in capsys.readouterr().err
        assert not (tmp_path / "cache").exists()
    finally:
        parent.chmod(0o755)


def test_predict_and_export_refuse_a_folder_as_output(tmp_path, capsys):
    assert main(["predict", "--model", str(LEGACY / "classifier"), "--output", str(tmp_path), "a text"]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["export", "--model", str(LEGACY / "classifier"), "--output", str(tmp_path), "--no-check"]) == 2
    assert "is a folder" in capsys.readouterr().err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_is_refused_before_any_work(tmp_path, capsys):
    assert main(pretrain_args(tmp_path / "run", tmp_path / "cache", "--max-steps", "2", "--device", "cuda")) == 2
    assert "--device cuda" in capsys.readouterr().err
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


def test_a_failed_validation_leaves_no_output_folder(tmp_path, capsys):
    """A corpus with no blank lines is one document: NSP cannot draw random segments; nothing is left."""
    flat = tmp_path / "flat.txt"
    flat.write_text("".join(line for line in (LEGACY / "corpus.txt").read_text().splitlines(True) if line.strip()))
    args = pretrain_args(tmp_path / "run", tmp_path / "cache", "--max-steps", "2")
    args[args.index("--train-files") + 1] = str(flat)
    args[args.index("--data-cache"):args.index("--data-cache") + 2] = []
    assert main(args) == 2
    assert "single document" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- 7. silent results


def test_warmup_longer_than_the_run_is_refused(tmp_path, capsys):
    assert main(pretrain_args(tmp_path / "run", tmp_path / "cache", "--max-steps", "4", "--warmup-steps", "9")) == 2
    assert "--warmup-steps 9" in capsys.readouterr().err


def test_export_refuses_a_head_the_model_does_not_have(tmp_path):
    out = tmp_path / "qa.onnx"
    result = run_cli(["export", "--model", str(LEGACY / "classifier"), "--task", "question-answering",
                      "--output", str(out), "--no-check"], tmp_path)
    assert result.returncode == 2
    assert "no trained question-answering head" in one_line_error(result.stderr)
    assert not out.exists()


def test_export_prints_no_exporter_chatter(tmp_path):
    result = run_cli(["export", "--model", str(LEGACY / "classifier"), "--output", str(tmp_path / "m.onnx"),
                      "--no-check"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "torchvision" not in result.stderr + result.stdout
    again = run_cli(["export", "--model", str(LEGACY / "classifier"), "--output", str(tmp_path / "m.onnx"),
                     "--no-check"], tmp_path)
    assert again.returncode == 2 and "--overwrite" in one_line_error(again.stderr)


def test_multiple_choice_file_missing_a_choice_column_is_refused(tmp_path):
    from fnet.tasks.multiple_choice import read_multiple_choice

    path = tmp_path / "mc.csv"
    path.write_text("sent1,sent2,ending0,ending1,ending3,label\nA man,He,runs,sits,eats,1\n")
    with pytest.raises(ValueError, match="missing choice column.*ending2"):
        read_multiple_choice(path)


# ----------------------------------------------------------------------------- 8. messages name real flags


def test_messages_name_cli_flags_and_the_missing_folder(tmp_path, capsys):
    from fnet.tasks.classification import read_classification

    path = tmp_path / "x.csv"
    path.write_text("sentence,foo\nhello,1\n")
    with pytest.raises(ValueError, match="pass --label-column NAME"):
        read_classification(path)
    assert main(["finetune", "--task", "classification", "--model", str(tmp_path / "nope"), "--train",
                 str(LEGACY / "train.csv"), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--model" in err and "no such model folder" in err and "tokenizer" not in err
    model = tmp_path / "clf"
    shutil.copytree(LEGACY / "classifier", model)
    (model / "spiece.model").unlink()
    assert main(["predict", "--model", str(model), "a text"]) == 2
    err = capsys.readouterr().err
    assert "spiece.model" in err and "--tokenizer" not in err


# ----------------------------------------------------------------------------- 9. QA defaults


def test_qa_default_stride_fits_every_seq_len_and_long_questions_are_cut(caplog):
    from fnet.tasks.question_answering import QAExample, prepare_qa_features
    from fnet.tokenization import FNetTokenizer
    from fnet.training.finetune import default_stride

    tokenizer = FNetTokenizer.from_pretrained(LEGACY / "pretrain-run")
    context = " ".join(["the film was lovely and the cast was good"] * 20)
    examples = [QAExample(id="short", question="what was lovely?", context=context,
                          answers=[{"text": "lovely", "answer_start": context.index("lovely")}]),
                QAExample(id="long-one", question="what " * 200, context=context, answers=[])]
    for seq_len in (16, 32, 64, 96, 160):
        with caplog.at_level(logging.WARNING, logger="fnet.tasks.question_answering"):
            features = prepare_qa_features(examples, tokenizer, seq_len, default_stride(seq_len))
        assert set(features.meta["example_id"]) == {"short", "long-one"}
        assert "'long-one'" in caplog.text
        caplog.clear()


# ----------------------------------------------------------------------------- 10. odds and ends


def test_tokenizer_train_refuses_latin1_like_pretrain(tmp_path):
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\u00e9 cr\u00e8me\n".encode("latin-1") * 50)
    result = run_cli(["tokenizer", "train", "--input", str(latin), "--vocab-size", "40", "--output",
                      str(tmp_path / "tok")], tmp_path)
    assert result.returncode == 2
    assert "invalid UTF-8" in one_line_error(result.stderr)
    assert not (tmp_path / "tok").exists()


def test_python_dash_m_fnet_works(tmp_path):
    result = run_cli(["--version"], tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("fnet ")


def test_an_unfinished_distillation_is_offered_resume(tmp_path):
    """A run folder with checkpoints of a resumable command points to --resume, for distill as for pretrain."""
    from fnet.run_folder import OutputError, _check_reuse

    (tmp_path / "checkpoints").mkdir()
    for kind in ("pretrain", "distill"):
        with pytest.raises(OutputError, match="pass --resume to continue it"):
            _check_reuse(tmp_path, kind, None, overwrite=False, resume=False, flag="--output", inputs={})
    with pytest.raises(OutputError) as err:
        _check_reuse(tmp_path, "finetune", None, overwrite=False, resume=False, flag="--output", inputs={})
    assert "--resume" not in str(err.value)
