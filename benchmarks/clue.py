"""CLUE-style Chinese baselines through the `fnet` command: FNet against the attention mixer.

The readable baseline of the "bert4keras CLUE baseline" post, on the Chinese data in ../shared/data:

1. ``prepare_corpus``: People's Daily (January 1998) cut into sentences at 。！？； (one paragraph = one
   document, documents separated by blank lines), the last 2% held out for pretraining evaluation.
2. ``train_tokenizer``: ``fnet tokenizer train`` (SentencePiece unigram, character coverage 0.9995, the
   setting for Chinese: the rarest 0.05% of characters become ``<unk>`` instead of crowding the vocabulary).
3. ``pretrain``: ``fnet pretrain`` of the same preset with each token mixer (``fourier`` = FNet,
   ``attention`` = BERT), same data, seed and wall-clock budget. The two run at the same time, one
   thread each, so a shared machine's load hits both alike: equal pretraining *time*, not tokens.
4. One function per task, each ``fnet finetune`` then ``fnet evaluate`` on data the model never saw:
   ``chnsenticorp`` (hotel reviews, accuracy), ``waimai`` (food-delivery reviews, accuracy), both split
   80/20 by a seeded shuffle; ``cmrc2018`` (extractive QA: fine-tuned on the trial set, scored on dev
   with CMRC 2018's own metric: character-level F1 and exact match after removing punctuation,
   since SQuAD's whitespace tokens make every Chinese answer one token).
5. ``report``: the table (mean ± std over fine-tuning seeds), FNet as a % of attention.

Every step is resumable: finished runs are lines of ``OUTPUT/runs.jsonl`` and are skipped on a rerun.
The defaults fit a 45-minute run on a shared 2-core CPU; a larger budget is only flags:

    python benchmarks/clue.py --output benchmarks/results/clue                     # the committed table
    python benchmarks/clue.py --output big --pretrain-minutes 60 --train-examples 0 --eval-examples 0 \\
        --cmrc-train 0 --cmrc-eval 0 --epochs 3 --threads 4                         # everything, full sets
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
PEOPLES_DAILY = DATA / "corpus" / "zh" / "peoples_daily_199801.txt"
CHNSENTICORP = DATA / "classification" / "chnsenticorp" / "chnsenticorp_htl_all.csv"
WAIMAI = DATA / "classification" / "waimai" / "waimai_10k.csv"
CMRC_TRIAL = DATA / "qa" / "cmrc2018_trial.json"
CMRC_DEV = DATA / "qa" / "cmrc2018_dev.json"
MIXERS = {"fnet": "fourier", "attention": "attention"}
TASKS = ("chnsenticorp", "waimai", "cmrc2018")


def fnet_cli(*args: str, log: Path) -> None:
    """Run ``python -m fnet ARGS`` (this checkout's fnet), its output appended to ``log``."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"$ fnet {' '.join(args)}\n")
        handle.flush()
        subprocess.run([sys.executable, "-m", "fnet", *args], check=True, env=env, stdout=handle,
                       stderr=subprocess.STDOUT)


# ----------------------------------------------------------------------------- corpus, tokenizer, pretraining

_ZH_SENTENCE_END = re.compile(r"(?<=[。！？；])")


def prepare_corpus(work: Path) -> tuple[Path, Path]:
    """People's Daily as documents of sentences -> (train.txt, eval.txt) under ``work/corpus``."""
    out = work / "corpus"
    train, held = out / "train.txt", out / "eval.txt"
    if train.exists() and held.exists():
        return train, held
    out.mkdir(parents=True, exist_ok=True)
    documents = []
    for paragraph in PEOPLES_DAILY.read_text(encoding="utf-8").splitlines():
        sentences = [s.strip() for s in _ZH_SENTENCE_END.split(paragraph) if s.strip()]
        if sentences:
            documents.append("\n".join(sentences))
    cut = int(len(documents) * 0.98)
    held.write_text("\n\n".join(documents[cut:]) + "\n", encoding="utf-8")
    train.write_text("\n\n".join(documents[:cut]) + "\n", encoding="utf-8")
    return train, held


def train_tokenizer(work: Path, train: Path, vocab_size: int) -> Path:
    tokenizer = work / "tokenizer"
    if not (tokenizer / "spiece.model").exists():
        fnet_cli("tokenizer", "train", "--input", str(train), "--vocab-size", str(vocab_size), "--output",
                 str(tokenizer), "--character-coverage", "0.9995", log=work / "log.txt")
    return tokenizer


def model_config(work: Path, name: str, tokenizer: Path, preset: str, seq_len: int) -> Path:
    """config.json of ``preset`` with this mixer, sized to the tokenizer."""
    from fnet.config import FNetConfig
    from fnet.tokenization import FNetTokenizer

    tok = FNetTokenizer.from_pretrained(tokenizer)
    path = work / "configs" / name
    FNetConfig.from_preset(preset, vocab_size=len(tok), pad_token_id=tok.pad_token_id, token_mixer=MIXERS[name],
                           max_position_embeddings=max(512, seq_len)).save_pretrained(path)
    return path / "config.json"


def pretrain_all(work: Path, tokenizer: Path, train: Path, held: Path, args: argparse.Namespace) -> dict[str, dict]:
    """``fnet pretrain`` per mixer, all at once (one thread each), the same budget. -> final eval metrics."""
    procs, env = {}, {**os.environ, "PYTHONPATH": str(REPO / "src")}
    for name in args.mixers:
        out = work / f"pretrained-{name}"
        if (out / "model.safetensors").exists():
            continue
        command = [sys.executable, "-m", "fnet", "pretrain", "--train-files", str(train), "--eval-files", str(held),
                   "--tokenizer", str(tokenizer), "--output", str(out),
                   "--config", str(model_config(work, name, tokenizer, args.preset, args.pretrain_seq_len)),
                   "--seq-len", str(args.pretrain_seq_len), "--batch-size", "32", "--max-steps", "100000",
                   "--warmup-steps", "200", "--lr", "1e-3", "--time-budget", str(args.pretrain_minutes),
                   "--eval-every", "0", "--save-every", "0", "--bf16", "--threads", str(args.threads), "--seed", "0",
                   "--no-progress", "--overwrite"]
        log = open(work / f"pretrain-{name}.log", "w", encoding="utf-8")
        procs[name] = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    for name, proc in procs.items():
        if proc.wait():
            raise SystemExit(f"pretraining {name} failed: see {work / f'pretrain-{name}.log'}")
    summary = {}
    for name in args.mixers:
        rows = [json.loads(l) for l in (work / f"pretrained-{name}" / "metrics.jsonl").read_text().splitlines() if l]
        train_rows = [r for r in rows if "loss" in r]
        evals = [r for r in rows if "eval_mlm_acc" in r]
        summary[name] = {"steps": train_rows[-1]["step"] if train_rows else None,
                         "tokens_per_s": statistics.median(r["tokens_per_s"] for r in train_rows if "tokens_per_s" in r)
                         if train_rows else None,
                         "eval_mlm_acc": evals[-1]["eval_mlm_acc"] if evals else None}
    return summary


# ----------------------------------------------------------------------------- the tasks (one function each)


def split_reviews(source: Path, work: Path, name: str) -> tuple[Path, Path]:
    """A seeded 80/20 shuffle split of a ``label,review`` CSV -> (train.csv, test.csv)."""
    train, test = work / "data" / f"{name}-train.csv", work / "data" / f"{name}-test.csv"
    if train.exists() and test.exists():
        return train, test
    train.parent.mkdir(parents=True, exist_ok=True)
    with open(source, encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["review"] and r["review"].strip()]
    random.Random(0).shuffle(rows)
    cut = int(len(rows) * 0.8)
    for path, part in ((train, rows[:cut]), (test, rows[cut:])):
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["label", "review"])
            writer.writeheader()
            writer.writerows({"label": r["label"], "review": r["review"].strip()} for r in part)
    return train, test


def sentiment(task: str, source: Path, model: Path, seed: int, run: Path, args: argparse.Namespace) -> dict:
    """Fine-tune on the train split, then accuracy on the held-out test split (both through the CLI)."""
    train, test = split_reviews(source, args.work, task)
    limit = ["--max-train-examples", str(args.train_examples)] if args.train_examples else []
    fnet_cli("finetune", "--task", "classification", "--model", str(model), "--train", str(train),
             "--output", str(run), "--seq-len", str(args.seq_len), "--epochs", str(args.epochs), "--seed", str(seed),
             "--lr", str(args.lr), "--batch-size", str(args.batch_size),
             "--threads", str(args.threads), "--text-column", "review", "--label-column", "label", "--no-progress",
             "--overwrite", *limit, log=run.parent / f"{run.name}.log")
    limit = ["--max-examples", str(args.eval_examples)] if args.eval_examples else []
    fnet_cli("evaluate", "--model", str(run), "--data", str(test), "--output", str(run / "test"),
             "--text-column", "review", "--label-column", "label", "--no-progress", "--overwrite", *limit,
             log=run.parent / f"{run.name}.log")
    metrics = json.loads((run / "test" / "metrics.json").read_text())
    return {"score": 100 * metrics["eval_accuracy"], "metric": "accuracy", "eval_examples": metrics["examples"]}


def chnsenticorp(model: Path, seed: int, run: Path, args: argparse.Namespace) -> dict:
    """ChnSentiCorp hotel reviews, positive/negative: accuracy (%)."""
    return sentiment("chnsenticorp", CHNSENTICORP, model, seed, run, args)


def waimai(model: Path, seed: int, run: Path, args: argparse.Namespace) -> dict:
    """waimai_10k food-delivery reviews, positive/negative: accuracy (%)."""
    return sentiment("waimai", WAIMAI, model, seed, run, args)


def answerable(source: Path, work: Path) -> Path:
    """A copy of a CMRC file without its questions whose text is empty (the trial set has one)."""
    target = work / "data" / source.name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        data = json.loads(source.read_text(encoding="utf-8"))
        for doc in data["data"]:
            for paragraph in doc["paragraphs"]:
                paragraph["qas"] = [q for q in paragraph["qas"] if q["question"].strip() and q["answers"]]
        target.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return target


def cmrc2018(model: Path, seed: int, run: Path, args: argparse.Namespace) -> dict:
    """CMRC 2018 span extraction: fine-tuned on trial, CMRC's character F1 / EM (%) on dev."""
    trial, dev = answerable(CMRC_TRIAL, args.work), answerable(CMRC_DEV, args.work)
    limit = ["--max-train-examples", str(args.cmrc_train)] if args.cmrc_train else []
    fnet_cli("finetune", "--task", "question-answering", "--model", str(model), "--train", str(trial),
             "--output", str(run), "--seq-len", str(args.qa_seq_len), "--stride", str(args.qa_seq_len // 4),
             "--epochs", str(args.epochs), "--seed", str(seed), "--threads", str(args.threads),
             "--lr", str(args.lr), "--batch-size", str(args.batch_size), "--answer-mismatch", "fix", "--no-progress", "--overwrite", *limit, log=run.parent / f"{run.name}.log")
    limit = ["--max-examples", str(args.cmrc_eval)] if args.cmrc_eval else []
    fnet_cli("evaluate", "--model", str(run), "--data", str(dev), "--output", str(run / "test"),
             "--answer-mismatch", "fix", "--no-progress", "--overwrite", *limit, log=run.parent / f"{run.name}.log")
    answers = {p["id"]: p["answer"] for p in map(json.loads, (run / "test" / "predictions.jsonl").read_text().splitlines())}
    gold = {q["id"]: [a["text"] for a in q["answers"]] for doc in json.loads(dev.read_text())["data"]
            for paragraph in doc["paragraphs"] for q in paragraph["qas"]}
    f1, em = cmrc_scores(answers, gold)
    return {"score": f1, "metric": "F1", "exact_match": em, "eval_examples": len(answers)}


# CMRC 2018's evaluation script: Chinese characters one by one, runs of other characters as words,
# punctuation dropped; F1 from the longest common substring; max over the gold answers
_CMRC_PUNCT = set("-:_*^/\\~`+=，。：？！“”；’《》……·、「」（）－～『』 ,.:?!\"';()[]{}<>#$%&@|") | {"\u3000"}


def cmrc_segments(text: str) -> list[str]:
    out, word = [], ""
    for ch in text.lower():
        if ch in _CMRC_PUNCT or ch.isspace():
            out, word = out + ([word] if word else []), ""
        elif re.match(r"[\u4e00-\u9fff]", ch):
            out, word = out + ([word] if word else []) + [ch], ""
        else:
            word += ch
    return out + ([word] if word else [])


def _longest_common_substring(a: list[str], b: list[str]) -> int:
    best, row = 0, [0] * (len(b) + 1)
    for x in a:
        new = [0] * (len(b) + 1)
        for j, y in enumerate(b):
            if x == y:
                new[j + 1] = row[j] + 1
                best = max(best, new[j + 1])
        row = new
    return best


def cmrc_f1(prediction: str, gold: str) -> float:
    p, g = cmrc_segments(prediction), cmrc_segments(gold)
    common = _longest_common_substring(p, g)
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def cmrc_scores(answers: dict[str, str], gold: dict[str, list[str]]) -> tuple[float, float]:
    """(F1, EM) in % over the answered questions: max over each question's gold answers."""
    f1 = [max(cmrc_f1(answers[q], g) for g in gold[q]) for q in answers]
    em = [max(float(cmrc_segments(answers[q]) == cmrc_segments(g)) for g in gold[q]) for q in answers]
    return 100 * statistics.mean(f1), 100 * statistics.mean(em)


# ----------------------------------------------------------------------------- the table


def report(out: Path, meta: dict) -> None:
    runs = [json.loads(l) for l in (out / "runs.jsonl").read_text().splitlines() if l.strip()]
    cell = {}
    for task in TASKS:
        for name in MIXERS:
            scores = [r["score"] for r in runs if r["task"] == task and r["model"] == name]
            if scores:
                cell[task, name] = (statistics.mean(scores), statistics.stdev(scores) if len(scores) > 1 else 0.0,
                                    len(scores))
    pre = meta.get("pretraining", {})
    lines = ["# CLUE-style Chinese baselines: FNet vs attention at equal pretraining time", "",
             f"Command: `{meta['command']}`  ", f"Machine: {meta['machine']}  ",
             f"Load average: start {meta['load_start']}, end {meta.get('load_end')}  ",
             f"Wall clock: {meta.get('minutes', 0):.1f} min", "",
             "| model | pretrain steps | tokens/s | held-out MLM acc | " + " | ".join(
                 f"{t} ({'F1' if t == 'cmrc2018' else 'acc'})" for t in TASKS) + " | average |",
             "|---|---:|---:|---:|" + "---:|" * (len(TASKS) + 1)]
    for name in MIXERS:
        p = pre.get(name, {})
        means = [cell[t, name][0] for t in TASKS if (t, name) in cell]
        row = [f"{cell[t, name][0]:.2f} ± {cell[t, name][1]:.2f}" if (t, name) in cell else "-" for t in TASKS]
        average = f"{statistics.mean(means):.2f}" if len(means) == len(TASKS) else "-"
        lines.append(f"| {name} | {p.get('steps', '-')} | {p.get('tokens_per_s') or 0:,.0f} | "
                     f"{(p.get('eval_mlm_acc') or 0):.3f} | " + " | ".join(row) + f" | {average} |")
    ratio = [f"{100 * cell[t, 'fnet'][0] / cell[t, 'attention'][0]:.1f}%" if (t, "fnet") in cell and
             (t, "attention") in cell and cell[t, "attention"][0] else "-" for t in TASKS]
    lines.append("| FNet as % of attention | | | | " + " | ".join(ratio) + " | |")
    lines += ["", "Per run:", "", "| task | model | seed | score | fine-tune + eval s | load |",
              "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['task']} | {r['model']} | {r['seed']} | {r['score']:.2f} | {r['seconds']:.0f} | {r['load']} |"
              for r in runs]
    (out / "results.json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=2, ensure_ascii=False) + "\n")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="results folder (runs.jsonl, results.md/json)")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "clue", help="models, splits and logs")
    parser.add_argument("--mixers", nargs="+", default=list(MIXERS), choices=list(MIXERS))
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="fine-tuning seeds")
    parser.add_argument("--preset", default="fnet-mini")
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--pretrain-minutes", type=float, default=7.0, help="wall-clock budget per mixer")
    parser.add_argument("--pretrain-seq-len", type=int, default=128)
    parser.add_argument("--seq-len", type=int, default=64, help="sentiment tasks: pieces per review")
    parser.add_argument("--qa-seq-len", type=int, default=192, help="CMRC: pieces per window")
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--lr", type=float, default=1e-3, help="fine-tuning peak learning rate (the models saw little "
                        "pretraining, so the from-scratch rate)")
    parser.add_argument("--batch-size", type=int, default=8, help="fine-tuning batch")
    parser.add_argument("--train-examples", type=int, default=400, help="sentiment training rows (0: all)")
    parser.add_argument("--eval-examples", type=int, default=300, help="sentiment test rows (0: all)")
    parser.add_argument("--cmrc-train", type=int, default=100, help="CMRC trial questions (0: all 1,002)")
    parser.add_argument("--cmrc-eval", type=int, default=150, help="CMRC dev questions (0: all 3,219)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    if not PEOPLES_DAILY.exists():
        print(f"skipped: {DATA} (the shared data) is absent")
        return 0
    out, args.work = args.output, args.work.resolve()
    out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    meta_path = out / "meta.json"
    if args.report_only:
        report(out, json.loads(meta_path.read_text()))
        return 0
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    cpu = next((l.split(":", 1)[1].strip() for l in lscpu.splitlines() if l.startswith("Model name")), "?")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {
        "command": "python benchmarks/clue.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": f"{cpu}, {os.cpu_count()} cores shared with other jobs, {args.threads} torch thread(s) per process",
        "load_start": [round(x, 2) for x in os.getloadavg()], "minutes": 0.0}
    started = time.time()
    train, held = prepare_corpus(args.work)
    tokenizer = train_tokenizer(args.work, train, args.vocab_size)
    meta.setdefault("pretraining", {}).update(pretrain_all(args.work, tokenizer, train, held, args))
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    done = set()
    if (out / "runs.jsonl").exists():
        done = {(r["task"], r["model"], r["seed"]) for r in map(json.loads, (out / "runs.jsonl").read_text().splitlines())}
    tasks = {"chnsenticorp": chnsenticorp, "waimai": waimai, "cmrc2018": cmrc2018}
    split_reviews(CHNSENTICORP, args.work, "chnsenticorp"), split_reviews(WAIMAI, args.work, "waimai")
    answerable(CMRC_TRIAL, args.work), answerable(CMRC_DEV, args.work)  # written once, before the threads read them

    def cell(task: str, name: str, seed: int) -> dict:
        t0 = time.time()
        run = args.work / "finetuned" / f"{task}-{name}-s{seed}"
        run.parent.mkdir(parents=True, exist_ok=True)
        result = tasks[task](args.work / f"pretrained-{name}", seed, run, args)
        return {**result, "task": task, "model": name, "seed": seed, "seconds": round(time.time() - t0, 1),
                "load": round(os.getloadavg()[0], 1)}

    for seed in args.seeds:  # seeds outermost: an interrupted run still has every cell at seed 0
        for task in args.tasks:
            todo = [name for name in args.mixers if (task, name, seed) not in done]
            with ThreadPoolExecutor(len(todo) or 1) as pool:  # the mixers side by side: the same load for both
                results = list(pool.map(lambda name: cell(task, name, seed), todo))
            for result in results:
                print(json.dumps(result, ensure_ascii=False), flush=True)
                with open(out / "runs.jsonl", "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(result, ensure_ascii=False) + "\n")
    meta["minutes"] = meta.get("minutes", 0.0) + (time.time() - started) / 60
    meta["load_end"] = [round(x, 2) for x in os.getloadavg()]
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    report(out, meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
