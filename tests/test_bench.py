"""fnet bench: the measuring code, the clean stops at the budgets, the reports and the CLI."""

from __future__ import annotations

import json

import pytest

from fnet.benchmarking import Measurement, _child, measure, run_benchmark, write_reports
from fnet.cli.main import main

SPEC = dict(mixer="fourier", length=16, preset="fnet-tiny", batch_size=2, threads=1, repeats=2, device="cpu",
            time_limit_s=60, config={"num_attention_heads": 2})


@pytest.mark.parametrize("mixer", ["fourier", "performer"])
def test_child_measures_speed_and_memory(mixer):
    result = _child({**SPEC, "mixer": mixer})  # in-process: the same code the child process runs
    assert len(result["forward_s"]) == 2 and len(result["train_s"]) == 2
    assert result["forward_tokens_per_s"] > 0 and result["train_tokens_per_s"] > 0
    assert result["train_peak_mib"] >= result["forward_peak_mib"] >= 0


def test_child_measures_the_optimized_inference_path(monkeypatch):
    import fnet.optimize

    optimized = []
    real = fnet.optimize.optimize_for_inference
    monkeypatch.setattr(fnet.optimize, "optimize_for_inference", lambda model: optimized.append(model) or real(model))
    result = _child({**SPEC, "repeats": 1})
    assert len(optimized) == 1 and isinstance(optimized[0], fnet.FNetModel)
    assert result["forward_tokens_per_s"] > 0 and result["train_tokens_per_s"] > 0


def test_measurement_in_a_child_process():
    result = measure("identity", 16, preset="fnet-tiny", batch_size=1, threads=1, repeats=1,
                     config_overrides={"num_attention_heads": 2})
    assert result.status == "ok", result.reason
    assert result.forward_tokens_per_s > 0 and result.train_peak_mib > 0


def test_a_mixer_stops_cleanly_at_the_memory_budget_and_skips_longer_lengths():
    lines = []
    results = run_benchmark(["fourier"], [16, 32], preset="fnet-tiny", threads=1, repeats=1, max_memory_mib=1,
                            progress=lines.append)
    assert [r.status for r in results] == ["memory", "skipped"]
    assert "--max-memory 1 MiB" in results[0].reason and "stopped at length 16" in results[1].reason
    assert len(lines) == 1


def test_a_mixer_stops_cleanly_at_the_time_limit():
    result = measure("fourier", 16, preset="fnet-tiny", threads=1, repeats=1, time_limit_s=1e-6)
    assert result.status == "time" and "more than --time-limit" in result.reason
    killed = measure("fourier", 16, preset="fnet-tiny", threads=1, repeats=1, time_limit_s=1e-3, startup_allowance_s=0.01)
    assert killed.status == "time" and killed.reason.startswith("killed")


def test_reports_are_json_markdown_and_png(tmp_path):
    results = [
        Measurement("fourier", 128, 4, forward_tokens_per_s=1000.0, train_tokens_per_s=300.0, forward_peak_mib=10.0,
                    train_peak_mib=20.0),
        Measurement("attention", 128, 4, forward_tokens_per_s=800.0, train_tokens_per_s=200.0, forward_peak_mib=12.0,
                    train_peak_mib=30.0),
        Measurement("fourier", 256, 2, forward_tokens_per_s=900.0, train_tokens_per_s=280.0, forward_peak_mib=11.0,
                    train_peak_mib=22.0),
        Measurement("attention", 256, 2, status="memory", reason="resident set passed --max-memory 8 MiB"),
    ]
    meta = dict(command="fnet bench ...", preset="fnet-tiny", device="cpu", machine={"cpu": "test"})
    paths = write_reports(results, meta, tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["meta"]["preset"] == "fnet-tiny" and len(data["results"]) == 4
    table = paths["markdown"].read_text()
    assert "| fourier | 1,000 | 900 |" in table and "| attention | 800 | memory |" in table
    assert "attention at 256: resident set passed" in table
    assert paths["plot"].read_bytes()[:4] == b"\x89PNG"


def test_cli_writes_results(tmp_path, capsys):
    code = main(["bench", "--preset", "fnet-tiny", "--mixers", "identity", "--lengths", "8", "--repeats", "1",
                 "--threads", "1", "--heads", "2", "--output", str(tmp_path)])
    assert code == 0
    assert {p.name for p in tmp_path.iterdir()} == {"results.json", "results.md", "results.png"}
    assert "identity" in capsys.readouterr().out


def test_cli_rejects_unknown_mixers(tmp_path, capsys):
    assert main(["bench", "--mixers", "fourier,conv", "--output", str(tmp_path)]) == 2
    assert "unknown mixer(s) ['conv']" in capsys.readouterr().err
