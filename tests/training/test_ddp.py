"""Two CPU processes under torchrun (DDP, gloo) equal one process with the same global batch."""

from __future__ import annotations

import pytest
import torch.distributed as dist

from fnet.cli.main import main
from fnet.modeling import FNetForPreTraining

from pretraining_helpers import one_thread, read_metrics, tiny_model_config, train_tokenizer, write_corpus  # noqa: F401
from process_helpers import torchrun

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs gloo")


def test_two_processes_equal_one_with_the_same_global_batch(tmp_path):
    train = write_corpus(tmp_path / "train.txt", n_docs=30)
    held = write_corpus(tmp_path / "eval.txt", n_docs=6, seed=3)
    train_tokenizer(train, tmp_path / "tok")
    model = tiny_model_config(tmp_path / "model.json", num_hidden_layers=2)

    def args(output, batch, accum):
        return ["pretrain", "--train-files", str(train), "--eval-files", str(held), "--eval-batches", "1",
                "--eval-every", "2", "--tokenizer", str(tmp_path / "tok"), "--output", str(output), "--config", str(model),
                "--seq-len", "32", "--batch-size", str(batch), "--grad-accum", str(accum), "--max-steps", "4",
                "--lr", "3e-3", "--warmup-steps", "1", "--save-every", "2", "--log-every", "1", "--threads", "1",
                "--data-cache", str(tmp_path / "cache"), "--no-progress", "--device", "cpu"]

    # one process: micro-batches of 4, accumulated twice = 8 pairs per step
    assert main(args(tmp_path / "single", 4, 2)) == 0
    # two processes: 4 pairs each = the same 8 pairs per step
    torchrun(args(tmp_path / "ddp", 4, 1), timeout=120)

    single = read_metrics(tmp_path / "single" / "metrics.jsonl")
    ddp = read_metrics(tmp_path / "ddp" / "metrics.jsonl")
    assert [r["step"] for r in ddp] == [r["step"] for r in single], "rank 0 alone writes metrics, once per step"
    for a, b in zip(single, ddp):
        for key in ("loss", "mlm_acc", "nsp_acc", "eval_loss", "eval_mlm_acc"):
            if key in a:
                assert abs(a[key] - b[key]) <= 1e-5, f"step {a['step']} {key}: single {a[key]} vs ddp {b[key]}"
    assert sorted(p.name for p in (tmp_path / "ddp" / "checkpoints").iterdir()) == ["step-2", "step-4"]

    w1 = FNetForPreTraining.from_pretrained(tmp_path / "single").state_dict()
    w2 = FNetForPreTraining.from_pretrained(tmp_path / "ddp").state_dict()
    worst = max((w1[k] - w2[k]).abs().max().item() for k in w1)
    assert worst <= 1e-5, f"final weights differ by {worst:.3g}"
    start = FNetForPreTraining.from_pretrained(tmp_path / "ddp" / "checkpoints" / "step-2").state_dict()
    assert max((start[k] - w2[k]).abs().max().item() for k in w2) > 1e-4, "the weights did not move"
