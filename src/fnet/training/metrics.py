"""Moved to :mod:`fnet.tasks.metrics` (the task families score with them); this name still imports."""

from fnet.tasks.metrics import *  # noqa: F401,F403
from fnet.tasks.metrics import __all__  # noqa: F401
