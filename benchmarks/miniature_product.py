"""The paper in miniature through the product: `pretrain` + `finetune` per token mixer, equal budgets.

For each encoder (FNet, BERT, linear attention, Performer, an FNet/attention hybrid) and seed:
``fnet.training.pretrain.pretrain`` on the same text with the same tokenizer, the same seed (so the
same pairs and masks in the same order) and the same wall-clock budget (``--minutes``, through
``PretrainConfig.time_budget``; ``max_steps`` bounds the tokens, so a fast model may see more tokens
in the budget and ``--equal-tokens`` stops each at the same step instead); then
``fnet.training.finetune.finetune`` on SST-2 (defaults of `fnet finetune`), scored on GLUE dev.
Throughput is measured interleaved (one pretraining step per model in turn, on the same batches,
median of ``--throughput-steps``), so load changes on a shared machine hit every model alike.

    python benchmarks/miniature_product.py --tokenizer DIR --output benchmarks/results/miniature/product \
        --minutes 10 --seeds 0 1 2 --labels 8000

Writes OUTPUT/runs.jsonl (one line per model and seed, appended as they finish: an interrupted study
continues), results.json, results.md and pareto.png (accuracy against pretraining wall-clock).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CORPUS = [DATA / "corpus" / "en" / f for f in ("botchan.txt", "moby_dick.txt", "sotu.txt", "wordnet_glosses.txt")]

# everything but the token mixer is the preset's
MODELS: dict[str, dict] = {
    "fnet": dict(token_mixer="fourier"),
    "bert": dict(token_mixer="attention"),
    "linear-attention": dict(token_mixer="linear-attention"),
    "performer": dict(token_mixer="performer"),
    "hybrid": dict(token_mixer="fourier", hybrid_layout="top", hybrid_attention_layers=1),
}


def model_config_file(name: str, args, tokenizer, work: Path) -> Path:
    from fnet.config import FNetConfig

    path = work / "configs" / name
    FNetConfig.from_preset(args.preset, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                           max_position_embeddings=max(512, args.seq_len), **MODELS[name]).save_pretrained(path)
    return path / "config.json"


def interleaved_throughput(names: list[str], args, tokenizer, work: Path) -> dict[str, float]:
    """Non-pad tokens/s of one MLM+NSP training step per model, round-robin on identical batches."""
    import torch

    from fnet.config import FNetConfig
    from fnet.data.pretraining import MaskingConfig, PretrainingBatches, ShardedCorpus, build_shards
    from fnet.modeling import FNetForPreTraining
    from fnet.training.objectives import pretraining_loss

    shards = build_shards([str(p) for p in args.train_files], tokenizer, work / "cache")
    data = PretrainingBatches(ShardedCorpus(shards), tokenizer, args.seq_len, 0, 0.1, MaskingConfig())
    batches = [data.collate(0, list(range(i * args.batch_size, (i + 1) * args.batch_size)))
               for i in range(args.throughput_steps + 1)]
    models = {}
    for name in names:
        config = FNetConfig.from_json_file(str(model_config_file(name, args, tokenizer, work)))
        torch.manual_seed(0)
        model = FNetForPreTraining(config)
        models[name] = (model, torch.optim.AdamW(model.parameters(), lr=1e-4))
    times: dict[str, list[float]] = {name: [] for name in names}
    for step, batch in enumerate(batches):
        for name, (model, optimizer) in models.items():
            started = time.perf_counter()
            loss, _ = pretraining_loss(model, batch)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if step:  # the first step warms up allocators and kernels
                times[name].append(time.perf_counter() - started)
    tokens = [int(b["attention_mask"].sum()) for b in batches[1:]]
    return {name: statistics.median(t / s for t, s in zip(tokens, times[name])) for name in names}


def run_one(name: str, seed: int, args, work: Path) -> dict:
    from fnet.tokenization import FNetTokenizer
    from fnet.training.finetune import FinetuneConfig, finetune
    from fnet.training.pretrain import PretrainConfig, pretrain

    tokenizer = FNetTokenizer.from_pretrained(args.tokenizer)
    out = work / f"{name}-s{seed}"
    pre = pretrain(PretrainConfig(
        train_files=[str(p) for p in args.train_files], tokenizer=args.tokenizer, output=str(out / "pretrained"),
        model_config=str(model_config_file(name, args, tokenizer, work)), seq_len=args.seq_len,
        batch_size=args.batch_size, max_steps=args.max_steps, time_budget=0 if args.equal_tokens else args.minutes,
        seed=seed, save_every=0, progress=False, threads=args.threads, data_cache=str(work / "cache"),
        eval_files=[str(args.eval_file)] if args.eval_file else None, eval_batches=10))
    train = work / f"sst2-{args.labels}.tsv"
    if not train.exists():
        lines = (DATA / "classification/sst2/train.tsv").read_text(encoding="utf-8").splitlines()
        train.write_text("\n".join(lines[: args.labels + 1]) + "\n", encoding="utf-8")
    started = time.perf_counter()
    fine = finetune(FinetuneConfig(task="classification", model=str(out / "pretrained"), train=str(train),
                                   validation=str(DATA / "classification/sst2/glue_dev.tsv"), output=str(out / "sst2"),
                                   seq_len=64, seed=seed, epochs=args.finetune_epochs, progress=False,
                                   threads=args.threads))
    return {"model": name, "seed": seed, "pretrain_steps": pre.steps, "pretrain_s": round(pre.elapsed_s, 1),
            "pretrain_tokens_per_s": pre.train.get("tokens_per_s"), "mlm_acc": pre.eval.get("eval_mlm_acc"),
            "finetune_s": round(time.perf_counter() - started, 1), "sst2_acc": fine["eval_accuracy"],
            "load": round(os.getloadavg()[0], 1)}


def report(out: Path, throughput: dict[str, float], meta: dict) -> None:
    """results.md / results.json / pareto.png from runs.jsonl and the interleaved throughput.

    "% of BERT" is the ratio of the mean accuracies; "paired" is the mean ± std over seeds of each
    seed's ratio to BERT at the same seed (same pairs, masks and fine-tuning order).
    """
    runs = [json.loads(l) for l in (out / "runs.jsonl").read_text().splitlines() if l.strip()]
    bert_by_seed = {r["seed"]: r["sst2_acc"] for r in runs if r["model"] == "bert"}
    rows = {}
    for name in MODELS:
        mine = [r for r in runs if r["model"] == name]
        if not mine:
            continue
        acc = [r["sst2_acc"] for r in mine]
        paired = [r["sst2_acc"] / bert_by_seed[r["seed"]] for r in mine if r["seed"] in bert_by_seed]
        rows[name] = {"acc_mean": statistics.mean(acc), "acc_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
                      "seeds": len(acc), "pretrain_s": statistics.mean(r["pretrain_s"] for r in mine),
                      "steps": statistics.mean(r["pretrain_steps"] for r in mine),
                      "paired_mean": statistics.mean(paired) if paired else None,
                      "paired_std": statistics.stdev(paired) if len(paired) > 1 else 0.0,
                      "tokens_per_s_interleaved": throughput.get(name)}
    bert = rows.get("bert")
    lines = ["# The paper in miniature, through `fnet pretrain` + `fnet finetune`", "",
             f"Command: `{meta['command']}`  ", f"Machine: {meta['cpu']}; load average at start {meta['load']}", "",
             "| model | seeds | SST-2 acc (mean ± std) | % of BERT | paired % of BERT (mean ± std) | pretrain steps "
             "| pretrain s | tokens/s (interleaved) | speed vs BERT |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        pct = f"{100 * r['acc_mean'] / bert['acc_mean']:.1f}%" if bert else "-"
        paired = f"{100 * r['paired_mean']:.1f} ± {100 * r['paired_std']:.1f}%" if r["paired_mean"] else "-"
        tps = r["tokens_per_s_interleaved"]
        speed = f"{tps / bert['tokens_per_s_interleaved']:.2f}x" if bert and tps and bert["tokens_per_s_interleaved"] else "-"
        lines.append(f"| {name} | {r['seeds']} | {r['acc_mean']:.3f} ± {r['acc_std']:.3f} | {pct} | {paired} | "
                     f"{r['steps']:.0f} | {r['pretrain_s']:.0f} | {tps or 0:,.0f} | {speed} |")
    lines += ["", "Per run:", "", "| model | seed | SST-2 acc | pretrain steps | fine-tune s | load |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['seed']} | {r['sst2_acc']:.3f} | {r['pretrain_steps']} | {r['finetune_s']} | {r['load']} |"
              for r in runs]
    (out / "results.json").write_text(json.dumps({"meta": meta, "runs": runs, "summary": rows,
                                                  "throughput_interleaved": throughput}, indent=2) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        # every model had the same wall-clock, so the trade is accuracy against what each second buys:
        # the wall-clock one million pretraining tokens cost (interleaved throughput)
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for name, r in rows.items():
            if not r["tokens_per_s_interleaved"]:
                continue
            ax.errorbar(1e6 / r["tokens_per_s_interleaved"], r["acc_mean"], yerr=r["acc_std"], marker="o", capsize=3,
                        label=name)
        ax.set_xlabel("pretraining wall-clock per million tokens (s, interleaved)")
        ax.set_ylabel(f"SST-2 dev accuracy after {rows[next(iter(rows))]['pretrain_s']:.0f} s")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "pareto.png", dpi=120)
        lines += ["", "![accuracy against wall-clock](pareto.png)"]
    except ImportError:
        pass
    (out / "results.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", required=True, help="tokenizer folder (fnet tokenizer train)")
    parser.add_argument("--output", required=True)
    parser.add_argument("--work", default="runs/miniature_product")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--preset", default="fnet-mini")
    parser.add_argument("--train-files", nargs="+", type=Path, default=CORPUS)
    parser.add_argument("--eval-file", type=Path, default=None, help="held-out text for MLM accuracy")
    parser.add_argument("--minutes", type=float, default=10.0, help="pretraining wall-clock budget per model")
    parser.add_argument("--max-steps", type=int, default=100000)
    parser.add_argument("--equal-tokens", action="store_true", help="stop every model at --max-steps, no time budget")
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--labels", type=int, default=8000, help="SST-2 training rows")
    parser.add_argument("--finetune-epochs", type=float, default=None, help="default: what `fnet finetune` chooses")
    parser.add_argument("--throughput-steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite results.md, results.json and pareto.png from OUTPUT's runs and throughput")
    args = parser.parse_args(argv)
    out, work = Path(args.output), Path(args.work)
    if args.report_only:
        saved = json.loads((out / "results.json").read_text())
        report(out, saved["throughput_interleaved"], saved["meta"])
        return 0
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((l.split(":", 1)[1].strip() for l in lscpu.splitlines() if l.startswith("Model name")), "?")
    import sys

    meta = {"command": "python " + " ".join(sys.argv), "cpu": f"{model}, {os.cpu_count()} cores, avx512: "
            f"{'avx512f' in lscpu}, {args.threads} torch thread(s)", "load": [round(x, 1) for x in os.getloadavg()]}
    from fnet.tokenization import FNetTokenizer

    throughput = interleaved_throughput(args.models, args, FNetTokenizer.from_pretrained(args.tokenizer), work)
    done = set()
    if (out / "runs.jsonl").exists():
        done = {(r["model"], r["seed"]) for r in map(json.loads, (out / "runs.jsonl").read_text().splitlines()) if r}
    for seed in args.seeds:  # seeds outermost: an interrupted study still has every model at seed 0
        for name in args.models:
            if (name, seed) in done:
                continue
            result = run_one(name, seed, args, work)
            print(json.dumps(result), flush=True)
            with open(out / "runs.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(result) + "\n")
    report(out, throughput, meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
