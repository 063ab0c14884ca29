"""benchmarks/gpu.py stays runnable: a CPU smoke run at tiny sizes (its numbers are not measurements),
and the full run refuses to start without CUDA instead of measuring the wrong device."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO


def _script():
    spec = importlib.util.spec_from_file_location("gpu_benchmark", REPO / "benchmarks" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on machines without CUDA")
def test_without_cuda_the_full_run_fails_loudly(capsys):
    with pytest.raises(SystemExit) as stop:
        _script().main(["--out", "unused"])
    assert stop.value.code == 2 and "no CUDA device" in capsys.readouterr().err
    assert not Path("unused").exists()


def test_dry_run_needs_an_explicit_out_folder(capsys):
    with pytest.raises(SystemExit):
        _script().main(["--dry-run"])
    assert "--out" in capsys.readouterr().err


def _dry_run(tmp_path: Path, *extra: str) -> dict:
    assert _script().main(["--dry-run", "--out", str(tmp_path), *extra]) == 0
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["dry_run"] is True and "DRY RUN" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "results.png").stat().st_size > 0
    assert all(goal["met"] is None for goal in report["goals"]), "a dry run must not claim a goal"
    return report


def test_dry_run_measures_every_case_of_every_section(tmp_path):
    report = _dry_run(tmp_path, "--skip", "pretrain")
    assert report["left_out"] == []
    inference = {(r["length"], r["model"]): r for r in report["inference"]}
    for length in (16, 64):
        for model in ("fnet", "fnet fft", "transformers FNet fp32", "BERT sdpa bf16"):
            row = inference[(length, model)]
            assert "error" not in row and row["tok_s"] > 0, row
    assert inference[(16, "fnet + torch.compile")]["tok_s"] > 0
    assert inference[(64, "BERT sdpa bf16")]["mfu"] > inference[(64, "BERT sdpa bf16")]["dense_mfu"]  # attention counted
    training = {r["model"]: r for r in report["training"]}
    assert set(training) == {"fnet", "fnet fft", "fnet + torch.compile", "transformers FNet fp32",
                             "BERT sdpa bf16 autocast"}
    assert all("error" not in r and r["tok_s"] > 0 for r in training.values())
    assert [r["length"] for r in report["fourier"]["rows"]] == [8, 32]
    assert all(r["matmul_half_rel_err"] < 1e-2 for r in report["fourier"]["rows"]), "the half-spectrum form is wrong"
    assert max(report["numerics"]["relative_error"].values()) < 0.02  # bf16 weights vs float32, same model


@pytest.mark.slow
def test_dry_run_of_the_pretrain_section_runs_the_fnet_command(tmp_path):
    report = _dry_run(tmp_path, "--skip", "numerics", "fourier", "inference", "training")
    pretrain = report["pretrain"]
    assert "error" not in pretrain, pretrain
    assert pretrain["command"].startswith("fnet pretrain") and pretrain["positions_per_s"] > 0
    assert pretrain["fraction_of_bare_step"] > 0


def test_a_spent_time_budget_records_every_case_it_left_out(tmp_path):
    report = _dry_run(tmp_path, "--time-budget", "0", "--skip", "numerics")
    assert report["inference"] == [] and report["training"] == [] and report["fourier"]["rows"] == []
    left = report["left_out"]
    assert "pretrain" in left and "inference tiny 64 BERT sdpa bf16" in left and "fourier tiny 32" in left
    assert len([case for case in left if case.startswith("training")]) == 4 + 1  # 4 models + the compiled row
    assert "Left out by the time budget" in (tmp_path / "results.md").read_text()
