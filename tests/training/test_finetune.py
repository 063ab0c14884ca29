"""End-to-end fine-tuning, evaluation and prediction for each task family, on tiny generated data
(and on tiny slices of ../shared/data when present)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from conftest import shared_data
from fnet.cli.main import main as fnet_main

WORDS = ("apple river stone cloud paper music window garden silver yellow quick slow table "
         "chair light dark north south happy green").split()


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    from fnet.tokenization import FNetTokenizer

    rng = random.Random(0)
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    lines = [" ".join(rng.choice(WORDS + ["good", "bad", "Paris", "London", "Alice"]) for _ in range(12))
             for _ in range(400)]
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path_factory.mktemp("tok")
    FNetTokenizer.train([str(path)], vocab_size=56, output_dir=str(out))
    return out


def _sentiment_rows(n, seed):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randrange(2)
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 10))]
        words.insert(rng.randrange(len(words) + 1), "good" if label else "bad")
        rows.append((" ".join(words), label))
    return rows


def _write_tsv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["sentence", "label"])
        writer.writerows(rows)
    return path


def _finetune(args):
    assert fnet_main(["finetune", "--no-progress", "--threads", "2"] + [str(a) for a in args]) == 0


def test_classification_learns_and_round_trips_through_the_cli(tokenizer_dir, tmp_path, capsys):
    train = _write_tsv(tmp_path / "train.tsv", _sentiment_rows(320, 1))
    dev = _write_tsv(tmp_path / "dev.tsv", _sentiment_rows(48, 2))
    out = tmp_path / "clf"
    _finetune(["--task", "classification", "--model", "fnet-tiny", "--tokenizer", tokenizer_dir, "--train", train,
               "--validation", dev, "--output", out, "--epochs", 6, "--lr", 1e-3, "--batch-size", 16, "--seq-len", 16])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["eval_accuracy"] >= 0.8, metrics  # chance is 0.5; the label is one keyword: a working pipeline learns it
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 48 and set(preds[0]) >= {"label", "probabilities", "text"}
    assert {"config.json", "model.safetensors", "spiece.model", "fnet_task.json"} <= {p.name for p in out.iterdir()}

    capsys.readouterr()
    assert fnet_main(["evaluate", "--model", str(out), "--data", str(dev), "--output", str(tmp_path / "ev")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert abs(printed["eval_accuracy"] - metrics["eval_accuracy"]) < 1e-9, "evaluate must reproduce the best epoch"

    assert fnet_main(["predict", "--model", str(out), "apple good river", "stone bad cloud"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in lines] == ["1", "0"]

    assert fnet_main(["predict", "--model", str(out), "--mc-samples", "8", "apple good river"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["mc_samples"] == 8 and set(record["std"]) == {"0", "1"}
    assert abs(sum(record["probabilities"].values()) - 1) < 1e-5
    assert all(s >= 0 for s in record["std"].values())


def test_predict_rejects_meaningless_sample_counts(tokenizer_dir, tmp_path):
    from fnet.training.finetune import FinetuneConfig, PredictConfig, finetune, predict

    train = _write_tsv(tmp_path / "train.tsv", _sentiment_rows(40, 3))
    finetune(FinetuneConfig(task="classification", model="fnet-tiny", tokenizer=str(tokenizer_dir), train=str(train),
                            output=str(tmp_path / "m"), epochs=1, batch_size=8, seq_len=16, progress=False))
    with pytest.raises(ValueError, match="no spread"):
        predict(PredictConfig(model=str(tmp_path / "m"), texts=["x"], mc_samples=1))
    with pytest.raises(ValueError, match="give texts"):
        predict(PredictConfig(model=str(tmp_path / "m"), texts=[]))


def test_regression_and_multi_label(tokenizer_dir, tmp_path):
    from fnet.training.finetune import FinetuneConfig, finetune

    rng = random.Random(4)
    reg = tmp_path / "reg.csv"
    ml = tmp_path / "ml.jsonl"
    with open(reg, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "score"])
        for _ in range(48):
            writer.writerow([" ".join(rng.choice(WORDS) for _ in range(5)), f"{rng.uniform(0, 5):.2f}"])
    with open(ml, "w") as handle:
        for _ in range(48):
            labels = sorted(rng.sample(["x", "y", "z"], rng.randint(1, 2)))
            handle.write(json.dumps({"text": " ".join(rng.choice(WORDS) for _ in range(5)), "label": labels}) + "\n")
    r = finetune(FinetuneConfig(task="classification", model="fnet-tiny", tokenizer=str(tokenizer_dir),
                                 train=str(reg), validation=str(reg), output=str(tmp_path / "r"), epochs=1,
                                 batch_size=8, seq_len=16, progress=False))
    assert {"eval_pearson", "eval_spearman", "eval_mse"} <= set(r)
    m = finetune(FinetuneConfig(task="classification", model="fnet-tiny", tokenizer=str(tokenizer_dir),
                                 train=str(ml), validation=str(ml), output=str(tmp_path / "m"), epochs=1,
                                 batch_size=8, seq_len=16, progress=False))
    assert "eval_f1_micro" in m
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["problem_type"] == "multi_label_classification" and len(cfg["id2label"]) == 3


def test_token_classification_end_to_end(tokenizer_dir, tmp_path):
    rng = random.Random(5)
    path = tmp_path / "ner.conll"
    with open(path, "w") as handle:
        for _ in range(40):
            for _ in range(rng.randint(3, 6)):
                word = rng.choice(WORDS + ["Paris", "London", "Alice"])
                tag = {"Paris": "B-location", "London": "B-location", "Alice": "B-person"}.get(word, "O")
                handle.write(f"{word}\t{tag}\n")
            handle.write("\n")
    out = tmp_path / "ner"
    _finetune(["--task", "token-classification", "--model", "fnet-tiny", "--tokenizer", tokenizer_dir, "--train", path,
               "--validation", path, "--output", out, "--epochs", 6, "--lr", 3e-3, "--batch-size", 8, "--seq-len", 16])
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"eval_precision", "eval_recall", "eval_f1"} <= set(metrics)
    assert metrics["eval_f1"] > 0.5, metrics  # entity words are fixed strings: learnable
    record = json.loads((out / "predictions.jsonl").read_text().splitlines()[0])
    assert len(record["tokens"]) == len(record["tags"])


def test_question_answering_end_to_end_on_real_squad_slice(tokenizer_dir, tmp_path, capsys):
    squad = shared_data("qa/xquad_en.json")
    data = json.loads(squad.read_text())
    data["data"] = data["data"][:1]
    paragraph = data["data"][0]["paragraphs"][0]
    paragraph["qas"] = paragraph["qas"][:4]
    paragraph["qas"][0]["answers"][0]["answer_start"] += 2  # real files (COVID-QA) have such offsets
    data["data"][0]["paragraphs"] = [paragraph]
    small = tmp_path / "squad.json"
    small.write_text(json.dumps(data))
    out = tmp_path / "qa"
    args = ["finetune", "--no-progress", "--task", "question-answering", "--model", "fnet-tiny", "--tokenizer",
            str(tokenizer_dir), "--train", str(small), "--validation", str(small), "--output", str(out), "--epochs", "1",
            "--batch-size", "8", "--seq-len", "160", "--stride", "32"]
    assert fnet_main(args) == 2, "a misplaced answer is an error by default"
    assert "does not match the context" in capsys.readouterr().err
    assert fnet_main(args + ["--answer-mismatch", "fix"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"eval_exact_match", "eval_f1"} <= set(metrics)
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    questions = sum(len(p["qas"]) for p in data["data"][0]["paragraphs"])
    assert len(preds) == questions and all(isinstance(p["answer"], str) for p in preds)


def test_multiple_choice_end_to_end(tokenizer_dir, tmp_path):
    rng = random.Random(6)
    path = tmp_path / "mc.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "context", "question", "answer0", "answer1", "answer2", "answer3", "label"])
        for i in range(40):
            answers = [" ".join(rng.choice(WORDS) for _ in range(3)) for _ in range(4)]
            label = rng.randrange(4)
            answers[label] += " good"
            writer.writerow([i, " ".join(rng.choice(WORDS) for _ in range(8)), "which one?", *answers, label])
    out = tmp_path / "mc"
    _finetune(["--task", "multiple-choice", "--model", "fnet-tiny", "--tokenizer", tokenizer_dir, "--train", path,
               "--validation", path, "--output", out, "--epochs", 1, "--batch-size", 8, "--seq-len", 32,
               "--group-by-length"])  # (b, choices, n) masks: grouped by each row's longest choice
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0
    record = json.loads((out / "predictions.jsonl").read_text().splitlines()[0])
    assert len(record["probabilities"]) == 4


def test_finetune_errors_are_one_line(tokenizer_dir, tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence\tlabel\nfine text\t1\n\tno text\n")
    code = fnet_main(["finetune", "--task", "classification", "--model", "fnet-tiny", "--tokenizer", str(tokenizer_dir),
                      "--train", str(bad), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "bad.tsv:3" in err and "Traceback" not in err
    code = fnet_main(["finetune", "--task", "classification", "--model", "no-such-dir", "--tokenizer",
                      str(tokenizer_dir), "--train", str(bad), "--output", str(tmp_path / "o")])
    assert code == 2
    capsys.readouterr()
    code = fnet_main(["finetune", "--task", "classification", "--model", "fnet-tiny", "--tokenizer", str(tokenizer_dir),
                      "--train", str(bad), "--output", str(tmp_path / "o"), "--batch-size", "10", "--grad-accum", "3"])
    assert code == 2 and "multiple of --grad-accum 3" in capsys.readouterr().err
    code = fnet_main(["evaluate", "--model", str(tmp_path), "--data", str(bad)])
    assert code == 2 and "not written by `fnet finetune`" in capsys.readouterr().err



def test_qa_predicts_null_only_when_the_data_has_unanswerable_questions(tmp_path):
    from fnet.data.features import Features
    from fnet.tasks import get_family
    from fnet.tasks.question_answering import QAExample, QAExamples
    import numpy as np

    context = "the cat sat on the mat"
    ex = QAExample(id="q1", question="where?", context=context, answers=[{"text": "the mat", "answer_start": 15}],
                   is_impossible=False)
    # window: [CLS] where ? [SEP] the cat sat on the mat [SEP]; CLS scores highest, "mat" is the best span
    offsets = [None, None, None, None, (0, 3), (4, 7), (8, 11), (12, 14), (15, 18), (19, 22), None]
    features = Features({}, meta={"example_id": ["q1"], "example_index": [0], "offset_mapping": [offsets],
                                  "cls_index": [0], "contexts": [context]})
    start = np.full((1, 11), -5.0); end = np.full((1, 11), -5.0)
    start[0, 0] = end[0, 0] = 3.0
    start[0, 8], end[0, 9] = 1.0, 1.0
    for impossible, expected in ((False, "the mat"), (True, "")):
        other = QAExample(id="q2", question="?", context=context, answers=[], is_impossible=impossible)
        examples = QAExamples(examples=[ex, other], version_2_with_negative=True)
        _, records = get_family("question_answering").score(
            examples, features, {"start_logits": start, "end_logits": end}, [], max_answer_length=30)
        assert records[0]["answer"] == expected


FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "legacy-0.1" / "classifier-tsv"


def test_directory_written_before_the_registry_still_evaluates_and_predicts(tmp_path, capsys):
    """fnet_task.json (and the model, tokenizer) written by the code before fnet.tasks, with the
    outputs that code gave: evaluate and predict must read it and give the same numbers."""
    expected = [json.loads(line) for line in (FIXTURE / "expected_predict.jsonl").read_text().splitlines()]
    assert fnet_main(["predict", "--model", str(FIXTURE), *[r["text"] for r in expected]]) == 0
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for g, e in zip(got, expected, strict=True):
        assert g["label"] == e["label"] and g["text"] == e["text"]
        worst = max(abs(g["probabilities"][k] - e["probabilities"][k]) for k in e["probabilities"])
        assert worst < 1e-5, f"probabilities differ by {worst}"
    assert fnet_main(["evaluate", "--model", str(FIXTURE), "--data", str(FIXTURE / "data.tsv"),
                      "--output", str(tmp_path)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    reference = json.loads((FIXTURE / "expected_metrics.json").read_text())
    for key in ("examples", "eval_accuracy", "eval_f1_macro", "eval_f1", "eval_matthews_correlation"):
        assert metrics[key] == pytest.approx(reference[key]), key


def test_run_config_file(tokenizer_dir, tmp_path, capsys):
    train = _write_tsv(tmp_path / "train.tsv", _sentiment_rows(24, 7))
    bad = tmp_path / "bad.toml"
    bad.write_text('task = "classification"\nlearning_rate = 0.1\n')
    assert fnet_main(["finetune", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown option(s) ['learning_rate']" in err and "'lr'" in err
    run = tmp_path / "run.toml"
    run.write_text(f'task = "classification"\nmodel = "fnet-tiny"\ntokenizer = "{tokenizer_dir}"\n'
                   f'train = "{train}"\noutput = "{tmp_path / "out"}"\nepochs = 1\nbatch-size = 8\nseq_len = 16\n'
                   'progress = false\n[reader]\ntext_column = "sentence"\n')
    assert fnet_main(["finetune", "--config", str(run), "--seq-len", "12"]) == 0  # the flag wins over the file
    info = json.loads((tmp_path / "out" / "fnet_task.json").read_text())
    assert info["seq_len"] == 12 and info["reader"] == {"text_column": "sentence"}
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"task": "classification"}))
    assert fnet_main(["finetune", "--config", str(missing)]) == 2
    assert "--model is required" in capsys.readouterr().err
