"""The vMF sentence VAE (`fnet vae`) on real English text: reconstruction vs kappa, a Gaussian VAE on the
same encoder, latent interpolations, prior samples, and a logistic probe of the latent on SST-2.

    python3 benchmarks/vae.py prepare    # sentences of ../shared/data/corpus/en, a held-out split, a tokenizer
    python3 benchmarks/vae.py train      # `fnet vae train` per model, all in parallel (1 thread each)
    python3 benchmarks/vae.py evaluate   # reconstruction, interpolation, samples, SST-2 probe -> results/vae/

Sentences: Moby Dick, Botchan and the State of the Union addresses split at sentence ends, 5 to 20
words; a seeded 600 of them are held out (never trained on). The SST-2 probe trains a logistic
regression (benchmarks/distill.py's) on 4,000 sentences of SST-2 train.tsv and tests on the 872 GLUE dev
sentences, once on the vMF mean direction mu and once on the mean-pooled encoder states mu is projected
from (the same encoder, the same forward pass). The machine has 2 cores shared with other jobs: the
models train in parallel, interleaved, for the same number of steps.
Work files go to $FNET_BENCH_WORK (default /tmp/fnet-vae-bench); results to benchmarks/results/vae/.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks")]  # this checkout's fnet, and distill.py's probe
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "vae"
WORK = Path(os.environ.get("FNET_BENCH_WORK", "/tmp/fnet-vae-bench"))
SOURCES = ["corpus/en/moby_dick.txt", "corpus/en/botchan.txt", "corpus/en/sotu.txt"]
HELD_OUT = 600
LATENT = 64
# name -> the flags that differ; every model: fnet-tiny encoder and decoder, latent 64, same data and steps
MODELS = {
    "vmf-k16": ["--posterior", "vmf", "--kappa", "16"],
    "vmf-k64": ["--posterior", "vmf", "--kappa", "64"],
    "vmf-k256": ["--posterior", "vmf", "--kappa", "256"],
    "gaussian": ["--posterior", "gaussian"],
}
COMMON = ["--preset", "fnet-tiny", "--latent-dim", str(LATENT), "--max-length", "32", "--batch-size", "32",
          "--lr", "1e-3", "--dropout", "0.1", "--threads", "1", "--no-progress", "--save-every", "400",
          "--eval-every", "200", "--seed", "0", "--time-budget", "30"]


def fnet(*args: str) -> list[str]:
    return [sys.executable, "-m", "fnet", *args]


def environment() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def machine() -> dict:
    from distill import machine as distill_machine

    return distill_machine()


# ----------------------------------------------------------------------------- prepare


def split_sentences(text: str) -> list[str]:
    text = re.sub(r"\s+", " ", text.replace("\ufeff", ""))
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"'])", text)]


def prepare(_args) -> None:
    sentences = []
    for name in SOURCES:
        found = [s for s in split_sentences((SHARED / name).read_text(encoding="utf-8"))
                 if 5 <= len(s.split()) <= 20 and not re.search(r"(chapter|gutenberg|ebook)", s, re.I)]
        sentences += found
        print(f"{name}: {len(found):,} sentences")
    sentences = sorted(set(sentences))
    random.Random(0).shuffle(sentences)
    data = WORK / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "heldout.txt").write_text("\n".join(sentences[:HELD_OUT]) + "\n", encoding="utf-8")
    (data / "train.txt").write_text("\n".join(sentences[HELD_OUT:]) + "\n", encoding="utf-8")
    (data / "eval.txt").write_text("\n".join(sentences[:200]) + "\n", encoding="utf-8")
    print(f"{len(sentences) - HELD_OUT:,} training sentences, {HELD_OUT} held out")
    subprocess.run(fnet("tokenizer", "train", "--input", str(data / "train.txt"), "--vocab-size", "4000",
                        "--output", str(WORK / "tokenizer"), "--overwrite"), check=True, env=environment())


# ----------------------------------------------------------------------------- train


def train_command(name: str, steps: int) -> list[str]:
    return fnet("vae", "train", "--train-files", str(WORK / "data" / "train.txt"), "--eval-files",
                str(WORK / "data" / "eval.txt"), "--tokenizer", str(WORK / "tokenizer"), "--output",
                str(WORK / name), "--max-steps", str(steps), *COMMON, *MODELS[name])


def train(args) -> None:
    names = args.models or list(MODELS)
    started = time.time()
    procs = {}
    for name in names:
        command = train_command(name, args.steps) + (["--resume"] if args.resume else [])
        log = open(WORK / f"{name}.log", "a")
        procs[name] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment()), command)
    for name, (proc, command) in procs.items():
        if proc.wait() != 0:
            sys.exit(f"{name} failed: see {WORK / (name + '.log')}")
    record = {"wall_s": round(time.time() - started, 1), "machine": machine(),
              "commands": {n: " ".join(c[2:]).replace(str(WORK), "$WORK") for n, (_, c) in procs.items()}}
    (WORK / "train_record.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record))


# ----------------------------------------------------------------------------- evaluate


def reconstruction(model, tokenizer, texts: list[str]) -> dict:
    """Held-out sentences decoded from their own posterior mean (mask-predict, 10 passes) vs from another
    sentence's (a shuffled pairing: what the decoder writes without the right z)."""
    import numpy as np
    import torch

    from fnet.vae.run import posterior_means, reconstruct, sentence_rows

    rows, _ = sentence_rows(texts, tokenizer, model.config.max_length)
    truth = [r[1:-1].tolist() for r in rows]
    lengths = torch.tensor([len(t) for t in truth])
    mu = torch.as_tensor(posterior_means(model, tokenizer, texts))
    perm = torch.as_tensor(np.random.default_rng(0).permutation(len(texts)))

    def score(z):
        decoded = reconstruct(model, tokenizer, texts, 10, true_length=True, latents=z)  # position-wise accuracy
        hits = sum(sum(a == b for a, b in zip(d, t)) for d, t in zip(decoded, truth))
        exact = sum(d == t for d, t in zip(decoded, truth))
        return hits / int(lengths.sum()), exact / len(texts), decoded

    own_acc, own_exact, decoded = score(mu)
    other_acc, _, _ = score(mu[perm])
    predicted = model.length_logits(mu.to(torch.float32)).argmax(-1)
    free = reconstruct(model, tokenizer, texts, 10, latents=mu)  # the length head's length
    return {"token_accuracy": own_acc, "exact_match": own_exact, "token_accuracy_shuffled_z": other_acc,
            "length_accuracy": float((predicted == lengths).float().mean()),
            "examples": [{"text": texts[i], "decoded_true_length": tokenizer.decode(decoded[i]),
                          "decoded": tokenizer.decode(free[i])} for i in range(5)]}


def probe(model, tokenizer, n_train: int) -> dict:
    from distill import datasets, logistic_probe

    from fnet.vae.run import posterior_means

    (train_rows, test_rows) = datasets(n_train, 10_000)["sst2"]
    out = {}
    features = {}
    for split, rows in (("train", train_rows), ("test", test_rows)):
        features[split] = posterior_means(model, tokenizer, [t for t, _ in rows], with_pooled=True)
    labels = {split: [y for _, y in rows] for split, rows in (("train", train_rows), ("test", test_rows))}
    for i, name in enumerate(("latent_mu", "mean_pooled_encoder")):
        out[name] = logistic_probe(features["train"][i], labels["train"], features["test"][i], labels["test"])
    out["dims"] = {"latent_mu": int(features["train"][0].shape[1]),
                   "mean_pooled_encoder": int(features["train"][1].shape[1])}
    out["n_train"], out["n_test"] = len(train_rows), len(test_rows)
    return out


def evaluate(args) -> None:
    import torch

    from fnet.vae.run import VAEInterpolateConfig, VAESampleConfig, interpolate, load, sample

    torch.set_num_threads(args.threads)
    held = (WORK / "data" / "heldout.txt").read_text(encoding="utf-8").splitlines()
    test = held[200:200 + args.sentences]  # never used for training or for the training-time evaluation
    start, end = args.pair if args.pair else (test[0], test[1])
    results = {"models": {}, "heldout_sentences": len(test), "pair": [start, end], "machine": machine()}
    for name in args.models or list(MODELS):
        folder = WORK / name
        started = time.time()
        model, tokenizer = load(str(folder))
        summary = json.loads((folder / "vae_summary.json").read_text())
        last_eval = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()
                     if "eval_loss" in line]
        row = {"kappa": model.config.kappa if model.config.posterior == "vmf" else None,
               "posterior": model.config.posterior, "steps": summary["steps"],
               "train_elapsed_s": round(summary["elapsed_s"], 1), "kl_constant": summary["kl_constant"],
               "eval_kl_by_step": [(e["step"], round(e["eval_kl"], 4)) for e in last_eval],
               "eval_token_accuracy": summary["eval"].get("eval_token_accuracy"),
               "eval_rec_nll": summary["eval"].get("eval_rec_nll")}
        with torch.no_grad():
            row["reconstruction"] = reconstruction(model, tokenizer, test)
            row["probe_sst2"] = probe(model, tokenizer, args.probe_train)
        row["interpolation"] = interpolate(VAEInterpolateConfig(model=str(folder), start=start, end=end, points=7))
        row["samples"] = [s["text"] for s in sample(VAESampleConfig(model=str(folder), num_samples=8, seed=0))]
        row["evaluate_s"] = round(time.time() - started, 1)
        results["models"][name] = row
        print(name, json.dumps({k: row[k] for k in ("steps", "kl_constant")}),
              json.dumps({k: v for k, v in row["reconstruction"].items() if k != "examples"}),
              json.dumps(row["probe_sst2"]), flush=True)
    train_record = WORK / "train_record.json"
    results["train"] = json.loads(train_record.read_text()) if train_record.is_file() else None
    results["evaluate_command"] = "python3 benchmarks/vae.py " + " ".join(sys.argv[1:])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    (RESULTS / "results.md").write_text(markdown(results))
    print(f"wrote {RESULTS / 'results.md'}")


def markdown(results: dict) -> str:
    rows = results["models"]
    lines = ["# vMF sentence VAE on real text (`fnet vae`)", "",
             "Generated by `benchmarks/vae.py` (commands and machine below). Reconstruction: "
             f"{results['heldout_sentences']} held-out sentences, decoded from their posterior mean by mask-predict "
             "(10 passes) at their true length; 'shuffled z' decodes each from another sentence's latent.", "",
             "| model | KL (nats/sentence) | steps | held-out token acc. | shuffled z | exact | length acc. | "
             "SST-2 probe: latent mu | mean-pooled encoder |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        rec, pr = r["reconstruction"], r["probe_sst2"]
        kl = f"{r['kl_constant']:.2f} (constant)" if r["kl_constant"] is not None else \
            f"{r['eval_kl_by_step'][-1][1]:.3f} (at the end)"
        lines.append(f"| {name} | {kl} | {r['steps']} | {rec['token_accuracy']:.3f} | "
                     f"{rec['token_accuracy_shuffled_z']:.3f} | {rec['exact_match']:.3f} | {rec['length_accuracy']:.3f} | "
                     f"{pr['latent_mu']:.3f} ({pr['dims']['latent_mu']}-d) | "
                     f"{pr['mean_pooled_encoder']:.3f} ({pr['dims']['mean_pooled_encoder']}-d) |")
    lines += ["", "KL on the evaluation sentences by step (the Gaussian's is learned; the vMF's is fixed by kappa):", ""]
    for name, r in rows.items():
        lines.append(f"- {name}: " + ", ".join(f"{s}: {v}" for s, v in r["eval_kl_by_step"]))
    start, end = results["pair"]
    lines += ["", "## Interpolation (great circle for vMF, straight line for Gaussian)", "",
              f"start: `{start}`  ", f"end: `{end}`", ""]
    lines += per_model(rows, lambda r: [f"- t={p['t']:.2f}: {p['text']}" for p in r["interpolation"]])
    lines += ["## Samples from the prior (8 per model, seed 0)", ""]
    lines += per_model(rows, lambda r: [f"- {s}" for s in r["samples"]])
    lines += ["## Reconstruction examples", ""]
    lines += per_model(rows, lambda r: [f"- `{ex['text']}` -> `{ex['decoded_true_length']}` (own length head: "
                                        f"`{ex['decoded']}`)" for ex in r["reconstruction"]["examples"]])
    train = results.get("train") or {}
    lines += ["## Commands and machine", "", "```bash", "python3 benchmarks/vae.py prepare"]
    for name, command in (train.get("commands") or {}).items():
        lines.append(f"{command}   # {name}")
    lines += [results["evaluate_command"], "```", "",
              f"Training: all models in parallel, 1 thread each, {train.get('wall_s')} s wall; machine "
              f"`{json.dumps(train.get('machine'))}`; evaluation machine `{json.dumps(results['machine'])}`.", ""]
    return "\n".join(lines)


def per_model(rows: dict, items) -> list[str]:
    """A bold model name, then its list items, for every model."""
    lines = []
    for name, r in rows.items():
        lines += [f"**{name}**", "", *items(r), ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="phase", required=True)
    sub.add_parser("prepare").set_defaults(func=prepare)
    t = sub.add_parser("train")
    t.add_argument("--steps", type=int, default=1000)
    t.add_argument("--models", nargs="+", choices=list(MODELS))
    t.add_argument("--resume", action="store_true")
    t.set_defaults(func=train)
    e = sub.add_parser("evaluate")
    e.add_argument("--models", nargs="+", choices=list(MODELS))
    e.add_argument("--sentences", type=int, default=300)
    e.add_argument("--probe-train", type=int, default=4000)
    e.add_argument("--pair", nargs=2, metavar=("START", "END"))
    e.add_argument("--threads", type=int, default=2)
    e.set_defaults(func=evaluate)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    args.func(args)


if __name__ == "__main__":
    main()
