"""fnet distill --task: the soft-label loss against a hand computation, a student that learns its
teacher's labels on a toy task, exact resume, and the CLI's flag checks."""

from __future__ import annotations

import csv
import json
import math
import random
from types import SimpleNamespace

import pytest
import torch

from fnet import FNetForSequenceClassification
from fnet.cli.main import main
from fnet.training.loop import Callback
from fnet.training.task_distill import (TaskDistillConfig, soft_label_loss, student_task_model, task_distill,
                                        task_distillation_loss)

from distill_helpers import make_tiny_teacher

WORDS = "car road drive fast slow city future safe risk trust test news google".split()
LABELS = ("negative", "neutral", "positive")


def test_soft_label_loss_is_the_temperature_scaled_kl_computed_by_hand():
    student = [[1.0, -0.5, 2.0], [0.0, 3.0, -1.0]]
    teacher = [[0.5, 0.5, 1.5], [-2.0, 1.0, 0.0]]
    temperature = 2.5
    kl = []
    for s, t in zip(student, teacher):  # float64, written out: p_t = softmax(t / T), p_s = softmax(s / T)
        zs = [math.exp(v / temperature) for v in s]
        zt = [math.exp(v / temperature) for v in t]
        p_s = [v / sum(zs) for v in zs]
        p_t = [v / sum(zt) for v in zt]
        kl.append(sum(pt * math.log(pt / ps) for pt, ps in zip(p_t, p_s)))
    expected = temperature ** 2 * sum(kl) / len(kl)
    got = float(soft_label_loss(torch.tensor(student), torch.tensor(teacher), temperature))
    assert got == pytest.approx(expected, rel=1e-6), (got, expected)
    assert float(soft_label_loss(torch.tensor(teacher), torch.tensor(teacher), temperature)) == pytest.approx(0, abs=1e-7)


def test_objective_weighs_its_terms_and_ignores_the_gold_label_of_unlabelled_rows():
    torch.manual_seed(0)
    hidden = tuple(torch.randn(3, 4, 8) for _ in range(3))
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]])
    teacher = SimpleNamespace(logits=torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 3.0]]),
                              hidden_states=hidden)
    perfect, stats = task_distillation_loss(teacher, teacher, torch.tensor([0, 1, 2]), mask, [0, 1])
    assert float(perfect) == pytest.approx(0.0, abs=1e-6) and stats["agreement"] == 1.0
    student = SimpleNamespace(logits=torch.zeros(3, 3), hidden_states=tuple(h + 0.5 for h in hidden))
    labels = torch.tensor([0, -100, 2])  # the middle row is unlabelled text
    loss, stats = task_distillation_loss(student, teacher, labels, mask, [0, 1], temperature=1.0, soft_weight=2.0,
                                         label_weight=3.0, hidden_weight=4.0)
    soft = float(soft_label_loss(student.logits, teacher.logits, 1.0))
    gold = math.log(3.0)  # uniform student logits: CE of each labelled row
    assert stats["hidden_mse"] == pytest.approx(0.25, abs=1e-6)
    assert float(loss) == pytest.approx(2.0 * soft + 3.0 * gold + 4.0 * 0.25, rel=1e-6)


def _write(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "text"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A 3-class toy task: 'hate' -> negative, 'love' -> positive, neither -> neutral; a tiny random BERT."""
    root = tmp_path_factory.mktemp("toy")
    rng = random.Random(0)

    def rows(n):
        out = []
        for i in range(n):
            label = LABELS[i % 3]
            words = [rng.choice(WORDS) for _ in range(rng.randint(3, 9))]
            if label != "neutral":
                words.insert(rng.randint(0, len(words)), {"negative": "hate", "positive": "love"}[label])
            out.append((label, " ".join(words)))
        return out

    teacher = make_tiny_teacher(root / "teacher", WORDS + ["hate", "love"], layers=2)
    unlabelled = root / "unlabelled.txt"
    unlabelled.write_text("\n".join(text for _, text in rows(60)) + "\n")
    return SimpleNamespace(teacher=teacher, train=_write(root / "train.csv", rows(480)),
                           dev=_write(root / "dev.csv", rows(90)), unlabelled=unlabelled, root=root)


def _config(toy, output, **kw):
    base = dict(task="classification", teacher=str(toy.teacher), train=str(toy.train), validation=str(toy.dev),
                output=str(output), seq_len=16, batch_size=16, teacher_epochs=15, teacher_lr=5e-3, epochs=6, lr=3e-3,
                save_every=10, log_every=1, progress=False, threads=1,
                precision="fp32",  # the thresholds below hold in fp32 on every CPU (bf16: its own test)
                seed=1)  # finetune now seeds the teacher's new head: seed 0's init leaves this toy teacher at 0.67
    return TaskDistillConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def distilled(toy):
    output = toy.root / "student"
    return output, task_distill(_config(toy, output, train_files=[str(toy.unlabelled)]))


def test_the_fnet_student_learns_its_teachers_labels(toy, distilled):
    output, summary = distilled
    teacher_accuracy = summary["teacher_metrics"]["eval_accuracy"]
    assert teacher_accuracy >= 0.9, summary  # the teacher learned the toy task through fnet finetune
    assert summary["eval_accuracy"] >= 0.9 * teacher_accuracy, summary
    assert summary["unlabelled_texts"] == 60 and summary["train_examples"] == 480
    saved = json.loads((output / "config.json").read_text())
    assert saved["token_mixer"] == "fourier" and saved["num_labels"] == 3
    assert json.loads((output / "teacher" / "config.json").read_text())["token_mixer"] == "attention"
    # an ordinary fnet finetune folder: fnet evaluate and fnet predict take it, and agree with the summary
    assert main(["evaluate", "--model", str(output), "--data", str(toy.dev), "--output", str(toy.root / "ev"),
                 "--no-progress"]) == 0
    metrics = json.loads((toy.root / "ev" / "metrics.json").read_text())
    assert metrics["eval_accuracy"] == pytest.approx(summary["eval_accuracy"])
    student = FNetForSequenceClassification.from_pretrained(output).eval()
    teacher = FNetForSequenceClassification.from_pretrained(output / "teacher").eval()
    from fnet.tokenization import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(output)
    rows = list(csv.DictReader(open(toy.dev, encoding="utf-8")))
    batch = tok([r["text"] for r in rows], padding=True, return_tensors="pt")
    untrained, _ = student_task_model(teacher, layer_scale=1e-3)  # where the student started
    with torch.no_grad():
        answers = {name: model.eval()(**batch).logits.argmax(-1)
                   for name, model in (("student", student), ("teacher", teacher), ("untrained", untrained))}
    agreement = {name: float((answers[name] == answers["teacher"]).float().mean()) for name in answers}
    assert agreement["student"] >= 0.9 and agreement["untrained"] <= 0.6, agreement  # it learned what it knows


def test_the_student_starts_as_the_teacher_without_attention(toy, distilled):
    output, _ = distilled
    teacher = FNetForSequenceClassification.from_pretrained(output / "teacher")
    student, report = student_task_model(teacher, layer_scale=1e-3)
    assert report["initialised"] == [f"fnet.encoder.layer.{i}.fourier.layer_scale".removeprefix("fnet.")
                                     for i in range(2)]
    torch.testing.assert_close(student.classifier.weight, teacher.classifier.weight, rtol=0, atol=0)
    torch.testing.assert_close(student.fnet.pooler.dense.weight, teacher.fnet.pooler.dense.weight, rtol=0, atol=0)
    assert student.config.token_mixer == "fourier" and student.config.id2label == teacher.config.id2label


class Crash(Callback):
    def on_step_end(self, trainer, step, logs):
        if step == 14:
            raise KeyboardInterrupt("simulated crash after step 14")


def _losses(folder):
    return {r["step"]: r["loss"] for r in map(json.loads, (folder / "metrics.jsonl").read_text().splitlines())
            if "loss" in r}


def test_a_stopped_run_resumes_exactly_and_reuses_its_teacher(toy, distilled, tmp_path):
    """The teacher of `distilled` is given as a fine-tuned folder (used as is); the student stops after
    step 14 (checkpoint at 10), resumes, and ends with the weights of a run that never stopped."""
    whole_dir, _ = distilled
    kw = dict(teacher=str(whole_dir / "teacher"), epochs=1, validation=None)
    whole = task_distill(_config(toy, tmp_path / "whole", **kw))
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        task_distill(_config(toy, cut, **kw), callbacks=[Crash()])
    resumed = task_distill(_config(toy, cut, resume=True, **kw))
    assert resumed["resumed_from"] == 10 and resumed["steps"] == whole["steps"] == 30
    a, b = _losses(tmp_path / "whole"), _losses(cut)
    assert [b[s] for s in range(11, 31)] == [a[s] for s in range(11, 31)]
    x = FNetForSequenceClassification.from_pretrained(tmp_path / "whole").state_dict()
    y = FNetForSequenceClassification.from_pretrained(cut).state_dict()
    assert all(torch.equal(x[k], y[k]) for k in x)


def test_cli_flags_of_one_mode_are_refused_in_the_other(toy, tmp_path, capsys):
    base = ["distill", "--teacher", str(toy.teacher), "--output", str(tmp_path / "o")]
    assert main([*base, "--train-files", str(toy.unlabelled), "--temperature", "3"]) == 2
    assert "--temperature: needs --task" in capsys.readouterr().err
    assert main([*base, "--task", "classification", "--train", str(toy.train), "--max-steps", "5"]) == 2
    assert "--max-steps: not an option of fnet distill --task" in capsys.readouterr().err
    assert main([*base, "--task", "classification"]) == 2
    assert "--train is required" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_bf16_on_the_harness_and_a_teacher_on_fewer_labels_than_the_student(toy, tmp_path):
    """--precision bf16 runs both stages under autocast on the CPU (as on CUDA); --teacher-train-examples
    fine-tunes the teacher on the first N labels while the student learns from all of them."""
    out = tmp_path / "bf16"
    summary = task_distill(_config(toy, out, precision="bf16", teacher_train_examples=240, teacher_epochs=30,
                                   epochs=1, label_weight=0.5))
    assert summary["precision"] == "bf16" and summary["device"] == "cpu" and summary["processes"] == 1
    assert summary["train_examples"] == 480  # the student: every labelled row
    teacher = json.loads((out / "teacher" / "metrics.json").read_text())
    assert teacher["train_examples"] == 240
    assert teacher["eval_accuracy"] >= 0.9, teacher  # bf16 fine-tuning still learns the toy task
    assert all(torch.isfinite(p).all() for p in FNetForSequenceClassification.from_pretrained(out).parameters())
    with pytest.raises(ValueError, match="--teacher-train-examples"):
        _config(toy, tmp_path / "x", teacher_train_examples=0).checked()


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="needs gloo")
def test_two_processes_under_torchrun_train_the_student_as_one(toy, distilled, tmp_path):
    """Under torchrun each process takes half of every global batch (DDP); rank 0 alone writes the
    folder and prints the summary; the student learns as the one-process student does."""
    from process_helpers import torchrun

    whole_dir, _ = distilled
    args = ["distill", "--task", "classification", "--teacher", str(whole_dir / "teacher"), "--train",
            str(toy.train), "--validation", str(toy.dev), "--seq-len", "16", "--batch-size", "16", "--epochs", "4",
            "--lr", "3e-3", "--precision", "fp32", "--save-every", "10", "--log-every", "1", "--no-progress"]
    assert main([*args, "--output", str(tmp_path / "one"), "--threads", "1"]) == 0
    printed = torchrun([*args, "--output", str(tmp_path / "two"), "--device", "cpu"])
    assert printed.count("student saved to") == 1  # rank 0 reports
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert list(one) == list(two) == list(range(1, 121))
    # not step-for-step equal: the student keeps the teacher's dropout, whose masks differ between one
    # process and two; both learn, to the same place
    for losses in (one, two):
        assert sum(list(losses.values())[-5:]) < 0.5 * sum(list(losses.values())[:5]), losses
    a = json.loads((tmp_path / "one" / "distill_summary.json").read_text())
    b = json.loads((tmp_path / "two" / "distill_summary.json").read_text())
    assert b["processes"] == 2 and a["processes"] == 1
    accuracy = (a["eval_accuracy"], b["eval_accuracy"])  # chance is 1/3
    assert min(accuracy) >= 0.6 and abs(accuracy[0] - accuracy[1]) <= 0.15, accuracy
