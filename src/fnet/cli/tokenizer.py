"""``fnet tokenizer``: SentencePiece tokenizers for FNet.

``fnet tokenizer train --input FILE... --vocab-size N --output DIR`` trains a SentencePiece model with
FNet's fixed special ids (``<unk>`` 0, ``<s>`` 1, ``</s>`` 2, ``<pad>`` 3, ``[CLS]`` 4, ``[SEP]`` 5,
``[MASK]`` 6) and saves ``spiece.model``, ``tokenizer_config.json`` and ``special_tokens_map.json``
in DIR. DIR must be new or empty (a model folder, or any folder holding files, is refused unless
``--overwrite``, which replaces it whole once training succeeded: :func:`fnet.run_folder.claim`).
Input files must be UTF-8 (as for ``fnet pretrain``).
"""

from __future__ import annotations

import argparse


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _coverage(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tokenizer",
        help="train SentencePiece tokenizers",
        description="Train SentencePiece tokenizers with FNet's special tokens.",
    )
    commands = parser.add_subparsers(dest="tokenizer_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: _no_subcommand(parser))

    train = commands.add_parser(
        "train",
        help="train a tokenizer on text files",
        description=(
            "Train a SentencePiece model on text files (one sentence or paragraph per line) and save it "
            "as an FNet tokenizer. Ids: <unk> 0, <s> 1, </s> 2, <pad> 3, [CLS] 4, [SEP] 5, [MASK] 6."
        ),
    )
    train.add_argument("--input", nargs="+", required=True, metavar="FILE", help="text files to train on")
    train.add_argument("--vocab-size", type=_positive_int, required=True, metavar="N", help="number of pieces")
    train.add_argument("--output", required=True, metavar="DIR", help="new or empty folder to save the tokenizer in")
    train.add_argument("--overwrite", action="store_true",
                       help="replace what --output holds (the old folder stays intact until training succeeded)")
    train.add_argument("--model-type", choices=["unigram", "bpe"], default="unigram",
                       help="SentencePiece algorithm (default: unigram)")
    train.add_argument("--character-coverage", type=_coverage, default=0.9995, metavar="F",
                       help="share of characters the vocabulary covers: 1.0 for English, 0.9995 (default) "
                            "for Chinese/Japanese")
    train.add_argument("--lowercase", action="store_true", help="lower-case text when training and encoding")
    train.add_argument("--input-sentence-size", type=_positive_int, default=1_000_000, metavar="N",
                       help="sample at most N sentences from the input (default: 1000000)")
    train.set_defaults(func=_train)


def _no_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _train(args: argparse.Namespace) -> int:
    from fnet import run_folder
    from fnet.tokenization import FNetTokenizer

    with run_folder.claim(args.output, "tokenizer train", overwrite=args.overwrite) as out:
        tokenizer = FNetTokenizer.train(
            args.input,
            vocab_size=args.vocab_size,
            model_type=args.model_type,
            character_coverage=args.character_coverage,
            input_sentence_size=args.input_sentence_size,
            do_lower_case=args.lowercase,
        )
        tokenizer.save_pretrained(out.path)
        out.record(tokenizer=tokenizer.fingerprint())
    print(f"saved tokenizer to {args.output} (vocab size {tokenizer.vocab_size})")
    return 0
