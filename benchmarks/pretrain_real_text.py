"""Proof on real text: pretrain fnet-mini on ../shared/data/corpus/en for a fixed wall-clock budget.

Steps (each a subcommand; README.md in benchmarks/results/pretrain_en/ lists the exact commands):

* ``prepare RUN_DIR``: hold out the last 2% of every corpus file (cut at a document boundary where the
  file has blank lines) as ``RUN_DIR/data/eval.txt``, write the rest as ``RUN_DIR/data/train-*.txt``,
  and train an 8,000-piece tokenizer on the training part (one sentence per line, so the one-line
  speeches of sotu.txt reach SentencePiece too) into ``RUN_DIR/tokenizer``.
* ``plot RUN_DIR OUT_DIR``: copy ``metrics.jsonl`` and draw ``curve.png`` (loss, MLM/NSP accuracy,
  tokens/s against steps).

The training itself is the ``fnet pretrain`` command.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "corpus" / "en"
HOLDOUT = 0.02


def prepare(run_dir: Path, corpus: Path, vocab_size: int) -> None:
    from fnet.data.pretraining import iter_documents
    from fnet.tokenization import FNetTokenizer

    data = run_dir / "data"
    data.mkdir(parents=True, exist_ok=True)
    eval_parts, train_files = [], []
    for path in sorted(corpus.glob("*.txt")):
        lines = path.read_text(encoding="utf-8").splitlines()
        cut = int(len(lines) * (1 - HOLDOUT))
        if any(not line.strip() for line in lines):  # documents: move the cut to a blank line
            while cut < len(lines) and lines[cut].strip():
                cut += 1
        train, held = lines[:cut], lines[cut:]
        target = data / f"train-{path.stem}.txt"
        target.write_text("\n".join(train) + "\n", encoding="utf-8")
        train_files.append(target)
        eval_parts.append("\n".join(line for line in held).strip())
    (data / "eval.txt").write_text("\n\n".join(p for p in eval_parts if p) + "\n", encoding="utf-8")
    sentences = data / "tokenizer-text.txt"
    with open(sentences, "w", encoding="utf-8") as handle:
        for path in train_files:
            for document in iter_documents(path):
                handle.write("\n".join(document) + "\n")
    FNetTokenizer.train([sentences], vocab_size=vocab_size, output_dir=run_dir / "tokenizer",
                        character_coverage=1.0, num_threads=2, seed=0)
    print(json.dumps({"train": [str(p) for p in train_files], "eval": str(data / "eval.txt"),
                      "tokenizer": str(run_dir / "tokenizer")}, indent=2))


def plot(run_dir: Path, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run_dir / "metrics.jsonl", out_dir / "metrics.jsonl")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    train = [r for r in rows if "loss" in r]
    evals = [r for r in rows if "eval_loss" in r]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    axes[0].plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss (MLM + NSP)", lw=1)
    axes[0].plot([r["step"] for r in evals], [r["eval_loss"] for r in evals], "o-", label="eval loss")
    axes[0].set_xlabel("step"), axes[0].set_ylabel("loss"), axes[0].legend(), axes[0].grid(alpha=0.3)
    axes[1].plot([r["step"] for r in train], [r["mlm_acc"] for r in train], label="train MLM acc", lw=1, alpha=0.6)
    axes[1].plot([r["step"] for r in train], [r["nsp_acc"] for r in train], label="train NSP acc", lw=1, alpha=0.6)
    axes[1].plot([r["step"] for r in evals], [r["eval_mlm_acc"] for r in evals], "o-", label="eval MLM acc")
    axes[1].plot([r["step"] for r in evals], [r["eval_nsp_acc"] for r in evals], "s-", label="eval NSP acc")
    axes[1].set_xlabel("step"), axes[1].set_ylabel("accuracy"), axes[1].legend(), axes[1].grid(alpha=0.3)
    axes[2].plot([r["step"] for r in train], [r["tokens_per_s"] for r in train], lw=1)
    axes[2].set_xlabel("step"), axes[2].set_ylabel("tokens/s (non-pad)"), axes[2].grid(alpha=0.3)
    fig.suptitle("fnet-mini pretraining on corpus/en (2-core CPU)")
    fig.tight_layout()
    fig.savefig(out_dir / "curve.png", dpi=110)
    print(f"wrote {out_dir / 'curve.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="split the corpus and train the tokenizer")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--corpus", type=Path, default=CORPUS)
    p.add_argument("--vocab-size", type=int, default=8000)
    q = sub.add_parser("plot", help="copy metrics.jsonl and draw curve.png")
    q.add_argument("run_dir", type=Path)
    q.add_argument("out_dir", type=Path, nargs="?", default=Path(__file__).parent / "results" / "pretrain_en")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.run_dir, args.corpus, args.vocab_size)
    else:
        plot(args.run_dir, args.out_dir)


if __name__ == "__main__":
    main()
