"""The ``fnet`` command: one thin module per subcommand (see ``main.py``). Every subcommand's flags
come from its typed config dataclass plus ``--config RUN.toml|json`` (:func:`add_config_arguments`,
:func:`config_from`); building the parser imports no torch."""

from __future__ import annotations

import argparse
import logging
import sys
from contextlib import contextmanager
from typing import Any, Iterator


@contextmanager
def library_log(logger_name: str, prefix: str) -> Iterator[None]:
    """Show a library module's INFO lines on stderr as ``prefix: message`` while the command runs."""
    from fnet.runtime import log_level

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{prefix}: %(message)s"))
    with log_level(logger_name, logging.INFO) as logger:
        logger.addHandler(handler)
        try:
            yield
        finally:
            logger.removeHandler(handler)


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, **kwargs: Any) -> None:
    """``--config RUN`` plus one flag per field of ``cls``."""
    from fnet.options import add_arguments

    parser.add_argument("--config", metavar="RUN.toml|json",
                        help="options from a TOML or JSON file whose keys are the flag names (reader options "
                        "in a [reader] table); flags given here win")
    add_arguments(parser, cls, **kwargs)


def config_from(args: argparse.Namespace, cls: type) -> Any:
    """``cls`` from its defaults <- the ``--config`` file <- the flags given."""
    from fnet.options import build, read_options_file

    return build(cls, args, read_options_file(args.config, cls) if args.config else None)
