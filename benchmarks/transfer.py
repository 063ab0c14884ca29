"""Why pretraining did (not) transfer, and low-resource curves: SST-2 fine-tuning through the library.

Every run is `fnet.training.finetune.finetune` (what `fnet finetune` does) on SST-2 train rows,
scored on the GLUE dev set (872 sentences). Runs are appended to OUTPUT/runs.jsonl as they finish,
so an interrupted study continues where it stopped; ``--report`` writes results.md, results.json
and curves.png from what is there.

    python benchmarks/transfer.py --pretrained runs/transfer/pre_mini --study lr --output benchmarks/results/transfer
    python benchmarks/transfer.py --pretrained runs/transfer/pre_mini --study curves --output benchmarks/results/transfer
    python benchmarks/transfer.py --output benchmarks/results/transfer --report

Studies:
  lr      fine-tuning learning rate from the pretrained model (the old run used 5e-4) vs from scratch,
          2,000 labels, seed 0; plus the same with the pretrained pooler re-initialised and from an
          earlier pretraining checkpoint (--early)
  curves  100, 300, 1,000 and --all-labels labels, pretrained vs scratch (same tokenizer), seeds 0-2,
          each with the defaults `fnet finetune` resolves (no --lr / --epochs given)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "classification" / "sst2"


def cpu() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("Model name")), "?")
    return f"{model}, {os.cpu_count()} cores, avx512: {'avx512f' in out}"


def subset(n: int | None, seed: int, work: Path) -> Path:
    """The first n rows of SST-2 train after a seeded shuffle (label-balanced by chance only)."""
    path = work / f"sst2-train-{n or 'all'}-s{seed}.tsv"
    if not path.exists():
        with open(DATA / "train.tsv", encoding="utf-8") as handle:
            rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
        header, body = rows[0], rows[1:]
        random.Random(seed).shuffle(body)
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
            writer.writerows([header] + body[:n] if n else [header] + body)
    return path


def run_one(spec: dict, args, work: Path) -> dict:
    import torch

    from fnet.training.finetune import FinetuneConfig, finetune

    torch.set_num_threads(args.threads)
    out = work / spec["name"]
    if out.exists():
        import shutil

        shutil.rmtree(out)  # our own scratch folder from an interrupted run
    model = spec["model"]
    if spec.get("reset_pooler"):  # a copy of the pretrained folder whose pooler is re-initialised
        from fnet.modeling import FNetForPreTraining

        pre = FNetForPreTraining.from_pretrained(model)
        torch.manual_seed(spec["seed"])
        pre._init_weights(pre.fnet.pooler.dense)
        model = str(work / "pooler-reset")
        pre.save_pretrained(model)
        from fnet.tokenization import FNetTokenizer

        FNetTokenizer.from_pretrained(spec["model"]).save_pretrained(model)
    # curves: no validation file (a user with 100 labels has no dev set to pick epochs on): the final
    # model is scored once; the controlled runs keep the best epoch on GLUE dev
    validate = spec["study"] != "curves"
    config = FinetuneConfig(task="classification", model=model, tokenizer=args.tokenizer, output=str(out),
                            train=str(subset(spec["labels"], spec["seed"], work)),
                            validation=str(DATA / "glue_dev.tsv") if validate else None, seq_len=64,
                            batch_size=16, seed=spec["seed"], lr=spec.get("lr"), epochs=spec.get("epochs"),
                            progress=False, threads=args.threads)
    started = time.perf_counter()
    metrics = finetune(config)
    if not validate:
        from fnet.apps.evaluate import EvaluateConfig, evaluate

        metrics.update(evaluate(EvaluateConfig(model=str(out), data=str(DATA / "glue_dev.tsv"),
                                               output=str(out / "glue_dev"))))
    from fnet.config import FNetConfig

    resolved = config.resolved(hidden_size=FNetConfig.from_pretrained(str(out)).hidden_size)  # the lr finetune used
    return {**spec, "accuracy": metrics["eval_accuracy"], "steps": metrics["steps"],
            "best_step": metrics["best_step"], "seconds": round(time.perf_counter() - started, 1),
            "lr_used": spec.get("lr") or resolved.lr, "load": round(os.getloadavg()[0], 1)}


def studies(args) -> list[dict]:
    pre, scratch = args.pretrained, args.preset
    specs = []
    if args.study == "lr":
        for lr in (3e-5, 1e-4, 3e-4, 1e-3):
            specs.append(dict(name=f"lr-pre-{lr:g}", study="lr", start="pretrained", model=pre, lr=lr,
                              labels=2000, seed=0, epochs=3))
        for lr in (1e-4, 1e-3):
            specs.append(dict(name=f"lr-scratch-{lr:g}", study="lr", start="scratch", model=scratch, lr=lr,
                              labels=2000, seed=0, epochs=3))
        specs.append(dict(name="pooler-reset-1e-4", study="pooler", start="pretrained, pooler re-initialised",
                          model=pre, lr=1e-4, labels=2000, seed=0, epochs=3, reset_pooler=True))
        if args.early:
            specs.append(dict(name="early-1e-4", study="pretraining length", start=f"pretrained ({args.early})",
                              model=args.early, lr=1e-4, labels=2000, seed=0, epochs=3))
    elif args.study == "curves-lr":  # the pretrained arm at fixed learning rates instead of the default
        for lr in args.lrs:
            for labels in (300, 1000):
                for seed in (0, 1, 2):
                    specs.append(dict(name=f"curve-pretrained-lr{lr:g}-{labels}-s{seed}", study="curves",
                                      start=f"pretrained, lr {lr:g}", model=pre, labels=labels, seed=seed, lr=lr))
    else:
        for labels in (100, 300, 1000, args.all_labels):
            for seed in (0, 1, 2):
                for start, model in (("pretrained", pre), ("scratch", scratch)):
                    specs.append(dict(name=f"curve-{start}-{labels}-s{seed}", study="curves", start=start,
                                      model=model, labels=labels, seed=seed))
    return specs


def report(out: Path) -> None:
    runs = [json.loads(l) for l in (out / "runs.jsonl").read_text().splitlines() if l.strip()]
    meta = json.loads((out / "meta.json").read_text()) if (out / "meta.json").exists() else {}
    lines = ["# Transfer: SST-2 (GLUE dev, 872) fine-tuned from pretrained fnet-mini vs from scratch", "",
             f"Machine: {meta.get('cpu', '?')}; shared with other jobs (load average in each row).", ""]
    lines += ["## Controlled runs", "", "| study | start | labels | seed | lr | epochs | steps | accuracy | s | load |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        if r["study"] != "curves":
            lines.append(f"| {r['study']} | {r['start']} | {r['labels']} | {r['seed']} | {r['lr_used']:g} | "
                         f"{r.get('epochs') or 'default'} | {r['steps']} | {r['accuracy']:.3f} | {r['seconds']:.0f} | "
                         f"{r['load']} |")
    curves: dict = {}
    for r in runs:
        if r["study"] == "curves":
            curves.setdefault((r["labels"], r["start"]), []).append(r["accuracy"])
    summary = {}
    if curves:
        starts = sorted({k[1] for k in curves}, key=lambda x: (x == "scratch", x != "pretrained", x))
        tried = [x for x in starts if x != "scratch"]
        lines += ["", "## Low-resource curves (defaults of `fnet finetune` unless the column names an lr; mean ± std "
                  "over seeds)", "",
                  "| labels | " + " | ".join(starts) + " | " + " | ".join(f"{x} - scratch" for x in tried)
                  + " | seeds |", "|---:|" + "---:|" * (len(starts) + len(tried) + 1)]
        fmt = lambda x: f"{x[0]:.3f} ± {x[1]:.3f}" if x else "not run"  # noqa: E731
        for labels in sorted({k[0] for k in curves}):
            row = {}
            for start in starts:
                acc = curves.get((labels, start), [])
                row[start] = (statistics.mean(acc), statistics.stdev(acc) if len(acc) > 1 else 0.0, len(acc)) if acc else None
            summary[labels] = row
            s = row.get("scratch")
            diffs = [f"{100 * (row[x][0] - s[0]):+.1f} points" if row[x] and s else "-" for x in tried]
            seeds = "/".join(str(row[x][2]) if row[x] else "0" for x in starts)
            lines.append(f"| {labels} | " + " | ".join(fmt(row[x]) for x in starts) + " | " + " | ".join(diffs)
                         + f" | {seeds} |")
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(5, 3.5))
            for start in starts:
                xs = [l for l in sorted(summary) if summary[l][start]]
                ax.errorbar(xs, [summary[l][start][0] for l in xs], yerr=[summary[l][start][1] for l in xs],
                            marker="o", capsize=3, label=start)
            ax.set_xscale("log"); ax.set_xlabel("SST-2 training labels"); ax.set_ylabel("GLUE dev accuracy")
            ax.axhline(0.509, color="gray", lw=0.8, ls=":", label="majority class")
            ax.legend(); fig.tight_layout(); fig.savefig(out / "curves.png", dpi=120)
            lines += ["", "![curves](curves.png)"]
        except ImportError:
            pass
    (out / "results.json").write_text(json.dumps({"meta": meta, "runs": runs,
                                                  "curves": {str(k): v for k, v in summary.items()}}, indent=2) + "\n")
    notes = out / "notes.md"
    (out / "results.md").write_text("\n".join(lines) + "\n\n" + (notes.read_text() if notes.exists() else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--pretrained", help="model folder written by `fnet pretrain`")
    parser.add_argument("--tokenizer", help="tokenizer folder (default: the pretrained folder's)")
    parser.add_argument("--preset", default="fnet-mini", help="the from-scratch model")
    parser.add_argument("--study", choices=("lr", "curves", "curves-lr"), default="lr")
    parser.add_argument("--lrs", type=float, nargs="+", default=[3e-4, 1e-3], help="curves-lr: the fixed rates")
    parser.add_argument("--early", help="an earlier pretraining checkpoint folder (lr study)")
    parser.add_argument("--all-labels", type=int, default=8000, help="the largest label count of the curves")
    parser.add_argument("--only", help="run only specs whose name contains this")
    parser.add_argument("--shard", default="0/1", help="I/N: run every N-th spec starting at I (parallel workers)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", default="runs/transfer/work")
    parser.add_argument("--report", action="store_true", help="only write results.md / results.json / curves.png")
    args = parser.parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    if not args.report:
        if not args.pretrained:
            parser.error("--pretrained is required")
        args.tokenizer = args.tokenizer or args.pretrained
        work = Path(args.work)
        work.mkdir(parents=True, exist_ok=True)
        meta_path = out / "meta.json"
        if not meta_path.exists():
            meta_path.write_text(json.dumps({"cpu": cpu(), "command": " ".join(sys.argv)}, indent=2) + "\n")
        done = set()
        if (out / "runs.jsonl").exists():
            done = {json.loads(l)["name"] for l in (out / "runs.jsonl").read_text().splitlines() if l.strip()}
        index, count = (int(x) for x in args.shard.split("/"))
        for number, spec in enumerate(studies(args)):
            if number % count != index:
                continue
            if spec["name"] in done or (args.only and args.only not in spec["name"]):
                continue
            result = run_one(spec, args, work)
            print(json.dumps(result), flush=True)
            with open(out / "runs.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(result) + "\n")
    report(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
