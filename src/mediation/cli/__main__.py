"""``python -m mediation.cli``: the ``mediation`` command."""

import sys

from . import main

if __name__ == "__main__":  # the guard "spawn" workers need (they re-import the main module)
    sys.exit(main())
