"""Folders written by main at 1452b74, before the run harness (tests/fixtures/main-1452b74, see its README),
still work: the classifier predicts and evaluates as that code did, and its pretraining run resumes
from its step-2 checkpoint to the same final weights that code wrote at step 4."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from safetensors.torch import load_file

from fnet.cli.main import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "main-1452b74"


def test_classifier_predicts_and_evaluates_as_main_did(tmp_path):
    out = tmp_path / "pred.jsonl"
    assert main(["predict", "--model", str(FIXTURE / "classifier"), "--input", str(FIXTURE / "inputs.txt"),
                 "--output", str(out), "--no-progress"]) == 0
    got = [json.loads(line) for line in out.read_text().splitlines()]
    want = [json.loads(line) for line in (FIXTURE / "expected_predict.jsonl").read_text().splitlines()]
    assert len(got) == len(want) == 4
    for a, b in zip(got, want):
        assert {k: v for k, v in a.items() if k != "probabilities"} == {k: v for k, v in b.items() if k != "probabilities"}
        if b.get("probabilities"):
            assert max(abs(a["probabilities"][k] - b["probabilities"][k]) for k in b["probabilities"]) < 1e-6

    assert main(["evaluate", "--model", str(FIXTURE / "classifier"), "--data", str(FIXTURE / "train.tsv"),
                 "--output", str(tmp_path / "ev"), "--no-progress"]) == 0
    got = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    want = json.loads((FIXTURE / "expected_evaluate_metrics.json").read_text())
    for key, value in want.items():
        if key.startswith("eval_") and isinstance(value, float):
            assert abs(got[key] - value) < 1e-9, f"{key}: {got[key]} vs main's {value}"


def test_pretraining_run_resumes_from_mains_checkpoint_to_mains_weights(tmp_path):
    run = tmp_path / "pretrain-run"
    shutil.copytree(FIXTURE / "pretrain-run", run)
    shutil.rmtree(run / "checkpoints" / "step-4")  # as if main's run had stopped after step 2
    assert main(["pretrain", "--train-files", str(FIXTURE / "corpus.txt"), "--tokenizer", str(run), "--output",
                 str(run), "--config", str(FIXTURE / "tiny.json"), "--seq-len", "16", "--batch-size", "4",
                 "--max-steps", "4", "--save-every", "2", "--log-every", "1", "--threads", "1", "--no-progress",
                 "--device", "cpu", "--data-cache", str(tmp_path / "cache"), "--resume"]) == 0
    want = load_file(FIXTURE / "pretrain-run" / "model.safetensors")
    got = load_file(run / "model.safetensors")
    assert set(got) == set(want)
    worst = max((got[k] - want[k]).abs().max().item() for k in want)
    assert worst <= 1e-6, f"resumed weights differ from main's by {worst:.3g}"
