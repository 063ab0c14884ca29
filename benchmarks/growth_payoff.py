"""The pay-off of function-preserving growth: grown-and-continued vs the bigger model from scratch.

1. ``fnet grow`` the pretrained small model (default: feed-forward width x2, exact; fnet-mini
   256/4/512 becomes the fnet-small shape 256/4/1024) and record the measured deviation.
2. Two ``fnet pretrain`` runs of the same bigger shape, started together and run side by side (one
   thread each, so they share the machine's load alike): ``--init-from`` the grown model, and
   ``--preset`` from scratch. Same data, masks, batch, sequence length, learning-rate schedule and
   number of steps (= the same tokens and, per step, the same FLOPs); the held-out MLM loss is
   evaluated every ``--eval-every`` steps on the same fixed batches.
3. ``curve.png``: held-out MLM loss against steps and against wall-clock seconds; ``summary.json``.

The grown model's total compute also includes the small model's pretraining (reported next to the
curves as the steps it took): the comparison here is "same compute after growth", and the step at
which the scratch model first reaches the grown model's starting loss says how much of that earlier
compute growth recovers.

    python benchmarks/growth_payoff.py --small runs/mini --run-dir runs/growth --train-files ... --eval-files ...
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "growth"


def command(args: list) -> list[str]:
    return [sys.executable, "-m", "fnet.cli.main", *map(str, args)]


def evals(run: Path) -> list[dict]:
    """The evaluations, each with the training seconds of the logged step it follows."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    elapsed = {r["step"]: r["elapsed_s"] for r in rows if "elapsed_s" in r}
    return [{**r, "elapsed_s": elapsed.get(r["step"], 0.0)} for r in rows if "eval_mlm_loss" in r]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=Path, required=True, help="the pretrained small model (fnet pretrain output)")
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--train-files", nargs="+", required=True)
    parser.add_argument("--eval-files", nargs="+", required=True)
    parser.add_argument("--data-cache", default=None, help="token shards of the small model's run (skips tokenising)")
    parser.add_argument("--grow", nargs="+", default=["--intermediate-size", "1024"], help="fnet grow flags")
    parser.add_argument("--preset", default="fnet-small", help="the preset of the grown shape, for the scratch run")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--warmup-steps", type=int, default=60)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--time-budget", type=float, default=0.0, help="minutes per run (0: none); both runs stop "
                        "at the same training time, a same-wall-clock comparison on a shared machine")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    args.run_dir.mkdir(parents=True, exist_ok=True)
    grown = args.run_dir / "grown"
    log = []
    if not grown.exists():
        grow = ["grow", "--model", args.small, "--output", grown, *args.grow]
        log.append("fnet " + shlex.join(map(str, grow)))
        done = subprocess.run(command(grow), env=env, capture_output=True, text=True, check=True)
        (args.run_dir / "grow.txt").write_text(done.stdout)
    grow_report = (args.run_dir / "grow.txt").read_text()
    print(grow_report)
    common = ["--train-files", *args.train_files, "--eval-files", *args.eval_files, "--tokenizer", args.small,
              "--seq-len", 64, "--batch-size", 32, "--max-steps", args.steps, "--warmup-steps", args.warmup_steps,
              "--lr", args.lr, "--eval-every", args.eval_every, "--eval-batches", 10, "--save-every", 0, "--bf16",
              "--threads", 1, "--no-progress", "--seed", 0, "--log-every", 10,
              "--time-budget", args.time_budget]
    if args.data_cache:
        common += ["--data-cache", args.data_cache]
    runs = {"grown": ["--init-from", grown], "scratch": ["--preset", args.preset]}
    procs = {}
    for name, extra in runs.items():
        out = args.run_dir / f"run-{name}"
        if (out / "train_summary.json").is_file():
            continue
        flags = ["pretrain", *common, *extra, "--output", out]
        log.append("fnet " + shlex.join(map(str, flags)))
        procs[name] = subprocess.Popen(command(flags), env=env, stdout=open(args.run_dir / f"{name}.log", "w"),
                                       stderr=subprocess.STDOUT)
    started = time.time()
    for name, proc in procs.items():
        if proc.wait():
            raise SystemExit(f"{name} run failed: see {args.run_dir / f'{name}.log'}")
    curves = {name: evals(args.run_dir / f"run-{name}") for name in runs}
    small = json.loads((args.small / "train_summary.json").read_text())
    start_loss = curves["grown"][0]["eval_mlm_loss"]
    # the first scratch evaluation at or below the grown model's first evaluated loss
    reach = next((r["step"] for r in curves["scratch"] if r["eval_mlm_loss"] <= start_loss), None)
    summary = {
        "grow": grow_report.strip().splitlines(), "small_model_steps": small["steps"],
        "small_model_eval": small["eval"], "steps": args.steps,
        "eval_mlm_loss": {name: [(r["step"], round(r["eval_mlm_loss"], 4)) for r in c] for name, c in curves.items()},
        "eval_mlm_acc": {name: [(r["step"], round(r["eval_mlm_acc"], 4)) for r in c] for name, c in curves.items()},
        "final": {name: {k: c[-1][k] for k in ("eval_mlm_loss", "eval_mlm_acc", "eval_loss")} for name, c in curves.items()},
        "elapsed_s": {name: json.loads((args.run_dir / f"run-{name}" / "train_summary.json").read_text())["elapsed_s"]
                      for name in runs},
        "scratch_reaches_grown_first_eval_at_step": reach,
        "commands": log, "wall_s_this_invocation": time.time() - started,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "machine": next((line.split(":", 1)[1].strip() for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name")), "?")
        + f", {os.cpu_count()} cores shared with other jobs; 1 thread per run, both runs at once",
        "benchmark_command": "python benchmarks/growth_payoff.py " + shlex.join(sys.argv[1:]),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for name in runs:
        (args.out / f"metrics-{name}.jsonl").write_text((args.run_dir / f"run-{name}" / "metrics.jsonl").read_text())
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, c in curves.items():
        label = {"grown": "grown from the pretrained small model", "scratch": f"{args.preset} from scratch"}[name]
        axes[0].plot([r["step"] for r in c], [r["eval_mlm_loss"] for r in c], "o-", label=label)
        axes[1].plot([r["elapsed_s"] for r in c], [r["eval_mlm_loss"] for r in c], "o-", label=label)
    axes[0].axhline(small["eval"]["eval_mlm_loss"], color="grey", ls="--",
                    label=f"small model after its {small['steps']} steps")
    axes[0].set_xlabel("steps after growth (32 x 64 tokens each)")
    axes[1].set_xlabel("training seconds (both runs side by side, 1 thread each)")
    for ax in axes:
        ax.set_ylabel("held-out MLM loss (nats)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"growth pay-off: {' '.join(args.grow)}")
    fig.tight_layout()
    fig.savefig(args.out / "curve.png", dpi=110)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
