"""Folders written by fnet 0.1 (tests/fixtures/legacy-0.1, made by the code of commit a45e27b) still load and work.

The fixture holds a tokenizer-carrying pretraining run (with a step-4 checkpoint) and a classifier
fine-tuned from it, plus the logits and `fnet predict` output that the 0.1 code gave for two inputs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from fnet import FNetForSequenceClassification, FNetModel, FNetTokenizer
from fnet.cli.main import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "legacy-0.1"


def test_legacy_classifier_gives_the_same_logits():
    expected = json.loads((FIXTURE / "expected_logits.json").read_text())
    tok = FNetTokenizer.from_pretrained(FIXTURE / "classifier")
    model = FNetForSequenceClassification.from_pretrained(FIXTURE / "classifier").eval()
    batch = tok(expected["inputs"], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    diff = (logits - torch.tensor(expected["logits"])).abs().max().item()
    assert diff < 1e-6, f"logits moved by {diff}"


def test_legacy_pretrained_backbone_loads():
    model = FNetModel.from_pretrained(FIXTURE / "pretrain-run")
    assert model.config.hidden_size == 16 and model.config.num_hidden_layers == 1


def test_legacy_classifier_predicts_through_the_cli(tmp_path, capsys):
    out = tmp_path / "pred.jsonl"
    assert main(["predict", "--model", str(FIXTURE / "classifier"), "--input", str(FIXTURE / "inputs.txt"),
                 "--output", str(out)]) == 0
    got = [json.loads(line) for line in out.read_text().splitlines()]
    want = [json.loads(line) for line in (FIXTURE / "expected_predictions.jsonl").read_text().splitlines()]
    assert [g["label"] for g in got] == [w["label"] for w in want]
    for g, w in zip(got, want):
        assert g["text"] == w["text"]
        for label, p in w["probabilities"].items():
            assert abs(g["probabilities"][label] - p) < 1e-6


def test_legacy_classifier_evaluates_through_the_cli(tmp_path):
    work = tmp_path / "clf"
    shutil.copytree(FIXTURE / "classifier", work)
    assert main(["evaluate", "--model", str(work), "--data", str(FIXTURE / "train.csv"),
                 "--output", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0
