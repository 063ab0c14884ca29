"""Batch-encoding throughput: fnet's FNetTokenizer vs transformers' FNetTokenizer on one spiece.model.

Both tokenizers use the same SentencePiece model (by default the shared 1k English test model), the
same sentences (SST-2 train, 60k), the same options (cased, accents kept, [CLS] A [SEP], token types,
attention mask) and 2 threads.  transformers 5's FNetTokenizer is the Rust `tokenizers` backend (what
used to be FNetTokenizerFast); it is built offline from the model's pieces, scores and normalisation
map (read from the model proto with a small parser, so protobuf is not needed).  Runs are interleaved
(the order alternates each repeat) and medians are reported.

    python benchmarks/tokenizer_speed.py [--repeats 5] [--threads 2] [--batch-size 1000]

Writes benchmarks/results/tokenizer_speed.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FNET_SHARED_DATA") or ROOT.parent / "shared" / "data")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(SHARED / "tokenizers" / "sentencepiece_test_en_1k.model"))
    parser.add_argument("--data", default=str(SHARED / "classification" / "sst2" / "train.tsv"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1000, help="sentences per tokenizer call")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "tokenizer_speed"))
    return parser.parse_args()


def build_transformers(model_path: str):
    import sentencepiece as spm
    from transformers import FNetTokenizer as HFTokenizer

    from fnet.tokenization.unigram_json import precompiled_charsmap

    sp = spm.SentencePieceProcessor(model_file=model_path)
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    # special tokens the model lacks get the ids fnet gives them (appended after the pieces)
    have = {piece for piece, _ in vocab}
    vocab += [(t, 0.0) for t in ("<pad>", "[CLS]", "[SEP]", "[MASK]") if t not in have]
    charsmap = precompiled_charsmap(Path(model_path).read_bytes())
    tok = HFTokenizer(vocab=vocab, do_lower_case=False, keep_accents=True, _spm_precompiled_charsmap=charsmap)
    return tok, f"transformers {__import__('transformers').__version__} FNetTokenizer (tokenizers backend)"


def main() -> int:
    args = parse_args()
    # thread limits must be set before the tokenizers library starts its pool
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    sys.path.insert(0, str(ROOT / "src"))
    if not Path(args.model).is_file() or not Path(args.data).is_file():
        print(f"benchmark data not found ({args.model}, {args.data}); set FNET_SHARED_DATA", file=sys.stderr)
        return 2
    from fnet.tokenization import FNetTokenizer

    rows = Path(args.data).read_text(encoding="utf-8").splitlines()[1:]
    sentences = [row.split("\t")[0] for row in rows if row.strip()]
    batches = [sentences[i: i + args.batch_size] for i in range(0, len(sentences), args.batch_size)]

    ours = FNetTokenizer(args.model, num_threads=args.threads)
    theirs, theirs_name = build_transformers(args.model)
    configs = {
        # plain batch encoding: input_ids, token_type_ids, attention_mask
        "plain": dict(return_token_type_ids=True, return_attention_mask=True),
        # what QA/NER preprocessing asks for: offsets, padding to the longest row, truncation at 128
        "offsets_padded_truncated": dict(return_token_type_ids=True, return_attention_mask=True,
                                         return_offsets_mapping=True, padding=True, truncation=True, max_length=128),
    }

    def run(tok, options) -> tuple[float, int]:
        start = time.perf_counter()
        n_tokens = 0
        for batch in batches:
            enc = tok(batch, **options)
            n_tokens += sum(sum(r) for r in enc["attention_mask"])
        return time.perf_counter() - start, n_tokens

    # agreement on ids (informative: transformers is not exact on these models)
    ours_ids = [r for b in batches for r in ours(b)["input_ids"]]
    theirs_ids = [r for b in batches for r in theirs(b)["input_ids"]]
    agree = sum(a == b for a, b in zip(ours_ids, theirs_ids)) / len(ours_ids)

    load_before = os.getloadavg()
    for options in configs.values():  # warm-up
        run(ours, options), run(theirs, options)
    times = {c: {"fnet": [], "transformers": []} for c in configs}
    tokens = {c: {} for c in configs}
    for r in range(args.repeats):
        for config, options in configs.items():
            order = [("fnet", ours), ("transformers", theirs)]
            if r % 2:
                order.reverse()
            for name, tok in order:
                seconds, n_tokens = run(tok, options)
                times[config][name].append(seconds)
                tokens[config][name] = n_tokens

    def summary(config: str, name: str) -> dict:
        med = statistics.median(times[config][name])
        return {
            "median_seconds": round(med, 4),
            "all_seconds": [round(t, 4) for t in times[config][name]],
            "examples_per_second": round(len(sentences) / med, 1),
            "tokens_per_second": round(tokens[config][name] / med, 1),
            "tokens": tokens[config][name],
        }

    cpu = "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    import sentencepiece
    import tokenizers

    result = {
        "command": "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, ROOT), *sys.argv[1:]]),
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
                    "sentencepiece": sentencepiece.__version__, "tokenizers": tokenizers.__version__},
        "model": os.path.relpath(args.model, ROOT),
        "data": os.path.relpath(args.data, ROOT),
        "examples": len(sentences),
        "batch_size": args.batch_size,
        "threads": args.threads,
        "repeats": args.repeats,
        "load_average_1min_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "transformers_tokenizer": theirs_name,
        "ids_identical_share": round(agree, 4),
        "configs": {},
    }
    for config, options in configs.items():
        entry = {"options": options, "fnet": summary(config, "fnet"), "transformers": summary(config, "transformers")}
        entry["speed_ratio_fnet_over_transformers"] = round(
            entry["transformers"]["median_seconds"] / entry["fnet"]["median_seconds"], 3
        )
        result["configs"][config] = entry
    result["speed_ratio_fnet_over_transformers"] = result["configs"]["plain"]["speed_ratio_fnet_over_transformers"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    table = ""
    for config, entry in result["configs"].items():
        f, t = entry["fnet"], entry["transformers"]
        table += (
            f"| {config} | fnet FNetTokenizer | {f['median_seconds']} | {f['examples_per_second']:,.0f} | "
            f"{f['tokens_per_second']:,.0f} | **{entry['speed_ratio_fnet_over_transformers']}x** |\n"
            f"| {config} | {theirs_name} | {t['median_seconds']} | {t['examples_per_second']:,.0f} | "
            f"{t['tokens_per_second']:,.0f} | 1x |\n"
        )
    md = f"""# Tokenizer batch-encoding speed

Command: `{result['command']}`

Machine: {cpu}, {os.cpu_count()} cores, shared with other jobs while measuring (1-minute load average
{result['load_average_1min_before_after'][0]} before, {result['load_average_1min_before_after'][1]} after); Python
{platform.python_version()}, sentencepiece {sentencepiece.__version__}, tokenizers {tokenizers.__version__}.
Threads: {args.threads} for both (sentencepiece `num_threads`, `RAYON_NUM_THREADS`).

Data: {len(sentences)} SST-2 train sentences in calls of {args.batch_size}; model `{result['model']}`
(the same spiece.model for both). Configs: `plain` = `input_ids`, `token_type_ids`, `attention_mask`
with `[CLS] A [SEP]`; `offsets_padded_truncated` = also `offset_mapping`, `padding=True`,
`truncation=True, max_length=128`. {args.repeats} interleaved repeats (order alternating) after a
warm-up; medians. Tokens = non-pad tokens.

| config | tokenizer | median s | examples/s | tokens/s | speed vs transformers |
|---|---|---:|---:|---:|---:|
{table}
Speed ratio (fnet / transformers, plain batch encoding): **{result['speed_ratio_fnet_over_transformers']}x**.

Rows with identical ids: {agree:.1%}. fnet equals sentencepiece exactly; transformers' Unigram port
differs wherever the text has characters the model does not know: it gives them id 1 (`<s>`) instead
of the model's `<unk>` id 0.
"""
    out.with_suffix(".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
