"""The run harness through the commands: `fnet finetune` resumes bit-exactly after ``kill -9``; under
torchrun (2 CPU processes, gloo) it gives one process's metrics within seed noise, and `fnet evaluate`
shards its rows and gives exactly one process's predictions; the sharding of inference outputs
(task_logits, encode_texts) puts every row back in input order; device and precision flags."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from fnet.cli.main import main as fnet_main

from process_helpers import kill_at_checkpoint, torchrun

WORDS = "apple river stone cloud paper music window garden silver yellow quick slow table chair light".split()


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    from fnet.tokenization import FNetTokenizer

    rng = random.Random(0)
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(" ".join(rng.choice(WORDS + ["good", "bad"]) for _ in range(12))
                              for _ in range(300)) + "\n")
    out = tmp_path_factory.mktemp("tok")
    FNetTokenizer.train([str(path)], vocab_size=44, output_dir=str(out))
    return out


def write_rows(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["sentence", "label"])
        for _ in range(n):
            label = rng.randrange(2)
            words = [rng.choice(WORDS) for _ in range(rng.randint(3, 8))]
            words.insert(rng.randrange(len(words) + 1), "good" if label else "bad")
            writer.writerow([" ".join(words), label])
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory, tokenizer_dir):
    root = tmp_path_factory.mktemp("data")
    return {"tok": tokenizer_dir, "train": write_rows(root / "train.tsv", 128, 1),
            "dev": write_rows(root / "dev.tsv", 40, 2)}


def finetune_args(data, output, *extra):
    return ["finetune", "--task", "classification", "--model", "fnet-tiny", "--tokenizer", str(data["tok"]),
            "--train", str(data["train"]), "--validation", str(data["dev"]), "--output", str(output),
            "--epochs", "3", "--lr", "1e-3", "--batch-size", "8", "--seq-len", "16", "--threads", "1",
            "--no-progress", "--device", "cpu", *extra]


def losses(path: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in map(json.loads, path.read_text().splitlines()) if "loss" in r}


def test_kill_9_during_finetune_then_resume_is_bit_exact(data, tmp_path):
    from fnet.modeling import FNetForSequenceClassification

    straight = tmp_path / "straight"
    assert fnet_main(finetune_args(data, straight, "--save-every", "6")) == 0

    killed = tmp_path / "killed"
    killed_at = kill_at_checkpoint(finetune_args(data, killed, "--save-every", "6"), killed / "training", 12,
                                   threads=1)
    assert killed_at < 48, "killed before the end (48 steps)"

    # without --resume the unfinished run is refused, naming the way out
    assert fnet_main(finetune_args(data, killed)) == 2
    assert fnet_main(finetune_args(data, killed, "--save-every", "6", "--resume")) == 0
    a, b = losses(straight / "training" / "metrics.jsonl"), losses(killed / "training" / "metrics.jsonl")
    assert list(a) == list(b) and a == b, f"killed after checkpoint step {killed_at}: the losses differ"
    assert json.loads((straight / "metrics.json").read_text())["eval_accuracy"] == \
        json.loads((killed / "metrics.json").read_text())["eval_accuracy"]
    w1 = FNetForSequenceClassification.from_pretrained(straight).state_dict()
    w2 = FNetForSequenceClassification.from_pretrained(killed).state_dict()
    assert all(torch.equal(w1[k], w2[k]) for k in w1), "the resumed model is not bit-exact"
    assert not (killed / "training" / "checkpoints").exists(), "a finished run keeps no checkpoints"
    assert fnet_main(finetune_args(data, killed, "--resume")) == 2, "a finished run has nothing to resume"
    assert (straight / "training" / "best").is_dir()


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs gloo")
def test_torchrun_finetune_matches_one_process_and_evaluate_shards_exactly(data, tmp_path):
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    assert fnet_main(finetune_args(data, single)) == 0
    printed = torchrun(finetune_args(data, ddp))
    assert printed.count("model saved to") == 1, "rank 0 alone reports"
    one = json.loads((single / "metrics.json").read_text())
    two = json.loads((ddp / "metrics.json").read_text())
    assert one["steps"] == two["steps"] == 48, "the same global batch: the same steps"
    # each rank draws its own dropout masks, so the runs differ by seed noise only
    assert abs(one["eval_accuracy"] - two["eval_accuracy"]) <= 0.1, (one, two)
    assert min(one["eval_accuracy"], two["eval_accuracy"]) >= 0.8, "both learned the keyword"
    la, lb = losses(single / "training" / "metrics.jsonl"), losses(ddp / "training" / "metrics.jsonl")
    assert list(la) == list(lb), "rank 0 alone writes metrics, once per logged step"
    assert abs(sum(la.values()) / len(la) - sum(lb.values()) / len(lb)) < 0.05

    # evaluate under torchrun: each rank runs half of the rows; predictions equal one process's exactly
    assert fnet_main(["evaluate", "--model", str(single), "--data", str(data["dev"]), "--output",
                      str(tmp_path / "ev1"), "--no-progress", "--threads", "1"]) == 0
    torchrun(["evaluate", "--model", str(single), "--data", str(data["dev"]), "--output", str(tmp_path / "ev2"),
              "--no-progress", "--threads", "1"])
    p1 = (tmp_path / "ev1" / "predictions.jsonl").read_text().splitlines()
    p2 = (tmp_path / "ev2" / "predictions.jsonl").read_text().splitlines()
    assert len(p1) == 40 and p1 == p2


class FakeRank:
    """A Run whose rank and world size are set by hand (gather returns only this rank's part)."""

    def __init__(self, rank: int, world_size: int):
        from fnet.harness import Run
        from fnet.training.distributed import DistContext

        self._run = Run(DistContext(rank=rank, world_size=world_size), "fp32")
        self.parts = None

    def __getattr__(self, name):
        return getattr(self._run, name)

    def gather(self, part):
        self.parts = part
        return [part]


def test_sharded_inference_puts_every_row_back_in_input_order():
    """Each rank's share (task_logits and encode_texts) joined in rank order equals the one-process result."""
    from fnet.config import FNetConfig
    from fnet.data.features import Features
    from fnet.embeddings import encode_texts
    from fnet.inference import task_logits
    from fnet.modeling import FNetForSequenceClassification

    torch.manual_seed(0)
    model = FNetForSequenceClassification(FNetConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1,
                                                     intermediate_size=32, max_position_embeddings=32,
                                                     pad_token_id=0, num_labels=3)).eval()
    lengths = torch.randint(2, 20, (13,))
    ids = torch.randint(1, 40, (13, 20))
    mask = (torch.arange(20)[None] < lengths[:, None]).long()
    features = Features(input_ids=ids * mask, token_type_ids=torch.zeros_like(ids), attention_mask=mask)
    whole = task_logits(model, features, batch_size=4)["logits"]
    parts = []
    for rank in range(3):
        fake = FakeRank(rank, 3)
        task_logits(model, features, batch_size=4, run=fake)
        parts.append(fake.parts["logits"])
    assert [len(p) for p in parts] == [5, 5, 3]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-6)

    class Tok:
        pad_token_id = 0

        def __call__(self, texts, truncation=True, max_length=32):
            return {"input_ids": [[1] + [2 + (ord(c) % 30) for c in t][: max_length - 2] + [3] for t in texts]}

    texts = ["a", "bbbbbbbb", "", "cc cc", "ddddddddddddd", "e", "ffff"]
    whole = encode_texts(model, texts, Tok(), batch_size=2, pooling="mean", normalize=False).embeddings
    parts = []
    for rank in range(2):
        parts.append(encode_texts(model, texts, Tok(), batch_size=2, pooling="mean", normalize=False,
                                  run=FakeRank(rank, 2)).embeddings)  # this rank's rows (the fake gathers none)
    assert [len(p) for p in parts] == [4, 3]
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-6)


def test_device_and_precision_flags_are_checked_before_any_work(data, tmp_path, capsys):
    if not torch.cuda.is_available():
        for command in (finetune_args(data, tmp_path / "a", "--device", "cuda"),
                        ["predict", "--model", str(tmp_path / "none"), "--device", "cuda", "x"],
                        ["embed", "--model", str(tmp_path / "none"), "--input", str(data["dev"]), "--output",
                         str(tmp_path / "e.npy"), "--device", "cuda:0"]):
            assert fnet_main(command) == 2
            assert "--device cuda" in capsys.readouterr().err
    assert fnet_main(finetune_args(data, tmp_path / "b", "--precision", "fp16")) == 2
    assert "fp16 is for inference" in capsys.readouterr().err
    assert fnet_main(finetune_args(data, tmp_path / "c", "--bf16", "--precision", "fp32")) == 2
    assert "--bf16 is --precision bf16" in capsys.readouterr().err
    assert fnet_main(finetune_args(data, tmp_path / "d", "--device", "gpu")) == 2
    assert "--device must be auto, cpu, cuda or cuda:N" in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in "abcd"), "nothing is written before the checks"


def test_precision_and_device_resolution():
    """auto is the CPU here; the CPU default is fp32 (CPU results unchanged); int8 is refused off the CPU."""
    from fnet.harness import DeviceOptions, autocast, check_quantize_device, resolve_device, resolve_precision

    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
    assert resolve_precision(None, torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    assert DeviceOptions(precision=None).wanted_precision() is None
    with autocast(torch.device("cpu"), "bf16"):
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "fp32"):
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.float32
    check_quantize_device("int8", torch.device("cpu"))
    with pytest.raises(ValueError, match="--quantize int8 runs on the CPU only"):
        check_quantize_device("int8", torch.device("cuda", 0))


@pytest.mark.parametrize("hardware_bf16", [True, False])
def test_cpu_bf16_is_the_default_only_for_commands_that_opt_in_and_only_on_hardware_bf16(monkeypatch,
                                                                                           hardware_bf16):
    """fnet distill (both modes) trains in bf16 on a CPU with hardware bfloat16 and in fp32 elsewhere;
    every other command keeps fp32 on every CPU; an explicit --precision always wins."""
    from fnet import harness
    from fnet.training.distill import DistillConfig
    from fnet.training.finetune import FinetuneConfig
    from fnet.training.task_distill import TaskDistillConfig

    assert isinstance(harness.cpu_has_fast_bf16(), bool)  # the real probe answers on any machine
    monkeypatch.setattr(harness, "cpu_has_fast_bf16", lambda: hardware_bf16)
    cpu = torch.device("cpu")
    assert DistillConfig.cpu_bf16 and TaskDistillConfig.cpu_bf16 and not FinetuneConfig.cpu_bf16
    expected = "bf16" if hardware_bf16 else "fp32"
    assert harness.resolve_precision(None, cpu, DistillConfig.cpu_bf16) == expected
    assert harness.resolve_precision(None, cpu, FinetuneConfig.cpu_bf16) == "fp32"
    assert harness.resolve_precision("fp32", cpu, True) == "fp32"
    with harness.start(TaskDistillConfig(device="cpu", threads=1), command="distill") as run:
        assert run.precision == expected
    with harness.start(FinetuneConfig(device="cpu", threads=1), command="finetune") as run:
        assert run.precision == "fp32"


@pytest.mark.parametrize("load, expected", [(0.0, 2), (0.3, 2), (0.9, 1), (1.2, 1), (3.5, 1)])
def test_default_threads_use_the_idle_cores_of_a_two_core_machine(monkeypatch, load, expected):
    """An idle machine's load average is not 0: 0.3 on two cores still gets both (it got 1 by flooring)."""
    from fnet.training import distributed

    monkeypatch.setattr(distributed.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(distributed.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert distributed.default_threads(distributed.DistContext()) == expected
