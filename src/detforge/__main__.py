"""``python -m detforge`` (and ``torchrun -m detforge``) run the CLI."""

from __future__ import annotations

import sys

from detforge.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
