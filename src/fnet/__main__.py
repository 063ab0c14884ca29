"""``python -m fnet``: the ``fnet`` command."""

import sys

from fnet.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
