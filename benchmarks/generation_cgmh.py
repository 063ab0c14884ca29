"""CGMH keyword-constrained generation with a pretrained fnet MLM: sentences, constraints, fluency.

Keyword sets are drawn (seeded) from the held-out text the model did not train on: for each set, a
held-out sentence of 8-30 words is picked and 1-3 of its words (alphabetic, >= 4 letters, in their
order) become the keywords. For every set ``--chains`` chains run with ``--settings``:

* ``defaults``: exactly what ``fnet generate --model M --keywords ...`` does (its GenerateConfig
  defaults: the length prior from the model's pretraining data, grow-then-polish moves, steps scaled
  with the target length);
* ``before``: the defaults before the length prior (100 steps, equal move probabilities, CGMH's PLL
  sum, no length bonus, no annealing), the settings the issue's fragments came from;
* ``tuned``: the hand-tuned settings of the first study (``--length-bonus``, ``--final-temperature``,
  ``--min-length``, ``--steps``, no length prior).

Measured, per sample:

* sentence: every keyword present as a whole word, in order, and at least 3 more words (a word: a
  whitespace-separated token with a letter or digit) than keywords;
* constraint satisfaction: every keyword present as a whole word, in order; longer than the keywords;
* the model's own PLL per piece of the sample, against the same pieces in a random order (keyword
  pieces too; the *fluency gain over shuffles* is the difference of the means), and against the
  keywords with random filler (as many filler pieces as the sample has, drawn uniformly from the
  word-start pieces the sampler may use, inserted at random gaps);
* acceptance rate (accepted / proposed moves).

    python benchmarks/generation_cgmh.py --model runs/mini --heldout runs/data/eval.txt --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "generation"


def keyword_sets(heldout: Path, count: int, seed: int, vocab: set[str]) -> list[list[str]]:
    rng = random.Random(seed)
    sentences = [s for line in heldout.read_text(encoding="utf-8").splitlines()
                 for s in re.split(r"(?<=[.!?])\s+", line) if 8 <= len(s.split()) <= 30]
    out = []
    while len(out) < count:
        words = [w for w in re.findall(r"[A-Za-z]+", rng.choice(sentences)) if len(w) >= 4 and w.lower() in vocab]
        if len(words) < 1:
            continue
        k = rng.randint(1, min(3, len(words)))
        picked = sorted(rng.sample(range(len(words)), k))
        out.append([words[i] for i in picked])
    return out


def in_order(text: str, keywords: list[str]) -> bool:
    remaining = iter(text.split())
    return all(any(word == keyword for word in remaining) for keyword in keywords)


def words(text: str) -> int:
    """Whitespace-separated tokens with a letter or digit (a lone ',' is not a word)."""
    return sum(any(ch.isalnum() for ch in token) for token in text.split())


def is_sentence(text: str, keywords: list[str]) -> bool:
    """Every keyword in order, and at least three more words than keywords."""
    return in_order(text, keywords) and words(text) >= len(keywords) + 3


def sample_chains(args, model, tokenizer, keywords: list[str], seed: int) -> list[dict]:
    from fnet.apps.generate import GenerateConfig, generate_from_config
    from fnet.generation import generate

    if args.settings == "defaults":  # fnet generate's own path: loads the model folder and its length prior
        return generate_from_config(GenerateConfig(model=args.model, keywords=keywords, num_samples=args.chains,
                                                   seed=seed, threads=args.threads))
    if args.settings == "before":
        return generate(model, tokenizer, keywords, num_samples=args.chains, steps=100, seed=seed,
                        final_temperature=None, length_prior=None, move_probabilities=(1 / 3, 1 / 3, 1 / 3))
    return generate(model, tokenizer, keywords, num_samples=args.chains, steps=args.steps, seed=seed,
                    temperature=1.0, final_temperature=args.final_temperature, length_bonus=args.length_bonus,
                    min_length=args.min_length, length_prior=None, move_probabilities=(1 / 3, 1 / 3, 1 / 3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--heldout", type=Path, required=True)
    parser.add_argument("--settings", choices=("defaults", "before", "tuned"), default="defaults")
    parser.add_argument("--sets", type=int, default=12)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--steps", type=int, default=150, help="tuned only")
    parser.add_argument("--length-bonus", type=float, default=4.0, help="tuned only")
    parser.add_argument("--min-length", type=int, default=None, help="tuned only")
    parser.add_argument("--final-temperature", type=float, default=0.2, help="tuned only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from fnet.apps.generate import GenerateConfig, resolve_length_prior
    from fnet.generation import MaskedLMScorer, load_generator

    torch.set_num_threads(args.threads)
    model, tokenizer = load_generator(args.model)
    scorer = MaskedLMScorer(model, tokenizer)
    pieces = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    vocab = {p.lstrip("\u2581").lower() for p in pieces if p.startswith("\u2581")}
    filler = [i for i, p in enumerate(pieces) if p.startswith("\u2581") and not bool(scorer.banned[i])]
    sets = keyword_sets(args.heldout, args.sets, args.seed, vocab)
    rng = random.Random(args.seed + 1)
    rows, started = [], time.time()
    for n, keywords in enumerate(sets):
        samples = sample_chains(args, model, tokenizer, keywords, args.seed + 100 * n)
        for sample in samples:
            ids = tokenizer.encode(sample["text"], add_special_tokens=False)
            shuffled = ids[:]
            rng.shuffle(shuffled)
            kw_ids = [i for w in keywords for i in tokenizer.encode(w, add_special_tokens=False)]
            random_fill = kw_ids[:]
            for _ in range(max(len(ids) - len(kw_ids), 1)):
                random_fill.insert(rng.randrange(len(random_fill) + 1), rng.choice(filler))
            rows.append({
                "keywords": keywords, **sample,
                "satisfied": in_order(sample["text"], keywords) and len(sample["text"].split()) > len(keywords),
                "sentence": is_sentence(sample["text"], keywords), "in_order": in_order(sample["text"], keywords),
                "words": words(sample["text"]),
                "pieces": len(ids),
                "pll_sample": scorer.pll(ids) / len(ids),
                "pll_shuffled": scorer.pll(shuffled) / len(shuffled),
                "pll_random_filler": scorer.pll(random_fill) / len(random_fill),
            })
        print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    seconds = time.time() - started
    mean = lambda key: sum(float(r[key]) for r in rows) / len(rows)  # noqa: E731
    better = lambda key: sum(r["pll_sample"] > r[key] for r in rows) / len(rows)  # noqa: E731
    summary = {
        "settings": args.settings, "samples": len(rows), "keyword_sets": len(sets),
        "sentences": mean("sentence"), "keywords_in_order": mean("in_order"), "satisfied": mean("satisfied"),
        "fluency_gain_over_shuffled": mean("pll_sample") - mean("pll_shuffled"),
        "pll_per_piece": {"samples": mean("pll_sample"), "same_pieces_shuffled": mean("pll_shuffled"),
                          "keywords_random_filler": mean("pll_random_filler")},
        "sample_beats_shuffled": better("pll_shuffled"), "sample_beats_random_filler": better("pll_random_filler"),
        "acceptance_rate": sum(r["accepted"] for r in rows) / sum(r["proposed"] for r in rows),
        "mean_pieces": mean("pieces"), "mean_words": mean("words"), "seconds": seconds,
        "seconds_per_chain": seconds / len(rows),
    }
    if args.settings == "defaults":
        prior = resolve_length_prior(GenerateConfig(model=args.model, keywords=["x"]), tokenizer)
        summary["length_prior"] = prior.source if prior else None
        summary["length_prior_median_pieces"] = prior.median(1, 32) if prior else None
    load = os.getloadavg()
    cpu = next((line.split(":", 1)[1].strip() for line in subprocess.run(
        ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name")), "?")
    summary["machine"] = f"{cpu}, {os.cpu_count()} cores shared with other jobs, {args.threads} thread(s)"
    summary["load_average_end"] = [round(x, 2) for x in load]
    summary["command"] = "python benchmarks/generation_cgmh.py " + shlex.join(sys.argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "samples.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
