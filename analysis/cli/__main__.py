"""``python -m analysis.cli``: the ``dmd`` command without the installed entry point."""

import sys

from analysis.cli import main

sys.exit(main())
