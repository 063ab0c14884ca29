"""`fnet generate`: sentences containing given keywords, sampled by CGMH with a pretrained MLM."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    from fnet.cli import add_config_arguments
    from fnet.apps.generate import GenerateConfig

    parser = subparsers.add_parser(
        "generate", help="write sentences that contain given keywords (CGMH with the model's MLM)",
        description="Metropolis-Hastings over insert/delete/replace edits, proposed and scored (pseudo-log-"
        "likelihood) by the model's masked-LM head; the keywords are never deleted, replaced or reordered. "
        'One JSON object per sample: {"text", "score" (PLL per piece, nats), "accepted", "proposed", '
        '"target_length" (pieces)}.',
    )
    add_config_arguments(parser, GenerateConfig)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fnet import run_folder
    from fnet.cli import config_from
    from fnet.apps.generate import GenerateConfig, generate_from_config

    config = config_from(args, GenerateConfig)
    if not config.output:
        sys.stdout.write(_jsonl(generate_from_config(config)))
        return 0
    with run_folder.claim_file(config.output, overwrite=config.overwrite) as tmp:
        samples = generate_from_config(config)
        tmp.write_text(_jsonl(samples), encoding="utf-8")
    print(f"{len(samples)} samples written to {config.output}", file=sys.stderr)
    return 0


def _jsonl(samples: list[dict]) -> str:
    return "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples)
