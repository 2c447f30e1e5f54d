"""`python -m pytaskmake`: the same as the `pytaskmake` console script."""

import sys

from .cli import main

sys.exit(main())
