"""Resume after an interruption continues exactly as if uninterrupted (CPU, dropout on).

Two interruptions: an exception inside the loop (in-process), and ``kill -9`` of a running
``fnet pretrain`` process at whatever step it has reached once a checkpoint exists.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from fnet.cli.main import main
from fnet.config import FNetConfig
from fnet.data.collate import StepBatches
from fnet.data.pretraining import PretrainingBatches, ShardedCorpus, build_shards
from fnet.modeling import FNetForPreTraining
from fnet.training import resume
from fnet.training.loop import Callback, Trainer, TrainerConfig
from fnet.training.objectives import pretraining_loss
from fnet.training.optim import OptimConfig, build_optimizer, build_scheduler

from process_helpers import kill_at_checkpoint
from pretraining_helpers import one_thread, read_metrics, tiny_model_config, train_tokenizer, write_corpus  # noqa: F401


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    train = write_corpus(root / "train.txt", n_docs=30)
    tokenizer = train_tokenizer(train, root / "tok")
    return {"root": root, "train": train, "tok": root / "tok", "tokenizer": tokenizer,
            "model": tiny_model_config(root / "model.json"), "cache": root / "cache"}


def losses(path):
    return {r["step"]: r["loss"] for r in read_metrics(path) if "loss" in r}


class Crash(Callback):
    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, trainer, step, logs):
        if step == self.at:
            raise KeyboardInterrupt(f"simulated crash after step {step}")


def build_trainer(files, output, init_seed=0):
    tokenizer = files["tokenizer"]
    corpus = ShardedCorpus(build_shards([files["train"]], tokenizer, files["cache"]))
    data = StepBatches(PretrainingBatches(corpus, tokenizer, seq_len=32, seed=0), 4, grad_accum=2, seed=0)
    torch.manual_seed(init_seed)
    config = FNetConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, intermediate_size=64,
                        max_position_embeddings=32, hidden_dropout_prob=0.1, pad_token_id=tokenizer.pad_token_id)
    model = FNetForPreTraining(config)
    optim = OptimConfig(lr=2e-3, warmup_steps=3)
    optimizer = build_optimizer(model, optim)
    return Trainer(model, optimizer, data, TrainerConfig(max_steps=10, output_dir=str(output), log_every=1, save_every=3,
                                                        keep_last=2, progress=False, seed=0),
                   scheduler=build_scheduler(optimizer, optim, 10), loss_fn=pretraining_loss)


def test_resume_after_a_crash_matches_the_uninterrupted_run(files, tmp_path):
    straight = build_trainer(files, tmp_path / "straight")
    straight.train()

    crashed = build_trainer(files, tmp_path / "crashed")
    crashed.callbacks.append(Crash(at=8))
    with pytest.raises(KeyboardInterrupt):
        crashed.train()
    assert [s for s, _ in resume.list_checkpoints(tmp_path / "crashed")] == [3, 6]
    # step 7 was logged after the last checkpoint (the crash came before step 8's line): resuming rewrites it
    assert max(losses(tmp_path / "crashed" / "metrics.jsonl")) == 7

    resumed = build_trainer(files, tmp_path / "crashed", init_seed=123)  # a different init: the checkpoint wins
    result = resumed.train(resume=True)
    assert result.resumed_from == 6 and result.step == 10
    a, b = losses(tmp_path / "straight" / "metrics.jsonl"), losses(tmp_path / "crashed" / "metrics.jsonl")
    assert list(a) == list(b) == list(range(1, 11))
    assert a == b, {s: (a[s], b[s]) for s in a if a[s] != b[s]}
    for (name, p), (_, q) in zip(straight.model.named_parameters(), resumed.model.named_parameters()):
        assert torch.equal(p, q), f"{name}: max abs diff {(p - q).abs().max():.3g}"
    for group_a, group_b in zip(straight.optimizer.param_groups, resumed.optimizer.param_groups):
        assert group_a["lr"] == group_b["lr"]


def cli_args(files, output, *extra):
    return ["pretrain", "--train-files", str(files["train"]), "--tokenizer", str(files["tok"]), "--output", str(output),
            "--config", str(files["model"]), "--dropout", "0.1", "--seq-len", "32", "--batch-size", "8",
            "--max-steps", "40", "--lr", "2e-3", "--warmup-steps", "4", "--save-every", "1", "--keep-last", "2",
            "--log-every", "1", "--threads", "1", "--data-cache", str(files["cache"]), "--no-progress", *extra]


def test_kill_9_then_resume_matches_the_uninterrupted_run(files, tmp_path):
    straight = tmp_path / "straight"
    assert main(cli_args(files, straight)) == 0

    killed = tmp_path / "killed"
    killed_at = kill_at_checkpoint(cli_args(files, killed), killed, 2, timeout=50)
    assert killed_at < 40

    assert main(cli_args(files, killed, "--resume")) == 0
    a, b = losses(straight / "metrics.jsonl"), losses(killed / "metrics.jsonl")
    assert list(a) == list(b) == list(range(1, 41))
    worst = max(abs(a[s] - b[s]) for s in a)
    assert worst <= 1e-6, f"killed after checkpoint step {killed_at}: max loss difference {worst:.3g}"
    weights_a = FNetForPreTraining.from_pretrained(straight).state_dict()
    weights_b = FNetForPreTraining.from_pretrained(killed).state_dict()
    for key in weights_a:
        assert torch.allclose(weights_a[key], weights_b[key], atol=1e-6), key


def test_half_written_checkpoints_are_ignored(tmp_path):
    """A kill while a checkpoint is written leaves .fnet-tmp-step-N (or a step dir without its state file):
    resume takes the newest complete one, and the next save clears the leftovers."""
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    good = resume.save_checkpoint(tmp_path, 4, model, optimizer, None, {"data": {}})
    (tmp_path / "checkpoints" / ".fnet-tmp-step-6").mkdir()
    (tmp_path / "checkpoints" / ".fnet-tmp-step-6" / "model.pt").write_bytes(b"cut")
    (tmp_path / "checkpoints" / "step-8").mkdir()
    assert resume.latest_checkpoint(tmp_path) == good
    resume.save_checkpoint(tmp_path, 6, model, optimizer, None, {"data": {}}, keep_last=1)
    assert [s for s, _ in resume.list_checkpoints(tmp_path)] == [6]
    assert not (tmp_path / "checkpoints" / ".fnet-tmp-step-6").exists()
    state = resume.load_checkpoint(tmp_path / "checkpoints" / "step-6", torch.nn.Linear(2, 2))
    assert state["step"] == 6


LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy-0.1"


def legacy_args(output, cache, *extra):
    """The options fnet 0.1 ran the fixture with (its run_config.json), tokenizer from the run folder."""
    return ["pretrain", "--train-files", str(LEGACY / "corpus.txt"), "--tokenizer", str(LEGACY / "pretrain-run"),
            "--output", str(output), "--config", str(LEGACY / "tiny.json"), "--seq-len", "32", "--batch-size", "4",
            "--save-every", "2", "--keep-last", "1", "--threads", "1", "--data-cache", str(cache), "--no-progress",
            *extra]


def test_checkpoint_written_by_fnet_0_1_loads_and_resumes(tmp_path):
    checkpoint = LEGACY / "pretrain-run" / "checkpoints" / "step-4"
    written = json.loads((checkpoint / "trainer_state.json").read_text())
    model = FNetForPreTraining.from_pretrained(checkpoint)
    optimizer = build_optimizer(model, OptimConfig())
    state = resume.load_checkpoint(checkpoint, model, optimizer, restore_rng=False)
    assert resume.Progress.from_state(state) == resume.Progress(step=4, elapsed_s=written["elapsed_s"], world_size=1)
    assert set(state) >= {"step", "optimizer", "scheduler", "rng", "data", "trainer_config", "extra"}
    assert int(optimizer.state_dict()["state"][0]["step"]) == 4

    # a run saved today writes the same trainer_state keys as fnet 0.1 did
    fresh = tmp_path / "fresh"
    assert main(legacy_args(fresh, tmp_path / "cache", "--max-steps", "4")) == 0
    today = resume.read_trainer_state(fresh / "checkpoints" / "step-4")
    assert set(today) == set(state) and set(today["data"]) == set(state["data"])
    assert set(today["trainer_config"]) == set(state["trainer_config"])
    # ... and the same weights (the pretraining numerics did not change)
    old, new = FNetForPreTraining.from_pretrained(checkpoint).state_dict(), \
        FNetForPreTraining.from_pretrained(fresh).state_dict()
    worst = max((old[k] - new[k]).abs().max().item() for k in old)
    assert worst <= 1e-5, f"step-4 weights differ from fnet 0.1's by {worst:.3g}"

    run = tmp_path / "legacy-run"
    shutil.copytree(LEGACY / "pretrain-run", run)
    assert main(legacy_args(run, tmp_path / "cache", "--max-steps", "6", "--resume")) == 0
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["resumed_from"] == 4 and summary["steps"] == 6
    assert [s for s, _ in resume.list_checkpoints(run)] == [6]
