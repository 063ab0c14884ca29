"""Calibration on real data: softmax vs temperature scaling vs MC dropout, with bootstrap intervals.

For SST-2 and AG News (../shared/data/classification), three disjoint parts:

* SST-2: fine-tune on the first ``--train-examples`` rows of ``train.tsv``; calibrate on ``dev.tsv``
  (held out of GLUE's train set); test on ``glue_dev.tsv`` (the GLUE dev sentences, the set papers report).
* AG News (no train split here): fine-tune on rows ``[0, 8000)`` of ``dev.tsv``, calibrate on rows
  ``[8000, 10001)``, test on ``test.tsv``.

Each step is an ``fnet`` command (printed and recorded in ``OUT/<dataset>/commands.txt``):
``fnet finetune``, ``fnet evaluate --no-calibrated --mc-samples N --bootstrap B`` on the test part,
``fnet calibrate --bootstrap B --plot`` on the calibration part, ``fnet evaluate --mc-samples N
--bootstrap B --reliability-plot`` on the test part again. ``OUT/summary-<datasets>.md`` tabulates the test-part
measures with 95% bootstrap intervals.

    python benchmarks/calibration_real_data.py --model runs/mini --run-dir runs/calibration
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "classification"
RESULTS = ROOT / "benchmarks" / "results" / "calibration"


def fnet(args: list[str], log: list[str]) -> str:
    command = ["fnet", *map(str, args)]
    log.append(shlex.join(command))
    print("+", log[-1], flush=True)
    # one OpenMP thread: on a shared, overloaded machine two spinning threads per process are slower than one
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "fnet.cli.main", *map(str, args)], env=env, text=True,
                          capture_output=True)
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): {log[-1]}\n{done.stderr[-3000:]}")
    print(done.stdout[-2000:], flush=True)
    return done.stdout


def split_rows(source: Path, parts: dict[str, tuple[int, int]], out_dir: Path, header: bool) -> dict[str, Path]:
    lines = source.read_text(encoding="utf-8").splitlines()
    head, rows = (lines[:1], lines[1:]) if header else ([], lines)
    paths = {}
    for name, (start, stop) in parts.items():
        paths[name] = out_dir / f"{name}.tsv"
        paths[name].write_text("\n".join(head + rows[start:stop]) + "\n", encoding="utf-8")
    return paths


def run_dataset(name: str, files: dict[str, Path], args: argparse.Namespace, run_dir: Path, out_dir: Path,
                seq_len: int) -> dict:
    log: list[str] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    model = run_dir / f"{name}-model"
    started = time.time()
    if not (model / "fnet_task.json").is_file():
        fnet(["finetune", "--task", "classification", "--model", args.model, "--train", files["train"], "--output",
              model, "--epochs", args.epochs, "--lr", args.lr, "--batch-size", 32, "--seq-len", seq_len,
              "--threads", args.threads, "--seed", 0, "--no-progress",
              *(["--tokenizer", args.tokenizer] if args.tokenizer else [])], log)
    finetune_s = time.time() - started
    (model / "temperature.json").unlink(missing_ok=True)  # start from the plain model on reruns
    common = ["--mc-samples", args.mc_samples, "--bootstrap", args.bootstrap, "--batch-size", 64,
              *(["--max-examples", args.max_test_examples] if args.max_test_examples else [])]
    fnet(["evaluate", "--model", model, "--data", files["test"], "--output", run_dir / f"{name}-before",
          "--no-calibrated", *common], log)
    fnet(["calibrate", "--model", model, "--data", files["calibration"], "--bootstrap", args.bootstrap, "--plot",
          out_dir / "reliability_calibration_part.png"], log)
    fnet(["evaluate", "--model", model, "--data", files["test"], "--output", run_dir / f"{name}-after",
          "--reliability-plot", out_dir / "reliability_test.png", *common], log)
    after = json.loads((run_dir / f"{name}-after" / "metrics.json").read_text())
    scaling = json.loads((model / "temperature.json").read_text())
    (out_dir / "metrics_test.json").write_text(json.dumps(after, indent=2) + "\n")
    (out_dir / "temperature.json").write_text(json.dumps(scaling, indent=2) + "\n")
    (out_dir / "commands.txt").write_text("\n".join(log) + "\n")
    return {"name": name, "test": after, "temperature": scaling, "finetune_s": finetune_s,
            "sizes": {k: sum(1 for _ in open(v, encoding="utf-8")) for k, v in files.items()}}


def table(result: dict) -> list[str]:
    cal = result["test"]["calibration"]
    rows = [f"### {result['name']} (test part: {cal['predictions']} predictions; temperature "
            f"{result['temperature']['temperature']:.3f} fitted on {result['temperature']['num_examples']} held-out)",
            "", "| probabilities | accuracy | ECE (15 bins) | NLL | Brier |", "|---|---|---|---|---|"]
    for key, label in (("softmax", "softmax"), ("temperature_scaled", "temperature scaling"),
                       ("mc_dropout", "MC dropout"), ("mc_dropout_temperature_scaled", "MC dropout + temperature")):
        if key not in cal:
            continue
        r, ci = cal[key], cal[key]["intervals"]
        cell = lambda m, scale=1.0, fmt=".3f": (f"{r[m] * scale:{fmt}} [{ci[m][0] * scale:{fmt}}, "  # noqa: E731
                                                f"{ci[m][1] * scale:{fmt}}]")
        rows.append(f"| {label} | {cell('accuracy', 100, '.1f')} % | {cell('ece', 100, '.2f')} % | {cell('nll')} | "
                    f"{cell('brier')} |")
    return rows + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="pretrained model directory (or a preset) to fine-tune")
    parser.add_argument("--tokenizer", default=None, help="tokenizer directory (needed when --model is a preset)")
    parser.add_argument("--run-dir", type=Path, required=True, help="scratch folder for splits and models")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--train-examples", type=int, default=8000)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--mc-samples", type=int, default=10)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-test-examples", type=int, default=None, help="score only the first N test rows")
    parser.add_argument("--datasets", nargs="+", default=["sst2", "agnews"])
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is absent: this benchmark needs ../shared/data")
    args.run_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.datasets:
        split = args.run_dir / f"{name}-data"
        split.mkdir(exist_ok=True)
        if name == "sst2":
            files = split_rows(DATA / "sst2" / "train.tsv", {"train": (0, args.train_examples)}, split, header=True)
            files.update(calibration=DATA / "sst2" / "dev.tsv", test=DATA / "sst2" / "glue_dev.tsv")
            seq_len = 64
        else:
            files = split_rows(DATA / "agnews" / "dev.tsv", {"train": (0, args.train_examples),
                                                             "calibration": (args.train_examples, 10001)},
                               split, header=False)
            files["test"] = DATA / "agnews" / "test.tsv"
            seq_len = 96
        results.append(run_dataset(name, files, args, args.run_dir, args.out / name, seq_len))
    load = os.getloadavg()
    cpu = next((line.split(":", 1)[1].strip() for line in subprocess.run(
        ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name")), "?")
    flags = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    lines = ["# Calibration on SST-2 and AG News", "",
             f"Command: `python benchmarks/calibration_real_data.py {shlex.join(sys.argv[1:])}`; each step's fnet "
             "command is in `<dataset>/commands.txt`.", "",
             f"Machine: {cpu} ({'avx512' if 'avx512' in flags else 'no avx512'}), {os.cpu_count()} cores shared with "
             f"other jobs, load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; "
             f"{platform.python_version()}. Intervals: 95% percentile bootstrap over the test examples "
             f"({args.bootstrap} resamples). MC dropout: {args.mc_samples} passes, mean of the softmaxes.", ""]
    for result in results:
        lines += table(result)
        lines.append(f"Sizes (lines, incl. header where the file has one): {result['sizes']}; fine-tuning took "
                     f"{result['finetune_s']:.0f} s.")
        lines.append("")
    tag = "-".join(args.datasets)
    (args.out / f"summary-{tag}.md").write_text("\n".join(lines))
    (args.out / f"summary-{tag}.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
