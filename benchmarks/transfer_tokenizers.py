"""How well a tokenizer fits SST-2: pieces per word and unknown pieces on GLUE dev, by training text.

    python benchmarks/transfer_tokenizers.py --work runs/transfer/tok --output benchmarks/results/transfer/tokenizers.json \
        --extra lowercase-corpus+sst2=runs/transfer/tok_lc

Trains (8,000 pieces each) a cased tokenizer on ../shared/data/corpus/en only (what the earlier pretrained
fnet-mini used) and one on the SST-2 training sentences only (what the earlier from-scratch run used).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def fit(tokenizer, sentences: list[str]) -> dict:
    words = sum(len(s.split()) for s in sentences)
    ids = [tokenizer(s, add_special_tokens=False)["input_ids"] for s in sentences]
    pieces = sum(len(x) for x in ids)
    unk = sum(x.count(tokenizer.unk_token_id) for x in ids)
    return {"pieces_per_word": round(pieces / words, 3), "unk_share": round(unk / pieces, 5),
            "sentences_over_62_pieces": sum(len(x) > 62 for x in ids)}


def main() -> int:
    from fnet.tokenization import FNetTokenizer

    parser = argparse.ArgumentParser()
    parser.add_argument("--work", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--extra", nargs="*", default=[], help="NAME=DIR of tokenizers already trained")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    with open(DATA / "classification/sst2/glue_dev.tsv", encoding="utf-8") as handle:
        dev = [row[0] for row in list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]]
    with open(DATA / "classification/sst2/train.tsv", encoding="utf-8") as handle:
        train = [row[0] for row in list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]]
    (work / "sst2_train.txt").write_text("\n".join(train) + "\n", encoding="utf-8")
    corpus = [str(DATA / "corpus/en" / f) for f in ("botchan.txt", "moby_dick.txt", "sotu.txt", "wordnet_glosses.txt")]
    results = {}
    for name, files in (("cased-corpus", corpus), ("cased-sst2", [str(work / "sst2_train.txt")])):
        out = work / name
        if not (out / "spiece.model").exists():
            FNetTokenizer.train(files, vocab_size=8000, output_dir=str(out), character_coverage=1.0,
                                input_sentence_size=300000)
        results[name] = fit(FNetTokenizer.from_pretrained(str(out)), dev)
    for item in args.extra:
        name, path = item.split("=", 1)
        results[name] = fit(FNetTokenizer.from_pretrained(path), dev)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
