"""``python -m dynamorm_async.loadtest``: see :mod:`dynamorm_async.loadtest.cli`."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
