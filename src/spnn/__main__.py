"""``python -m spnn``: the ``spnn`` command without an installed entry point (e.g. src/ on PYTHONPATH)."""

import sys

from spnn.cli.main import main

sys.exit(main())
