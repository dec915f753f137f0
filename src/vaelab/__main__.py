"""``python -m vaelab``: the same command line as the ``vaelab`` script."""

import sys

from .cli import main

sys.exit(main())
