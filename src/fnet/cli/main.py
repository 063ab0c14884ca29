"""The ``fnet`` command: a thin dispatcher over one module per subcommand.

Each subcommand lives in ``fnet.cli.<module>`` and exposes ``register(subparsers)``, which adds
its parser and sets ``func`` (called with the parsed namespace, returning an exit code).
Modules are imported only when the command line is parsed, so ``fnet --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand modules, in the order `fnet --help` lists them
SUBCOMMAND_MODULES = [
    "fnet.cli.demo",
    "fnet.cli.tokenizer",
    "fnet.cli.pretrain",
    "fnet.cli.finetune",
    "fnet.cli.evaluate",
    "fnet.cli.predict",
    "fnet.cli.embed",
    "fnet.cli.distill",
    "fnet.cli.bench",
    "fnet.cli.export",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fnet",
        description="Build, pretrain, fine-tune, compare and export FNet encoders.",
    )
    from fnet import __version__

    parser.add_argument("--version", action="version", version=f"fnet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # subcommand not written yet
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from fnet.runtime import configure_allocator

    # as the `fnet` command (argv None): re-exec once with glibc's huge-page tunable; in-process
    # calls (tests, scripts) only get the run-time part (runtime.py)
    configure_allocator(reexec_argv=sys.argv if argv is None else None)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as err:
        # user errors: one clear line, no traceback
        print(f"fnet {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
