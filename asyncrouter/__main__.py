"""``python -m asyncrouter``: the ``asyncrouter`` command line (see :mod:`asyncrouter.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
