"""The ``fnet`` command: one thin module per subcommand (see ``main.py``)."""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import Iterator


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
