"""Modules imported on their first use, so that building the command line (``fnet --help``, every
subcommand's flags) imports neither numpy nor torch: ``from fnet.lazy import numpy as np`` in a
module whose import the CLI needs (the task families, whose reader options become flags)."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__all__ = ["LazyModule", "numpy"]


class LazyModule:
    """Stands for a module until an attribute is read; then imports it (once) and forwards."""

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}{' (imported)' if self._module is not None else ''}>"


numpy = LazyModule("numpy")
