"""On a CUDA GPU the commands give the CPU's results: fine-tuning, evaluation, prediction and embeddings
equal the CPU's within fp32 / bf16 tolerance, and two GPUs under torchrun (DDP, nccl) train like one.
Every test here is marked ``cuda`` and skips without a GPU (conftest); a GPU machine runs
``python3 -m pytest -m cuda tests/training/test_cuda.py``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fnet.cli.main import main as fnet_main

from test_harness_runs import data, losses, tokenizer_dir, torchrun  # noqa: F401  (fixtures and helpers)

pytestmark = pytest.mark.cuda


@pytest.fixture(scope="module")
def start_model(tmp_path_factory, tokenizer_dir):  # noqa: F811
    """A small classifier without dropout saved with its tokenizer: CPU and CUDA runs then draw no random masks."""
    from fnet.config import FNetConfig
    from fnet.modeling import FNetForSequenceClassification
    from fnet.tokenization import FNetTokenizer

    tokenizer = FNetTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = FNetConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, intermediate_size=128,
                        max_position_embeddings=64, hidden_dropout_prob=0.0, pad_token_id=tokenizer.pad_token_id,
                        num_labels=2)
    out = tmp_path_factory.mktemp("start")
    FNetForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def finetune_on(device, data, model, output, *extra):  # noqa: F811
    return fnet_main(["finetune", "--task", "classification", "--model", str(model), "--train", str(data["train"]),
                      "--validation", str(data["dev"]), "--output", str(output), "--epochs", "3", "--lr", "1e-3",
                      "--batch-size", "8", "--seq-len", "16", "--threads", "1", "--no-progress", "--device", device,
                      *extra])


@pytest.mark.parametrize("precision, loss_tol", [("fp32", 1e-4), ("bf16", 3e-2)])
def test_finetune_on_cuda_equals_the_cpu(data, start_model, tmp_path, precision, loss_tol):  # noqa: F811
    assert finetune_on("cpu", data, start_model, tmp_path / "cpu", "--precision", "fp32") == 0
    assert finetune_on("cuda", data, start_model, tmp_path / "gpu", "--precision", precision) == 0
    a, b = losses(tmp_path / "cpu" / "training" / "metrics.jsonl"), losses(tmp_path / "gpu" / "training" / "metrics.jsonl")
    assert list(a) == list(b)
    first = min(a)
    assert abs(a[first] - b[first]) <= loss_tol, f"first logged loss: cpu {a[first]} vs cuda {b[first]}"
    one = json.loads((tmp_path / "cpu" / "metrics.json").read_text())
    two = json.loads((tmp_path / "gpu" / "metrics.json").read_text())
    assert abs(one["eval_accuracy"] - two["eval_accuracy"]) <= 0.1, (one, two)


@pytest.mark.parametrize("precision, tol", [("fp32", 1e-4), ("bf16", 2e-2)])
def test_evaluate_predict_and_embed_on_cuda_equal_the_cpu(data, start_model, tmp_path, capsys, precision, tol):  # noqa: F811
    model = tmp_path / "clf"
    assert finetune_on("cpu", data, start_model, model, "--epochs", "1") == 0
    for device, out in (("cpu", "ev-cpu"), ("cuda", "ev-gpu")):
        extra = ["--precision", precision] if device == "cuda" else []
        assert fnet_main(["evaluate", "--model", str(model), "--data", str(data["dev"]), "--output",
                          str(tmp_path / out), "--device", device, "--no-progress", *extra]) == 0
    p1 = [json.loads(line) for line in (tmp_path / "ev-cpu" / "predictions.jsonl").read_text().splitlines()]
    p2 = [json.loads(line) for line in (tmp_path / "ev-gpu" / "predictions.jsonl").read_text().splitlines()]
    worst = max(abs(a["probabilities"][k] - b["probabilities"][k]) for a, b in zip(p1, p2) for k in a["probabilities"])
    assert worst <= tol, f"probabilities differ by {worst:.3g} ({precision})"
    assert sum(a["label"] != b["label"] for a, b in zip(p1, p2)) <= (0 if precision == "fp32" else 2)

    capsys.readouterr()
    texts = ["apple good river", "stone bad cloud", "quick slow table good"]
    outs = []
    for device in ("cpu", "cuda"):
        assert fnet_main(["predict", "--model", str(model), "--device", device, "--precision",
                          "fp32" if device == "cpu" else precision, "--no-progress", *texts]) == 0
        outs.append([json.loads(line) for line in capsys.readouterr().out.splitlines()])
    assert [r["index"] for r in outs[1]] == [0, 1, 2]
    for a, b in zip(*outs):
        assert max(abs(a["probabilities"][k] - b["probabilities"][k]) for k in a["probabilities"]) <= tol

    lines = tmp_path / "lines.txt"
    lines.write_text("\n".join(texts + ["", "music window garden"]) + "\n")
    for device in ("cpu", "cuda"):
        assert fnet_main(["embed", "--model", str(model), "--input", str(lines), "--output",
                          str(tmp_path / f"{device}.npy"), "--device", device, "--precision",
                          "fp32" if device == "cpu" else precision, "--no-progress"]) == 0
    e1, e2 = np.load(tmp_path / "cpu.npy"), np.load(tmp_path / "cuda.npy")
    assert e1.shape == e2.shape == (5, 64)
    scale = np.abs(e1).max()
    assert np.abs(e1 - e2).max() <= tol * max(1.0, scale), f"embeddings differ by {np.abs(e1 - e2).max():.3g}"


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_two_gpus_under_torchrun_train_like_one(data, start_model, tmp_path):  # noqa: F811
    assert finetune_on("cuda", data, start_model, tmp_path / "one", "--precision", "fp32") == 0
    torchrun(["finetune", "--task", "classification", "--model", str(start_model), "--train", str(data["train"]),
              "--validation", str(data["dev"]), "--output", str(tmp_path / "two"), "--epochs", "3", "--lr", "1e-3",
              "--batch-size", "8", "--seq-len", "16", "--no-progress", "--device", "cuda", "--precision", "fp32"])
    a, b = losses(tmp_path / "one" / "training" / "metrics.jsonl"), losses(tmp_path / "two" / "training" / "metrics.jsonl")
    assert list(a) == list(b)
    assert max(abs(a[s] - b[s]) for s in a) <= 1e-3, "no dropout: two GPUs with half the batch each equal one"
