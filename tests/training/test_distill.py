"""fnet distill: the student's initialisation from a BERT teacher, the objective, loss going down, exact resume."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from fnet import FNetForSequenceClassification, FNetModel
from fnet.cli.main import main
from fnet.training.distill import (DistillConfig, distill, distillation_loss, student_from_teacher,
                                   teacher_layer_map)
from fnet.training.loop import Callback

from distill_helpers import make_tiny_teacher

WORDS = ("the a cat dog sat on mat ran fast slow big small red blue house tree river sky sun moon bird fish "
         "sings swims flies under over near far green old new").split()


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """A tiny random BERT with a WordPiece vocab.txt and a sentence-transformers pooling config."""
    return make_tiny_teacher(tmp_path_factory.mktemp("teacher"), WORDS)


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("text") / "train.txt"
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 40))) + " ." for _ in range(120)]
    path.write_text("\n".join(lines[:60]) + "\n\n" + "\n".join(lines[60:]) + "\n")
    return path


def test_layer_map_is_evenly_spaced_and_ends_at_the_last_layer():
    assert teacher_layer_map(6, 6) == [0, 1, 2, 3, 4, 5]
    assert teacher_layer_map(6, 3) == [1, 3, 5]
    assert teacher_layer_map(12, 4) == [2, 5, 8, 11]
    with pytest.raises(ValueError, match="--layers"):
        teacher_layer_map(6, 7)


def test_student_copies_every_shape_compatible_weight(teacher_dir):
    teacher = FNetModel.from_pretrained(teacher_dir)
    student, report = student_from_teacher(teacher, layers=2)
    assert student.config.token_mixer == "fourier" and student.config.num_hidden_layers == 2
    assert report["initialised"] == [] and report["layer_map"] == [1, 3]
    t, s = teacher.state_dict(), student.state_dict()
    # BERT's attention output LayerNorm becomes the Fourier sublayer's norm; layer 1 of the student is teacher layer 3
    torch.testing.assert_close(s["encoder.layer.1.fourier.output.LayerNorm.weight"],
                               t["encoder.layer.3.attention.output.LayerNorm.weight"], rtol=0, atol=0)
    torch.testing.assert_close(s["encoder.layer.0.intermediate.dense.weight"],
                               t["encoder.layer.1.intermediate.dense.weight"], rtol=0, atol=0)
    torch.testing.assert_close(s["embeddings.word_embeddings.weight"], t["embeddings.word_embeddings.weight"])
    assert all("attention" in k or "layer.0." in k or "layer.2." in k for k in report["dropped"])
    assert not any("attention" in k for k in s)


def test_layer_scale_starts_the_student_near_the_teacher(teacher_dir):
    """The un-scaled Fourier output swamps the residual stream the teacher's attention added to; a small
    LayerScale gain keeps it, so the student starts much closer to the teacher (MiniLM: cosine 0.10 -> 0.50)."""
    teacher = FNetModel.from_pretrained(teacher_dir).eval()
    plain, _ = student_from_teacher(teacher)
    scaled, report = student_from_teacher(teacher, layer_scale=1e-3)
    assert report["initialised"] == [f"encoder.layer.{i}.fourier.layer_scale" for i in range(4)]
    assert not any("layer_scale" in k for k in plain.state_dict())  # 0 / None: the reference block
    ids = torch.tensor([[2, 9, 14, 21, 8, 3], [2, 30, 11, 3, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        target = teacher(ids, attention_mask=mask).last_hidden_state[mask.bool()]
        cosine = {name: float(torch.nn.functional.cosine_similarity(
            model.eval()(ids, attention_mask=mask).last_hidden_state[mask.bool()], target, dim=-1).mean())
            for name, model in (("plain", plain), ("scaled", scaled))}
    assert cosine["scaled"] > cosine["plain"] + 0.2, cosine


def test_a_hybrid_student_keeps_the_teachers_top_attention(teacher_dir):
    teacher = FNetModel.from_pretrained(teacher_dir)
    student, report = student_from_teacher(teacher, layer_scale=1e-3, attention_layers=1)
    assert student.config.attention_layer_ids() == [3]
    assert [layer.mixing_name for layer in student.encoder.layer] == ["fourier"] * 3 + ["attention"]
    t, s = teacher.state_dict(), student.state_dict()
    for name in ("attention.self.query.weight", "attention.output.dense.bias", "attention.output.LayerNorm.weight"):
        torch.testing.assert_close(s[f"encoder.layer.3.{name}"], t[f"encoder.layer.3.{name}"], rtol=0, atol=0)
    assert torch.equal(s["encoder.layer.3.attention.layer_scale"], torch.ones(32))  # the teacher's sublayer as is
    assert torch.equal(s["encoder.layer.0.fourier.layer_scale"], torch.full((32,), 1e-3))
    assert not any(k.startswith("encoder.layer.3.") for k in report["dropped"])
    with pytest.raises(ValueError, match="--attention-layers"):
        student_from_teacher(teacher, attention_layers=5)


def test_a_student_is_no_teacher(teacher_dir):
    student, _ = student_from_teacher(FNetModel.from_pretrained(teacher_dir))
    with pytest.raises(ValueError, match="--teacher .* not a BERT-family"):
        student_from_teacher(student)


def test_objective_is_zero_for_a_perfect_student_and_reports_both_statistics():
    hidden = [torch.randn(2, 5, 8) for _ in range(3)]
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    out = type("Out", (), {"hidden_states": tuple(hidden), "last_hidden_state": hidden[-1]})()
    loss, stats = distillation_loss(out, out, mask, [0, 1], "both")
    assert float(loss) == pytest.approx(0.0, abs=1e-6) and stats["cosine"] == pytest.approx(1.0, abs=1e-6)
    moved = type("Out", (), {"hidden_states": tuple(h + 1.0 for h in hidden), "last_hidden_state": hidden[-1] + 1.0})()
    loss, stats = distillation_loss(moved, out, mask, [0, 1], "hidden")
    assert float(loss) == pytest.approx(1.0, abs=1e-6) and stats["hidden_mse"] == pytest.approx(1.0, abs=1e-6)


def _config(teacher_dir, text_file, output, **kw):
    base = dict(teacher=str(teacher_dir), train_files=[str(text_file)], output=str(output), seq_len=24, batch_size=8,
                max_steps=12, lr=5e-3, warmup_steps=0, dropout=0.1, save_every=4, log_every=1, progress=False,
                threads=1)
    return DistillConfig(**{**base, **kw})


class Crash(Callback):
    def on_step_end(self, trainer, step, logs):
        if step == 6:
            raise KeyboardInterrupt("simulated crash after step 6")


def _losses(folder):
    return {r["step"]: r["loss"] for r in map(json.loads, (folder / "metrics.jsonl").read_text().splitlines())}


def test_distillation_lowers_its_loss_and_resumes_exactly(teacher_dir, text_file, tmp_path):
    whole = tmp_path / "whole"
    result = distill(_config(teacher_dir, text_file, whole))
    losses = _losses(whole)
    first, last = np.mean([losses[s] for s in (1, 2, 3)]), np.mean([losses[s] for s in (10, 11, 12)])
    assert result.steps == 12 and last < 0.8 * first, losses

    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        distill(_config(teacher_dir, text_file, cut), callbacks=[Crash()])
    with pytest.raises(ValueError, match="unfinished.*--overwrite"):  # the claimed folder is not silently reused
        distill(_config(teacher_dir, text_file, cut))
    resumed = distill(_config(teacher_dir, text_file, cut, resume=True))
    assert resumed.resumed_from == 4
    again = _losses(cut)
    assert [again[s] for s in range(5, 13)] == [losses[s] for s in range(5, 13)]
    a, b = FNetModel.from_pretrained(whole).state_dict(), FNetModel.from_pretrained(cut).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_output_is_an_ordinary_model_folder(teacher_dir, text_file, tmp_path, capsys):
    out = tmp_path / "student"
    code = main(["distill", "--teacher", str(teacher_dir), "--train-files", str(text_file), "--output", str(out),
                 "--max-steps", "2", "--seq-len", "24", "--batch-size", "8", "--layers", "2", "--no-progress",
                 "--threads", "1"])
    assert code == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 2
    saved = json.loads((out / "config.json").read_text())
    assert (saved["model_type"], saved["token_mixer"], saved["num_hidden_layers"]) == ("fnet", "fourier", 2)
    assert saved["hidden_dropout_prob"] == pytest.approx(0.1)  # the teacher's, for fine-tuning
    student = FNetModel.from_pretrained(out)
    FNetForSequenceClassification.from_pretrained(out, num_labels=3)  # fine-tuning starts from it
    vectors = student.encode(["the cat sat on the mat .", ""])  # tokenizer and recipe from the folder
    assert vectors.shape == (2, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    rows = tmp_path / "in.txt"
    rows.write_text("the dog ran .\n\nred sun\n")
    npy = tmp_path / "out.npy"
    assert main(["embed", "--model", str(out), "--input", str(rows), "--output", str(npy), "--no-progress"]) == 0
    got = np.load(npy)
    np.testing.assert_allclose(got, student.encode(["the dog ran .", "", "red sun"]), atol=1e-5, rtol=0)
    record = json.loads(npy.with_suffix(".json").read_text())
    assert record["blank_rows"] == [1] and record["normalize"] is True and record["pooling"] == "mean"
    assert main(["embed", "--model", str(out), "--input", str(rows), "--output", str(npy), "--no-progress"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_bad_teacher_and_bad_text_name_the_flag(teacher_dir, text_file, tmp_path, capsys):
    fnet_dir = tmp_path / "fnet"
    student, _ = student_from_teacher(FNetModel.from_pretrained(teacher_dir))
    student.save_pretrained(fnet_dir)
    assert main(["distill", "--teacher", str(fnet_dir), "--train-files", str(text_file), "--output",
                 str(tmp_path / "o")]) == 2
    assert "--teacher" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\n\xff\n")
    assert main(["distill", "--teacher", str(teacher_dir), "--train-files", str(bad), "--output",
                 str(tmp_path / "o2")]) == 2
    assert "--train-files" in capsys.readouterr().err and "UTF-8" in capsys.readouterr().err + "UTF-8"
