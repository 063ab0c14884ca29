"""`fnet calibrate`, evaluate's calibration report, predict's temperature, `fnet generate`, `fnet grow`:
end to end through the command line on tiny generated data."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from pretraining_helpers import make_words, train_tokenizer, write_corpus

from fnet import FNetConfig, FNetForPreTraining
from fnet.cli.main import main as fnet_main

WORDS = "apple river stone cloud paper music window garden silver yellow table chair light dark".split()


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A tiny sentiment classifier (fnet finetune) and held-out files: (model dir, cal.tsv, test.tsv)."""
    from fnet.tokenization import FNetTokenizer

    folder = tmp_path_factory.mktemp("seed_cli")
    rng = random.Random(0)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(" ".join(rng.choice(WORDS + ["good", "bad"]) for _ in range(10))
                                for _ in range(300)) + "\n")
    tokenizer = FNetTokenizer.train([str(corpus)], vocab_size=40, output_dir=str(folder / "tok"))

    def rows(n, seed, noise=0.2):  # the keyword decides the label, except for a noisy share
        r = random.Random(seed)
        out = ["sentence\tlabel"]
        for _ in range(n):
            label = r.randrange(2)
            word = ("good" if label else "bad") if r.random() > noise else r.choice(["good", "bad"])
            out.append(" ".join(r.choice(WORDS) for _ in range(4)) + f" {word}\t{label}")
        return "\n".join(out) + "\n"

    for name, n, seed in (("train", 240, 1), ("cal", 120, 2), ("test", 120, 3)):
        (folder / f"{name}.tsv").write_text(rows(n, seed))
    start = folder / "start"  # a very small encoder: the test is about calibration, not accuracy
    torch.manual_seed(0)
    FNetForPreTraining(FNetConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, intermediate_size=64,
                                  max_position_embeddings=16, pad_token_id=tokenizer.pad_token_id)).save_pretrained(start)
    out = folder / "clf"
    assert fnet_main(["finetune", "--no-progress", "--threads", "2", "--task", "classification", "--model",
                      str(start), "--tokenizer", str(folder / "tok"), "--train", str(folder / "train.tsv"),
                      "--output", str(out), "--epochs", "4", "--lr", "3e-3", "--batch-size", "16",
                      "--seq-len", "12"]) == 0
    return out, folder / "cal.tsv", folder / "test.tsv"


def test_calibrate_saves_a_temperature_that_evaluate_and_predict_use(classifier, tmp_path, capsys):
    model, cal, test = classifier
    capsys.readouterr()
    assert fnet_main(["evaluate", "--model", str(model), "--data", str(test), "--output", str(tmp_path / "before"),
                      "--mc-samples", "4", "--calibration-bins", "10"]) == 0
    before = json.loads(capsys.readouterr().out)
    block = before["calibration"]
    assert block["temperature"] is None and block["bins"] == 10 and block["predictions"] == 120
    assert set(block) >= {"softmax", "mc_dropout"}
    assert before["eval_ece"] == block["softmax"]["ece"] and before["eval_nll"] == block["softmax"]["nll"]
    assert abs(block["softmax"]["accuracy"] - before["eval_accuracy"]) < 1e-9
    saved = json.loads((tmp_path / "before" / "metrics.json").read_text())
    assert len(saved["calibration"]["softmax"]["bins"]) == 10  # the bins go to metrics.json

    plot = tmp_path / "cal.png"
    assert fnet_main(["calibrate", "--model", str(model), "--data", str(cal), "--bootstrap", "50", "--plot",
                      str(plot)]) == 0
    printed = capsys.readouterr().out
    assert "temperature" in printed and "before" in printed and "after" in printed and "[" in printed
    scaling = json.loads((model / "temperature.json").read_text())
    assert scaling["nll_after"] < scaling["nll_before"], scaling  # the fit lowers NLL on the data it saw
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # held-out data it did not see: evaluate reports the temperature-scaled probabilities too
    assert fnet_main(["evaluate", "--model", str(model), "--data", str(test), "--output", str(tmp_path / "after"),
                      "--reliability-plot", str(tmp_path / "test.png"), "--bootstrap", "20"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["calibration"]["temperature"] == pytest.approx(scaling["temperature"])
    assert after["eval_nll"] == pytest.approx(after["calibration"]["temperature_scaled"]["nll"])
    assert after["eval_accuracy"] == before["eval_accuracy"]  # dividing logits by T keeps the argmax
    assert after["calibration"]["softmax"]["nll"] == pytest.approx(before["calibration"]["softmax"]["nll"])
    assert (tmp_path / "test.png").is_file()

    # predict: softmax(logits / T), and --no-calibrated gives the plain softmax
    assert fnet_main(["predict", "--model", str(model), "apple good river"]) == 0
    scaled = json.loads(capsys.readouterr().out)["probabilities"]
    assert fnet_main(["predict", "--model", str(model), "--no-calibrated", "apple good river"]) == 0
    plain = json.loads(capsys.readouterr().out)["probabilities"]
    logit_gap = np.log(plain["1"] / plain["0"])  # two classes: log-odds = logit difference
    assert np.log(scaled["1"] / scaled["0"]) == pytest.approx(logit_gap / scaling["temperature"], rel=1e-4)
    assert fnet_main(["predict", "--model", str(model), "--mc-samples", "3", "apple good river"]) == 0
    assert json.loads(capsys.readouterr().out)["mc_samples"] == 3


def test_a_temperature_file_of_other_weights_is_refused_in_one_line(classifier, tmp_path, capsys):
    import shutil

    from fnet.modeling import FNetForSequenceClassification

    model, cal, _ = classifier
    copy = tmp_path / "copy"
    shutil.copytree(model, copy)
    if not (copy / "temperature.json").is_file():
        assert fnet_main(["calibrate", "--model", str(copy), "--data", str(cal)]) == 0
    changed = FNetForSequenceClassification.from_pretrained(copy)
    with torch.no_grad():
        changed.classifier.bias += 0.5
    changed.save_pretrained(copy)
    capsys.readouterr()
    assert fnet_main(["predict", "--model", str(copy), "apple good"]) == 2
    err = capsys.readouterr().err
    assert "fitted for other weights" in err and "fnet calibrate" in err and len(err.strip().splitlines()) == 1


def test_calibrate_refuses_a_task_without_class_labels(tmp_path, capsys):
    from fnet.apps.calibrate import CalibrateConfig

    with pytest.raises(ValueError, match="--data is required"):
        CalibrateConfig(model="m").validate()
    assert fnet_main(["calibrate", "--model", str(tmp_path), "--data", str(tmp_path / "x.tsv")]) == 2
    assert "not written by `fnet finetune`" in capsys.readouterr().err


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seed_mlm")
    tokenizer = train_tokenizer(write_corpus(folder / "corpus.txt"), folder / "tok", vocab_size=300)
    torch.manual_seed(0)
    config = FNetConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, intermediate_size=64,
                        max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id)
    out = folder / "mlm"
    FNetForPreTraining(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_generate_writes_samples_that_keep_the_keywords(mlm_dir, tmp_path, capsys):
    words = make_words(300)
    keywords = [words[3], words[40]]
    out = tmp_path / "samples.jsonl"
    args = ["generate", "--model", str(mlm_dir), "--keywords", *keywords, "--num-samples", "2", "--steps", "4",
            "--seed", "3", "--output", str(out)]
    assert fnet_main(args) == 0
    samples = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(samples) == 2
    for sample in samples:
        assert set(sample) == {"text", "score", "accepted", "proposed", "target_length"} and sample["proposed"] == 4
        tokens = sample["text"].split()
        assert len(tokens) > 2 and tokens.index(keywords[0]) < len(tokens) - 1 - tokens[::-1].index(keywords[1])
    assert fnet_main(args) == 2  # never overwrites unless told
    assert "--overwrite" in capsys.readouterr().err
    assert fnet_main(args + ["--overwrite"]) == 0
    assert fnet_main(["generate", "--model", str(mlm_dir), "--keywords", "日本"]) == 2
    assert "cannot represent" in capsys.readouterr().err


def test_grow_writes_an_exact_bigger_model_and_refuses_to_shrink(mlm_dir, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "grown"
    assert fnet_main(["grow", "--model", str(mlm_dir), "--output", str(out), "--intermediate-size", "128",
                      "--max-position-embeddings", "96"]) == 0
    printed = capsys.readouterr().out
    assert "intermediate_size 64 -> 128 (exact)" in printed and "exact by construction" in printed
    old, new = FNetForPreTraining.from_pretrained(mlm_dir).eval(), FNetForPreTraining.from_pretrained(out).eval()
    assert new.config.intermediate_size == 128 and new.config.max_position_embeddings == 96
    ids = torch.randint(0, old.config.vocab_size, (2, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = (old(input_ids=ids).prediction_logits - new(input_ids=ids).prediction_logits).abs().max()
    assert diff < 1e-4, diff
    assert (out / "spiece.model").is_file()

    assert fnet_main(["grow", "--model", str(mlm_dir), "--output", str(out), "--num-layers", "3"]) == 2
    assert "already holds" in capsys.readouterr().err  # never overwrites unless told
    assert FNetForPreTraining.from_pretrained(out).config.num_hidden_layers == old.config.num_hidden_layers
    assert fnet_main(["grow", "--model", str(mlm_dir), "--output", str(mlm_dir), "--num-layers", "3"]) == 2
    assert "is the --model folder" in capsys.readouterr().err
    assert fnet_main(["grow", "--model", str(mlm_dir), "--output", str(out), "--num-layers", "3", "--overwrite"]) == 0
    assert FNetForPreTraining.from_pretrained(out).config.num_hidden_layers == 3 != old.config.num_hidden_layers
    assert fnet_main(["grow", "--model", str(mlm_dir), "--output", str(tmp_path / "small"), "--num-layers", "1"]) == 2
    err = capsys.readouterr().err
    assert "--num-layers 1 is smaller" in err and not (tmp_path / "small").exists()
    assert fnet_main(["grow", "--model", str(mlm_dir), "--output", str(tmp_path / "x")]) == 2
    assert "nothing to grow" in capsys.readouterr().err
    assert fnet_main(["grow", "--model", str(mlm_dir), "--output", str(tmp_path / "deep"), "--num-layers", "3"]) == 0
    assert "not exact" in capsys.readouterr().out  # post-norm depth: measured


def test_pretraining_continues_from_a_grown_model(mlm_dir, tmp_path, capsys):
    """`fnet grow` then `fnet pretrain --init-from`: the run starts from the grown weights (at step 0
    the held-out loss equals the grown model's, which equals the small model's)."""
    grown = tmp_path / "grown"
    assert fnet_main(["grow", "--model", str(mlm_dir), "--output", str(grown), "--intermediate-size", "128"]) == 0
    corpus = write_corpus(tmp_path / "text.txt", n_docs=12)
    common = ["--train-files", str(corpus), "--eval-files", str(corpus), "--tokenizer", str(mlm_dir), "--seq-len", "32",
              "--batch-size", "4", "--threads", "1", "--no-progress", "--eval-batches", "2", "--lr", "1e-9"]
    losses = {}
    for name, source in (("small", mlm_dir), ("grown", grown)):
        out = tmp_path / f"run-{name}"
        assert fnet_main(["pretrain", *common, "--init-from", str(source), "--output", str(out), "--max-steps", "1",
                          "--seed", "0"]) == 0
        losses[name] = json.loads((out / "train_summary.json").read_text())["eval"]["eval_loss"]
        assert FNetForPreTraining.from_pretrained(out).config.intermediate_size == (128 if name == "grown" else 64)
    assert losses["grown"] == pytest.approx(losses["small"], abs=1e-4), losses  # lr 1e-9: the loaded weights, ~unchanged
    capsys.readouterr()
    bad_tokenizer = tmp_path / "tok"
    train_tokenizer(corpus, bad_tokenizer, vocab_size=120)
    assert fnet_main(["pretrain", *common[:4], "--tokenizer", str(bad_tokenizer), "--init-from", str(grown),
                      "--output", str(tmp_path / "bad"), "--max-steps", "1", "--no-progress"]) == 2
    assert "--init-from" in capsys.readouterr().err
