"""End-to-end inference on real text of mixed length: `fnet predict` against transformers.

    python3 benchmarks/realtext.py --model DIR --tokenizer TOK [--rounds 2]
        [--accuracy sst2=DIR agnews=DIR]

DIR: a classification directory written by `fnet finetune` (the weights only matter for the
accuracy section; speed is the same for any weights). The benchmark copies it with
``seq_len`` 512, so long documents are cut at 512 tokens as in transformers' FNet documentation.

Documents (from ../shared/data, one per line): AG News test and SST-2 GLUE dev (the first
``--per-source`` of each, default 700) and the XQuAD English contexts (240 paragraphs): 1,640
texts by default, from a few to 500+ tokens.

Each contender is one fresh process doing the whole job (start-up, reading, tokenization,
inference, JSON lines out), timed by wall clock, peak memory from the kernel's max RSS.
Contenders run interleaved (A, B, C, ..., A, B, C) with the same thread count:

  fnet-cli           `fnet predict --input docs.txt --output out.jsonl` (float32)
  fnet-cli-int8      the same with --quantize int8
  fnet-library       the same job from Python (fnet.training.finetune.predict) after
                     fnet.runtime.configure_allocator(), no re-exec
  fnet-library-bare  the same without configure_allocator()
  hf-fnet-512        transformers' FNetForSequenceClassification, same weights, padded to 512
                     (its documentation's advice: FNet was trained at 512), batches of 32
  hf-fnet-dynamic    the same, padded to each batch's longest text (input order), batches of 32
  hf-bert-dynamic    transformers' BERT (sdpa attention) of the same shape, random weights,
                     dynamic padding, batches of 32

All contenders tokenize with fnet's tokenizer (the one in DIR), so the comparison is the model
and batching. Then batch-1 latency of one SST-2 sentence (tokenize + forward, 200 calls) for
fnet, transformers' FNet and BERT, in one process each. The accuracy section runs `fnet evaluate`
float32 and int8 on SST-2 GLUE dev and AG News test with directories fine-tuned on them.
Results: benchmarks/results/realtext/realtext.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
OUT_DIR = REPO / "benchmarks" / "results" / "realtext"
GOALS = {"hf-fnet-512": 3.0, "hf-bert-dynamic": 2.0}  # fnet-cli speed-up wanted over each

# ----------------------------------------------------------------------------- documents


def documents(per_source: int = 700) -> list[str]:
    """AG News test and SST-2 GLUE dev (the first ``per_source`` of each), then every XQuAD context."""
    docs = []
    agnews = (DATA / "classification/agnews/test.tsv").read_text(encoding="utf-8").splitlines()[:per_source]
    docs += [row.rsplit("\t", 1)[0] for row in agnews]
    sst2 = (DATA / "classification/sst2/glue_dev.tsv").read_text(encoding="utf-8").splitlines()[1:per_source + 1]
    docs += [row.rsplit("\t", 1)[0] for row in sst2]
    squad = json.loads((DATA / "qa/xquad_en.json").read_text(encoding="utf-8"))
    docs += [p["context"] for article in squad["data"] for p in article["paragraphs"]]
    return [" ".join(d.split()) for d in docs if d.strip()]


# ----------------------------------------------------------------------------- child programs

HF_CHILD = r"""
import json, sys, torch, transformers
from fnet.tokenization import FNetTokenizer
kind, model_dir, docs_path, out_path = sys.argv[1:5]
tok = FNetTokenizer.from_pretrained(model_dir)
if kind == "hf-bert-dynamic":
    cfg = json.load(open(model_dir + "/config.json"))
    config = transformers.BertConfig(vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"],
        num_hidden_layers=cfg["num_hidden_layers"], intermediate_size=cfg["intermediate_size"],
        num_attention_heads=cfg["num_attention_heads"], max_position_embeddings=cfg["max_position_embeddings"],
        num_labels=cfg.get("num_labels", 2), attn_implementation="sdpa")
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config).eval()
else:
    model = transformers.FNetForSequenceClassification.from_pretrained(model_dir).eval()
texts = open(docs_path, encoding="utf-8").read().splitlines()
padding = "max_length" if kind == "hf-fnet-512" else "longest"
labels = model.config.id2label
with open(out_path, "w", encoding="utf-8") as out, torch.inference_mode():
    for start in range(0, len(texts), 32):
        batch = texts[start:start + 32]
        enc = tok(batch, padding=padding, truncation=True, max_length=512, return_tensors="pt")
        inputs = {"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"]}
        if kind == "hf-bert-dynamic":
            inputs["attention_mask"] = enc["attention_mask"]
        probs = model(**inputs).logits.softmax(-1)
        for text, p in zip(batch, probs.tolist()):
            out.write(json.dumps({"text": text, "label": labels[max(range(len(p)), key=p.__getitem__)],
                                  "probabilities": p}) + "\n")
"""

LIBRARY_CHILD = r"""
import json, sys
import fnet.runtime
if sys.argv[1] == "tuned":
    fnet.runtime.configure_allocator()
from fnet.apps.predict import PredictConfig, predict
records = predict(PredictConfig(model=sys.argv[2], input=sys.argv[3], progress=False))
with open(sys.argv[4], "w", encoding="utf-8") as out:
    out.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
"""

LATENCY_CHILD = r"""
import json, statistics, sys, time, torch, transformers
import fnet, fnet.runtime
from fnet.tokenization import FNetTokenizer
model_dir, sentence, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
fnet.runtime.configure_allocator()
tok = FNetTokenizer.from_pretrained(model_dir)
cfg = json.load(open(model_dir + "/config.json"))
bert = transformers.BertForSequenceClassification(transformers.BertConfig(vocab_size=cfg["vocab_size"],
    hidden_size=cfg["hidden_size"], num_hidden_layers=cfg["num_hidden_layers"], intermediate_size=cfg["intermediate_size"],
    num_attention_heads=cfg["num_attention_heads"], num_labels=cfg.get("num_labels", 2), attn_implementation="sdpa")).eval()
models = {
    "fnet": fnet.optimize_for_inference(fnet.FNetForSequenceClassification.from_pretrained(model_dir).eval()),
    "fnet-int8": fnet.optimize_for_inference(fnet.FNetForSequenceClassification.from_pretrained(model_dir).eval(),
                                             quantize_weights="int8"),
    "hf-fnet": transformers.FNetForSequenceClassification.from_pretrained(model_dir).eval(),
    "hf-bert": bert,
}
times = {name: [] for name in models}
with torch.inference_mode():
    for i in range(calls + 10):
        for name, model in models.items():
            start = time.perf_counter()
            enc = tok([sentence], return_tensors="pt")
            model(input_ids=enc["input_ids"], token_type_ids=enc["token_type_ids"]).logits.softmax(-1)
            if i >= 10:
                times[name].append((time.perf_counter() - start) * 1000)
out = {}
for name, t in times.items():
    t.sort()
    out[name] = {"p50_ms": round(statistics.median(t), 3), "p99_ms": round(t[int(0.99 * (len(t) - 1))], 3)}
print(json.dumps(out))
"""


def run_child(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run one process; wall seconds and its peak RSS (MiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv[:4]} failed:\n{err[-3000:]}")
    return {"seconds": wall, "peak_mib": usage.ru_maxrss / 1024}


def contenders(model_dir: str, docs: str, tmp: str) -> dict[str, list[str]]:
    py = sys.executable
    out = lambda name: str(Path(tmp) / f"{name}.jsonl")  # noqa: E731
    fnet_cli = [py, "-m", "fnet.cli.main", "predict", "--model", model_dir, "--input", docs, "--no-progress"]
    return {
        "fnet-cli": [*fnet_cli, "--output", out("fnet-cli")],
        "fnet-cli-int8": [*fnet_cli, "--quantize", "int8", "--output", out("fnet-cli-int8")],
        "fnet-library": [py, "-c", LIBRARY_CHILD, "tuned", model_dir, docs, out("fnet-library")],
        "fnet-library-bare": [py, "-c", LIBRARY_CHILD, "bare", model_dir, docs, out("fnet-library-bare")],
        "hf-fnet-512": [py, "-c", HF_CHILD, "hf-fnet-512", model_dir, docs, out("hf-fnet-512")],
        "hf-fnet-dynamic": [py, "-c", HF_CHILD, "hf-fnet-dynamic", model_dir, docs, out("hf-fnet-dynamic")],
        "hf-bert-dynamic": [py, "-c", HF_CHILD, "hf-bert-dynamic", model_dir, docs, out("hf-bert-dynamic")],
    }


def agreement(tmp: str, a: str, b: str) -> float:
    ra = [json.loads(x) for x in Path(tmp, f"{a}.jsonl").read_text().splitlines()]
    rb = [json.loads(x) for x in Path(tmp, f"{b}.jsonl").read_text().splitlines()]
    return sum(x.get("label") == y.get("label") for x, y in zip(ra, rb, strict=True)) / len(ra)


def accuracy_section(dirs: dict[str, str], env: dict[str, str], limit: int | None) -> dict[str, dict]:
    data = {"sst2": DATA / "classification/sst2/glue_dev.tsv", "agnews": DATA / "classification/agnews/test.tsv"}
    result = {}
    for task, model_dir in dirs.items():
        row = {}
        for mode in ("fp32", "int8"):
            with tempfile.TemporaryDirectory() as out:
                argv = [sys.executable, "-m", "fnet.cli.main", "evaluate", "--model", model_dir, "--data",
                        str(data[task]), "--output", out, "--no-progress"] + (["--quantize", "int8"] if mode == "int8" else []) \
                    + (["--max-examples", str(limit)] if limit else [])
                start = time.perf_counter()
                subprocess.run(argv, env=env, check=True, capture_output=True)
                metrics = json.loads(Path(out, "metrics.json").read_text())
            row[mode] = {"accuracy": metrics["eval_accuracy"], "inference_seconds": metrics["seconds"],
                         "wall_seconds": round(time.perf_counter() - start, 2), "examples": metrics["examples"]}
        row["accuracy_change_points"] = round(100 * (row["int8"]["accuracy"] - row["fp32"]["accuracy"]), 2)
        row["int8_inference_speedup"] = round(row["fp32"]["inference_seconds"] / row["int8"]["inference_seconds"], 2)
        result[task] = row
    return result


def machine() -> dict[str, object]:
    flags = ""
    model = platform.processor()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("Flags:"):
                flags = line.split(":", 1)[1]
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "fma", "amx_tile")
    return {"cpu": model, "cores": os.cpu_count(), "flags": [f for f in wanted if f in flags.split()],
            "load_average_start": os.getloadavg(), "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="classification directory written by `fnet finetune`")
    parser.add_argument("--rounds", type=int, default=2, help="0: only the latency and accuracy sections")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--latency-calls", type=int, default=200)
    parser.add_argument("--accuracy", nargs="*", default=[], metavar="TASK=DIR", help="sst2=DIR agnews=DIR")
    parser.add_argument("--accuracy-examples", type=int, default=None, help="first N examples of each task file")
    parser.add_argument("--only", nargs="*", default=None, help="run only these contenders")
    parser.add_argument("--name", default="realtext", help="results file stem under benchmarks/results/realtext/")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--per-source", type=int, default=700, help="AG News and SST-2 texts each (XQuAD: all 240)")
    parser.add_argument("--limit", type=int, default=None, help="first N documents only (smoke runs)")
    args = parser.parse_args(argv)
    import torch
    import transformers

    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("GLIBC_TUNABLES", None)
    info = machine()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = str(Path(tmp) / "model")
        shutil.copytree(args.model, model_dir)
        task = json.loads(Path(model_dir, "fnet_task.json").read_text())
        task["seq_len"] = 512
        Path(model_dir, "fnet_task.json").write_text(json.dumps(task))
        docs = documents(args.per_source)[:args.limit]
        docs_path = str(Path(tmp) / "docs.txt")
        Path(docs_path).write_text("\n".join(docs) + "\n", encoding="utf-8")
        from fnet.tokenization import FNetTokenizer

        lengths = [len(ids) for ids in FNetTokenizer.from_pretrained(model_dir)(docs, verbose=False)["input_ids"]]
        runs = contenders(model_dir, docs_path, tmp)
        if args.only:
            runs = {k: v for k, v in runs.items() if k in args.only}
        samples: dict[str, list[dict]] = {name: [] for name in runs}
        for r in range(args.rounds):
            for name, cmd in runs.items():
                samples[name].append(run_child(cmd, env))
                print(f"round {r} {name}: {samples[name][-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
        agree = {name: agreement(tmp, "fnet-cli", name) for name in runs if name.startswith("fnet") or name.startswith("hf-fnet")} \
            if "fnet-cli" in runs and args.rounds else {}
        sentence = docs[min(args.per_source, len(docs) - 1)]  # the first SST-2 sentence
        latency = {}
        if not args.no_latency:
            lat = subprocess.run([sys.executable, "-c", LATENCY_CHILD, model_dir, sentence, str(args.latency_calls)],
                                 env=env, capture_output=True, text=True)
            latency = json.loads(lat.stdout) if lat.returncode == 0 else {"error": lat.stderr[-2000:]}
        acc = accuracy_section(dict(a.split("=", 1) for a in args.accuracy), env, args.accuracy_examples) if args.accuracy else {}
    samples = {name: v for name, v in samples.items() if v}
    median = {name: statistics.median(s["seconds"] for s in v) for name, v in samples.items()}
    peak = {name: max(s["peak_mib"] for s in v) for name, v in samples.items()}
    base = median.get("fnet-cli")
    report = {
        "command": "python3 benchmarks/realtext.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {**info, "load_average_end": os.getloadavg(), "threads": args.threads,
                    "torch": torch.__version__, "transformers": transformers.__version__,
                    "note": "2 cores shared with other jobs; compare ratios within this run only"},
        "documents": {"count": len(docs), "tokens": sum(lengths), "tokens_after_cut_512": sum(min(n, 512) for n in lengths),
                      "median_tokens": statistics.median(lengths), "max_tokens": max(lengths),
                      "over_512": sum(n > 512 for n in lengths)},
        "end_to_end": {name: {"median_seconds": round(median[name], 2), "all_seconds": [round(s["seconds"], 2) for s in samples[name]],
                              "peak_mib": round(peak[name], 1),
                              "texts_per_s": round(len(docs) / median[name], 1),
                              "fnet_cli_speedup": round(median[name] / base, 2) if base else None}
                       for name in samples},
        "label_agreement_with_fnet_cli": agree,
        "batch1_latency_ms": latency,
        "accuracy": acc,
    }
    if base:
        report["goals"] = {f"fnet-cli vs {k} >= {v}x": {"ratio": round(median[k] / base, 2), "met": median[k] / base >= v}
                           for k, v in GOALS.items() if k in median}
        if "fnet-cli-int8" in median:
            r = base / median["fnet-cli-int8"]
            report["goals"]["int8 end-to-end >= 1.7x fp32"] = {"ratio": round(r, 2), "met": r >= 1.7}
        if "fnet-library" in median:
            r = base / median["fnet-library"]
            report["goals"]["library >= 95% of cli"] = {"ratio": round(r, 3), "met": r >= 0.95}
    for task, row in acc.items():
        report.setdefault("goals", {})[f"int8 accuracy change on {task} <= 0.5 points"] = {
            "points": row["accuracy_change_points"], "met": abs(row["accuracy_change_points"]) <= 0.5}
    write_report(args.name, report, markdown(report))
    return 0


def write_report(name: str, report: dict, text: str) -> None:
    """benchmarks/results/realtext/NAME.json (the report) and NAME.md (``text``), which is also printed."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (OUT_DIR / f"{name}.md").write_text(text)
    print(text)


def markdown(r: dict) -> str:
    m, d = r["machine"], r["documents"]
    lines = [f"# Real text, end to end: `fnet predict` vs transformers", "",
             f"Command: `{r['command']}`", "",
             f"Machine: {m['cpu']}, {m['cores']} cores ({', '.join(m['flags'])}; no AVX-512 unless listed), "
             f"{m['threads']} threads per contender, torch {m['torch']}, transformers {m['transformers']}. "
             f"Load average at start {tuple(round(x, 1) for x in m['load_average_start'])}, at end "
             f"{tuple(round(x, 1) for x in m['load_average_end'])}: {m['note']}.", "",
             f"Documents: {d['count']} (AG News test, SST-2 GLUE dev, XQuAD contexts), {d['tokens']:,} tokens, "
             f"median {d['median_tokens']}, longest {d['max_tokens']}, {d['over_512']} over 512 (cut).", "",
             "| contender | median s | texts/s | peak MiB | time / fnet-cli | all runs (s) |", "|---|---|---|---|---|---|"]
    for name, row in r["end_to_end"].items():
        lines.append(f"| {name} | {row['median_seconds']} | {row['texts_per_s']} | {row['peak_mib']} | "
                     f"{row['fnet_cli_speedup']} | {row['all_seconds']} |")
    if r.get("label_agreement_with_fnet_cli"):
        lines += ["", "Label agreement with fnet-cli: " + ", ".join(f"{k} {v:.3f}" for k, v in r["label_agreement_with_fnet_cli"].items())]
    if r["batch1_latency_ms"] and "error" not in r["batch1_latency_ms"]:
        lines += ["", "Batch-1 latency of one SST-2 sentence (tokenize + forward), ms:", "",
                  "| model | p50 | p99 |", "|---|---|---|"]
        lines += [f"| {k} | {v['p50_ms']} | {v['p99_ms']} |" for k, v in r["batch1_latency_ms"].items()]
    if r.get("accuracy"):
        lines += ["", "int8 accuracy (`fnet evaluate`, fnet-small fine-tuned from scratch):", "",
                  "| task | examples | fp32 accuracy | int8 accuracy | change (points) | int8 inference speed-up |",
                  "|---|---|---|---|---|---|"]
        for task, row in r["accuracy"].items():
            lines.append(f"| {task} | {row['fp32']['examples']} | {row['fp32']['accuracy']:.4f} | {row['int8']['accuracy']:.4f} | "
                         f"{row['accuracy_change_points']} | {row['int8_inference_speedup']}x |")
    if r.get("goals"):
        lines += ["", "Goals:", ""] + [f"- {k}: {v} " for k, v in r["goals"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
