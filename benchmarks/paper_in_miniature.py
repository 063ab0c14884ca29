"""The FNet paper in miniature: pretrain tiny encoders that differ only in their token mixer on the
same corpus with the same token budget, fine-tune each on SST-2, and compare accuracy and speed.

The paper's claim under test: FNet reaches 92-97% of BERT's accuracy while training about 1.8x
faster (GPU, length 512). Here everything is tiny and runs on a CPU, so read the numbers as a
sanity check of the trade, not as a reproduction.

Pipeline (self-contained on purpose, so every model sees byte-identical data and the timings
measure the models only):

1. A SentencePiece unigram vocabulary trained on a lower-cased sample of the shared English
   corpus (../shared/data/corpus/en), plus [PAD] [CLS] [SEP] [MASK].
2. MLM pretraining (BERT's 15% with 80/10/10; no NSP) on packed rows ``[CLS] 126 tokens [SEP]``,
   the same rows in the same order for every model, AdamW with warm-up and linear decay.
   Pretraining tokens/s = rows x seq_len / wall-clock of the training steps.
   MLM accuracy = share of masked tokens predicted exactly, on held-out rows with fixed masks.
3. SST-2 fine-tuning (../shared/data/classification/sst2/train.tsv, dynamic padding with
   ``attention_mask``), evaluated on glue_dev.tsv (the 872 sentences the paper reports).
   The SST-2 accuracy is that of the last evaluation; the curve gives accuracy against the
   cumulative wall-clock of pretraining + fine-tuning (the Pareto plot).

Usage (the committed results; see benchmarks/results/miniature/README.md for the machine):
    python benchmarks/paper_in_miniature.py --output benchmarks/results/miniature
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import platform
import random
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from fnet import FNetConfig, FNetForMaskedLM, FNetForSequenceClassification

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FNET_SHARED_DATA", REPO.parent / "shared" / "data"))
CORPUS_FILES = ("sotu.txt", "moby_dick.txt", "wordnet_glosses.txt", "botchan.txt")

# the encoders under comparison: everything but the token mixer is the same
MODELS: dict[str, dict] = {
    "fnet": dict(token_mixer="fourier"),
    "bert": dict(token_mixer="attention"),
    "linear-attention": dict(token_mixer="linear-attention"),
    "performer": dict(token_mixer="performer", performer_features=64),
    "hybrid": dict(token_mixer="fourier", hybrid_layout="top", hybrid_attention_layers=1),
}


# ----------------------------------------------------------------------------- data


def read_corpus(max_chars: int) -> list[str]:
    """Lines of the shared English corpus, lower-cased, interleaved across the files up to max_chars."""
    per_file = max_chars // len(CORPUS_FILES)
    lines: list[str] = []
    for name in CORPUS_FILES:
        text = (DATA / "corpus" / "en" / name).read_text(encoding="utf-8", errors="replace")[:per_file]
        lines += [line.strip().lower() for line in text.splitlines() if line.strip()]
    return lines


def train_tokenizer(lines: list[str], vocab_size: int):
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines[::3]), model_writer=model, vocab_size=vocab_size, model_type="unigram",
        pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"],
        input_sentence_size=200_000, shuffle_input_sentence=True, num_threads=2, minloglevel=2,
        max_sentence_length=20_000,
    )
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    return sp, dict(pad=0, unk=1, cls=sp.piece_to_id("[CLS]"), sep=sp.piece_to_id("[SEP]"),
                    mask=sp.piece_to_id("[MASK]"))


def pack_rows(sp, lines: list[str], seq_len: int, specials: dict) -> torch.Tensor:
    """One token stream cut into rows [CLS] x_1..x_{n-2} [SEP]. (rows, seq_len) int64."""
    stream: list[int] = []
    for ids in sp.encode(lines):
        stream.extend(ids)
    body = seq_len - 2
    rows = len(stream) // body
    data = torch.tensor(stream[: rows * body], dtype=torch.long).view(rows, body)
    cls = torch.full((rows, 1), specials["cls"])
    sep = torch.full((rows, 1), specials["sep"])
    return torch.cat([cls, data, sep], dim=1)


def mask_rows(rows: torch.Tensor, specials: dict, vocab: int, generator: torch.Generator):
    """BERT masking: 15% of non-special tokens; of those 80% [MASK], 10% random, 10% kept."""
    ids = rows.clone()
    labels = torch.full_like(ids, -100)
    special = (ids == specials["cls"]) | (ids == specials["sep"]) | (ids == specials["pad"])
    chosen = (torch.rand(ids.shape, generator=generator) < 0.15) & ~special
    labels[chosen] = ids[chosen]
    action = torch.rand(ids.shape, generator=generator)
    ids[chosen & (action < 0.8)] = specials["mask"]
    randomised = chosen & (action >= 0.8) & (action < 0.9)
    ids[randomised] = torch.randint(5, vocab, (int(randomised.sum()),), generator=generator)
    return ids, labels


def read_sst2(path: Path) -> list[tuple[str, int]]:
    with path.open(encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        return [(row[0].strip().lower(), int(row[1])) for row in reader if len(row) == 2]


def encode_sst2(sp, examples, specials: dict, max_len: int) -> list[tuple[list[int], int]]:
    encoded = sp.encode([text for text, _ in examples])
    return [([specials["cls"]] + ids[: max_len - 2] + [specials["sep"]], label)
            for ids, (_, label) in zip(encoded, examples)]


def collate(batch: list[tuple[list[int], int]], pad: int):
    n = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), n), pad, dtype=torch.long)
    mask = torch.zeros(len(batch), n, dtype=torch.long)
    for i, (row, _) in enumerate(batch):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return ids, mask, torch.tensor([label for _, label in batch])


# ----------------------------------------------------------------------------- training


def schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def masked_lm_loss(model: FNetForMaskedLM, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on masked positions only: the vocabulary projection runs on those rows alone,
    which is the same (large) cost for every mixer and would hide their differences."""
    hidden = model.fnet(input_ids=ids).last_hidden_state  # (b, n, d)
    chosen = labels != -100
    logits = model.cls(hidden[chosen])  # (masked, v)
    return F.cross_entropy(logits, labels[chosen])


def pretrain(config: FNetConfig, rows: torch.Tensor, eval_batches, args, specials: dict, log) -> dict:
    torch.manual_seed(args.seed)
    model = FNetForMaskedLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.pretrain_lr, weight_decay=0.01)
    steps = rows.shape[0] // args.batch_size
    warmup = max(1, steps // 20)
    generator = torch.Generator().manual_seed(args.seed)
    model.train()
    train_time = 0.0
    for step in range(steps):
        batch = rows[step * args.batch_size : (step + 1) * args.batch_size]
        ids, labels = mask_rows(batch, specials, config.vocab_size, generator)  # same masks for every model
        for group in optimizer.param_groups:
            group["lr"] = args.pretrain_lr * schedule(step, steps, warmup)
        start = time.perf_counter()
        loss = masked_lm_loss(model, ids, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        train_time += time.perf_counter() - start
        if step % max(1, steps // 10) == 0 or step == steps - 1:
            log(f"  pretrain step {step + 1}/{steps} loss {loss.item():.3f} ({train_time:.0f} s)")
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for ids, labels in eval_batches:
            chosen = labels != -100
            logits = model.cls(model.fnet(input_ids=ids).last_hidden_state[chosen])  # (masked, v)
            correct += int((logits.argmax(-1) == labels[chosen]).sum())
            total += int(chosen.sum())
    tokens = steps * args.batch_size * rows.shape[1]
    return dict(model=model, pretrain_s=train_time, pretrain_tokens=tokens, pretrain_steps=steps,
                pretrain_tokens_per_s=tokens / train_time, mlm_accuracy=correct / total, final_mlm_loss=loss.item())


def evaluate_sst2(model, dev, pad: int, batch_size: int = 128) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(dev), batch_size):
            ids, mask, labels = collate(dev[i : i + batch_size], pad)
            correct += int((model(input_ids=ids, attention_mask=mask).logits.argmax(-1) == labels).sum())
    model.train()
    return correct / len(dev)


def finetune(config: FNetConfig, pretrained, train, dev, args, pad: int, offset_s: float, log) -> dict:
    torch.manual_seed(args.seed)
    model = FNetForSequenceClassification(config)
    model.fnet.load_state_dict(pretrained.fnet.state_dict())
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.finetune_lr, weight_decay=0.01)
    order = random.Random(args.seed).sample(range(len(train)), len(train))
    steps, warmup = args.finetune_steps, max(1, args.finetune_steps // 10)
    every = max(1, steps // args.evals)
    curve, train_time = [], 0.0
    model.train()
    for step in range(steps):
        chunk = [train[order[(step * args.batch_size + j) % len(order)]] for j in range(args.batch_size)]
        ids, mask, labels = collate(chunk, pad)
        for group in optimizer.param_groups:
            group["lr"] = args.finetune_lr * schedule(step, steps, warmup)
        start = time.perf_counter()
        loss = F.cross_entropy(model(input_ids=ids, attention_mask=mask).logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        train_time += time.perf_counter() - start
        if (step + 1) % every == 0 or step == steps - 1:
            accuracy = evaluate_sst2(model, dev, pad)
            curve.append(dict(step=step + 1, finetune_s=train_time, wall_s=offset_s + train_time, accuracy=accuracy))
            log(f"  finetune step {step + 1}/{steps} loss {loss.item():.3f} dev acc {accuracy:.4f}")
    return dict(finetune_s=train_time, sst2_accuracy=curve[-1]["accuracy"],
                best_sst2_accuracy=max(c["accuracy"] for c in curve), curve=curve)


def interleaved_throughput(configs: dict[str, FNetConfig], rows: torch.Tensor, args, specials: dict,
                           steps: int) -> dict[str, float]:
    """Pretraining tokens/s of each model, timed round-robin (one step of each model in turn, on the
    same batches), so that a change in the machine's load affects every model alike. Median of steps."""
    models = {}
    for name, config in configs.items():
        torch.manual_seed(args.seed)
        model = FNetForMaskedLM(config).train()
        models[name] = (model, torch.optim.AdamW(model.parameters(), lr=args.pretrain_lr))
    generator = torch.Generator().manual_seed(args.seed)
    times: dict[str, list[float]] = {name: [] for name in configs}
    for step in range(steps + 1):  # step 0 is a warm-up
        batch = rows[step * args.batch_size : (step + 1) * args.batch_size]
        ids, labels = mask_rows(batch, specials, args.vocab, generator)
        for name, (model, optimizer) in models.items():
            start = time.perf_counter()
            loss = masked_lm_loss(model, ids, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step:
                times[name].append(time.perf_counter() - start)
    tokens = args.batch_size * rows.shape[1]
    return {name: tokens / sorted(t)[len(t) // 2] for name, t in times.items()}


# ----------------------------------------------------------------------------- reports


def write_reports(results: dict, meta: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(dict(meta=meta, results=results), indent=2) + "\n")
    bert = results.get("bert")
    lines = [
        "# The paper in miniature", "",
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}  ",
        f"Models: {meta['size']}; same vocabulary ({meta['vocab_size']} pieces), same "
        f"{meta['pretrain_tokens']:,} pretraining tokens (MLM only, seq {meta['seq_len']}, batch {meta['batch_size']}) "
        f"in the same order, same SST-2 fine-tuning ({meta['finetune_steps']} steps x {meta['batch_size']}); "
        f"total run {meta['total_minutes']:.1f} min.", "",
        "| model | mixer | params | pretrain tokens/s (in its run) | pretrain tokens/s (interleaved) "
        "| pretrain time (s) | MLM acc | SST-2 dev acc | best dev acc | % of BERT (SST-2) | speed vs BERT (interleaved) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        rel = f"{100 * r['sst2_accuracy'] / bert['sst2_accuracy']:.1f}%" if bert else ""
        inter = r.get("interleaved_tokens_per_s")
        speed = f"{inter / bert['interleaved_tokens_per_s']:.2f}x" if bert and inter and \
            bert.get("interleaved_tokens_per_s") else ""
        lines.append(
            f"| {name} | {r['mixer']} | {r['params']:,} | {r['pretrain_tokens_per_s']:,.0f} | "
            f"{f'{inter:,.0f}' if inter else ''} | {r['pretrain_s']:.0f} "
            f"| {r['mlm_accuracy']:.4f} | {r['sst2_accuracy']:.4f} | {r['best_sst2_accuracy']:.4f} | {rel} | {speed} |"
        )
    lines += ["", "SST-2 dev = GLUE dev (872 sentences), accuracy after the last fine-tuning step; majority class = "
              f"{meta['sst2_majority']:.4f}. One seed per model.", "",
              "*pretrain tokens/s (in its run)* is each model's own pretraining run; the models ran one after "
              "another on a machine shared with other jobs whose load changed during the study, so these are not "
              "comparable across models. *pretrain tokens/s (interleaved)* times all models round-robin, one "
              "step each in turn on the same batches (median of "
              f"{meta['args'].get('throughput_steps', 10)} steps), so load changes hit every model alike: use "
              "that column to compare speed"
              + (f" (`{meta['interleaved_command']}`, load average {meta.get('interleaved_load_average')})."
                 if meta.get("interleaved_command") else "."),
              "", "The plot's wall-clock axis is each model's own run (fnet and bert ran under the heaviest load, "
              "performer and hybrid under a lighter one), so it carries the same caveat; scale it by the "
              "interleaved speeds for a like-for-like comparison.",
              "", "![accuracy against wall-clock](pareto.png)", ""]
    (out / "results.md").write_text("\n".join(lines))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, r in results.items():
        xs = [c["wall_s"] / 60 for c in r["curve"]]
        ys = [c["accuracy"] for c in r["curve"]]
        left.plot(xs, ys, marker=".", label=name)
        right.scatter([r["pretrain_s"] / 60 + r["finetune_s"] / 60], [r["sst2_accuracy"]], s=60)
        right.annotate(name, (r["pretrain_s"] / 60 + r["finetune_s"] / 60, r["sst2_accuracy"]),
                       textcoords="offset points", xytext=(5, 5))
    left.set(xlabel="wall-clock, pretraining + fine-tuning (min)", ylabel="SST-2 dev accuracy",
             title="accuracy against training time")
    right.set(xlabel="total training time (min)", ylabel="final SST-2 dev accuracy",
              title="Pareto: up and to the left is better")
    left.legend()
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "pareto.png", dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- main


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "miniature"))
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {list(MODELS)}")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--intermediate", type=int, default=512)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--pretrain-tokens", type=int, default=600_000, help="token budget per model")
    parser.add_argument("--pretrain-lr", type=float, default=1e-3)
    parser.add_argument("--finetune-steps", type=int, default=400)
    parser.add_argument("--finetune-lr", type=float, default=1e-3)
    parser.add_argument("--evals", type=int, default=10, help="SST-2 dev evaluations during fine-tuning")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 on a shared machine: spinning OpenMP threads slow each other down)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--throughput-steps", type=int, default=10,
                        help="round-robin timed pretraining steps per model for the interleaved tokens/s")
    parser.add_argument("--throughput-only", action="store_true",
                        help="only (re)measure the interleaved tokens/s of the models in OUTPUT/results.json")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other models' results already in OUTPUT/results.json (re-run some models only)")
    args = parser.parse_args(argv)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    if not (DATA / "corpus" / "en").is_dir():
        print(f"{DATA} is absent: the miniature study needs ../shared/data", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    load_at_start = tuple(round(x, 1) for x in os.getloadavg())
    log = lambda text: print(text, flush=True)  # noqa: E731

    rows_needed = args.pretrain_tokens // args.seq_len + 64 * 4
    lines = read_corpus(max_chars=rows_needed * args.seq_len * 6)
    sp, specials = train_tokenizer(lines, args.vocab)
    random.Random(args.seed).shuffle(lines)
    rows = pack_rows(sp, lines, args.seq_len, specials)
    held_out, rows = rows[:256], rows[256:]
    rows = rows[: args.pretrain_tokens // args.seq_len]
    if rows.shape[0] * args.seq_len < args.pretrain_tokens * 0.95:
        raise SystemExit(f"corpus sample gave {rows.shape[0] * args.seq_len:,} tokens, fewer than the budget")
    generator = torch.Generator().manual_seed(12345)
    eval_batches = [mask_rows(held_out[i : i + 64], specials, args.vocab, generator) for i in range(0, 256, 64)]
    train = encode_sst2(sp, read_sst2(DATA / "classification" / "sst2" / "train.tsv"), specials, 66)
    dev = encode_sst2(sp, read_sst2(DATA / "classification" / "sst2" / "glue_dev.tsv"), specials, 66)
    majority = max(sum(label for _, label in dev), len(dev) - sum(label for _, label in dev)) / len(dev)
    log(f"data: {rows.shape[0]:,} rows x {args.seq_len} = {rows.numel():,} pretraining tokens; SST-2 "
        f"{len(train):,} train / {len(dev)} dev; setup {time.perf_counter() - began:.0f} s")

    def config_for(name: str) -> FNetConfig:
        return FNetConfig(
            vocab_size=args.vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
            intermediate_size=args.intermediate, num_attention_heads=args.heads, max_position_embeddings=args.seq_len,
            type_vocab_size=2, pad_token_id=specials["pad"], bos_token_id=None, eos_token_id=None, num_labels=2,
            **MODELS[name],
        )

    results = {}
    previous = Path(args.output) / "results.json"
    if args.throughput_only:
        old = json.loads(previous.read_text())
        speeds = interleaved_throughput({n: config_for(n) for n in old["results"]}, rows, args, specials,
                                        args.throughput_steps)
        for name, speed in speeds.items():
            old["results"][name]["interleaved_tokens_per_s"] = speed
            log(f"{name}: {speed:,.0f} tok/s interleaved")
        old["meta"]["interleaved_command"] = "python " + " ".join(
            shlex.quote(a) for a in [os.path.relpath(__file__, REPO)] + sys.argv[1:])
        old["meta"]["interleaved_load_average"] = [round(x, 1) for x in os.getloadavg()]
        write_reports(old["results"], old["meta"], Path(args.output))
        return 0
    if args.merge and previous.is_file():
        old = json.loads(previous.read_text())
        results = {k: v for k, v in old["results"].items() if k not in names}
    for name in names:
        config = config_for(name)
        log(f"{name}: {config.layer_mixers()}")
        pre = pretrain(config, rows, eval_batches, args, specials, log)
        model = pre.pop("model")
        fine = finetune(config, model, train, dev, args, specials["pad"], pre["pretrain_s"], log)
        results[name] = dict(mixer=MODELS[name]["token_mixer"], layer_mixers=config.layer_mixers(),
                             params=sum(p.numel() for p in model.fnet.parameters()), **pre, **fine)
        log(f"{name}: {pre['pretrain_tokens_per_s']:,.0f} tok/s, MLM acc {pre['mlm_accuracy']:.4f}, "
            f"SST-2 {fine['sst2_accuracy']:.4f}")
    if args.merge and previous.is_file():
        names = [n for n in MODELS if n in results]  # the table keeps the standard order
        results = {n: results[n] for n in names}
    meta = dict(
        command="python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO)] + sys.argv[1:]),
        machine=f"{cpu_name()}, {os.cpu_count()} cores, {args.threads} torch threads, torch {torch.__version__}, "
                f"Python {platform.python_version()}; load average at start {load_at_start}, at end "
                f"{tuple(round(x, 1) for x in os.getloadavg())} (the machine was shared with other jobs)",
        size=f"hidden {args.hidden}, {args.layers} layers, intermediate {args.intermediate}, {args.heads} heads",
        vocab_size=args.vocab, pretrain_tokens=int(rows.numel()), seq_len=args.seq_len, batch_size=args.batch_size,
        finetune_steps=args.finetune_steps, sst2_majority=majority, total_minutes=(time.perf_counter() - began) / 60,
        args=vars(args),
    )
    if args.merge and previous.is_file():  # both runs' commands, in order
        meta["command"] = f"{old['meta']['command']}` then `{meta['command']}"
        meta["total_minutes"] += old["meta"]["total_minutes"]
    write_reports(results, meta, Path(args.output))
    log(f"wrote {args.output} in {meta['total_minutes']:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
