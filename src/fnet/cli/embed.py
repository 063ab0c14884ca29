"""``fnet embed``: one sentence embedding (a float32 row of a .npy file) per line of a text file.

Rows are in input order; blank lines get the embedding of an empty text ([CLS] [SEP]); the record
beside the output (FILE.json) lists the blank and the truncated rows (0-based) and the pooling used.
"""

from __future__ import annotations

import argparse
import json
import sys



def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "embed", help="sentence embeddings of every line of a file -> .npy (mean/cls pooling, normalisation)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from fnet.apps.embed import EmbedConfig
    from fnet.cli import add_config_arguments

    add_config_arguments(parser, EmbedConfig)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fnet.apps.embed import EmbedConfig, embed_file
    from fnet.cli import config_from

    record = embed_file(config_from(args, EmbedConfig))
    if not record:  # under torchrun rank 0 writes and reports
        return 0
    notes = []
    if record["blank_rows"]:
        notes.append(f"{len(record['blank_rows'])} blank line(s) embedded as an empty text")
    if record["truncated_rows"]:
        notes.append(f"{len(record['truncated_rows'])} line(s) truncated to {record['max_length']} tokens")
    for note in notes:
        print(f"fnet embed: {note} (rows listed in {record['output'][:-4]}.json)", file=sys.stderr)
    print(json.dumps({k: record[k] for k in ("output", "rows", "dim", "pooling", "normalize", "max_length",
                                             "quantize", "texts_per_s")}))
    return 0
