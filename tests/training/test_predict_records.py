"""predict/evaluate records: one per input line with its index, empty texts flagged (never a
confident label for ""), truncation reported per record and counted on stderr."""

from __future__ import annotations

import json
from pathlib import Path

from fnet.cli.main import main as fnet_main
from fnet.apps.predict import EMPTY_TEXT, PredictConfig, predict

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "legacy-0.1" / "classifier-tsv"  # seq_len 16


def test_blank_lines_keep_their_place_with_a_null_result(tmp_path, capsys):
    lines = ["a fine film", "", "   ", "dull and slow", "", "good"]
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert fnet_main(["predict", "--model", str(FIXTURE), "--input", str(path), "--no-progress"]) == 0
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["index"] for r in records] == list(range(len(lines)))
    assert [r["text"] for r in records] == lines
    for record, line in zip(records, lines):
        if line.strip():
            assert record["label"] in ("0", "1") and "skipped" not in record
        else:
            assert record["prediction"] is None and record["skipped"] == EMPTY_TEXT and "label" not in record
    assert "3 of 6 inputs were empty" in captured.err


def test_empty_text_gets_no_confident_label():
    records = predict(PredictConfig(model=str(FIXTURE), texts=["", "good"], progress=False))
    assert records[0] == {"index": 0, "text": "", "prediction": None, "skipped": EMPTY_TEXT}
    assert records[1]["index"] == 1 and records[1]["label"] in ("0", "1")


def test_long_text_is_flagged_as_truncated(capsys):
    long_text = ("good film " * 10_000)[:100_000]
    assert fnet_main(["predict", "--model", str(FIXTURE), "--no-progress", "short one", long_text]) == 0
    captured = capsys.readouterr()
    short, long = [json.loads(line) for line in captured.out.splitlines()]
    assert short["truncated"] is False and short["tokens"] <= 16
    assert long["truncated"] is True and long["tokens"] > 10_000, long["tokens"]
    assert "1 of 2 inputs were longer than the model's input length" in captured.err


def test_bucketed_predictions_equal_one_at_a_time():
    """Length buckets reorder rows internally; every record must still belong to its own input."""
    texts = ["good", "a long and winding and rather dull film about nothing much at all", "bad", "fine film",
             "x " * 40, "ok"]
    together = predict(PredictConfig(model=str(FIXTURE), texts=texts, batch_size=2, max_tokens=32, progress=False))
    for i, text in enumerate(texts):
        alone = predict(PredictConfig(model=str(FIXTURE), texts=[text], progress=False))[0]
        assert together[i]["text"] == text and together[i]["label"] == alone["label"]
        worst = max(abs(together[i]["probabilities"][k] - alone["probabilities"][k]) for k in alone["probabilities"])
        assert worst < 1e-5, f"input {i}: probabilities differ by {worst} between bucketed and single runs"


def test_evaluate_counts_truncated_examples(tmp_path, capsys):
    assert fnet_main(["evaluate", "--model", str(FIXTURE), "--data", str(FIXTURE / "data.tsv"),
                      "--output", str(tmp_path), "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    records = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert summary["truncated"] == sum(r["truncated"] for r in records)
    assert [r["index"] for r in records] == list(range(summary["examples"]))
