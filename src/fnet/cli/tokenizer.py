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
from dataclasses import dataclass

from fnet.options import option, require, require_at_least


@dataclass
class TokenizerTrainConfig:
    """`fnet tokenizer train`: a SentencePiece model with FNet's special ids, saved as an FNet tokenizer."""

    input: list[str] | None = option(None, "text files to train on (required)", metavar="FILE")
    vocab_size: int | None = option(None, "number of pieces (required)", metavar="N")
    output: str | None = option(None, "new or empty folder to save the tokenizer in (required)", metavar="DIR")
    overwrite: bool = option(False, "replace what --output holds (the old folder stays intact until training "
                                    "succeeded)")
    model_type: str = option("unigram", "SentencePiece algorithm", choices=("unigram", "bpe"))
    character_coverage: float = option(0.9995, "share of characters the vocabulary covers: 1.0 for English, 0.9995 "
                                               "for Chinese/Japanese", metavar="F")
    lowercase: bool = option(False, "lower-case text when training and encoding")
    input_sentence_size: int = option(1_000_000, "sample at most N sentences from the input", metavar="N")

    def validate(self) -> None:
        require(self, "input", "vocab_size", "output")
        require_at_least(self, 1, "vocab_size", "input_sentence_size")
        if not 0.0 < self.character_coverage <= 1.0:
            raise ValueError(f"--character-coverage must be in (0, 1], got {self.character_coverage}")


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
    from fnet.cli import add_config_arguments

    add_config_arguments(train, TokenizerTrainConfig)
    train.set_defaults(func=_train)


def _no_subcommand(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _train(args: argparse.Namespace) -> int:
    from fnet import run_folder
    from fnet.cli import config_from
    from fnet.tokenization import FNetTokenizer

    args = config_from(args, TokenizerTrainConfig)
    args.validate()
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
