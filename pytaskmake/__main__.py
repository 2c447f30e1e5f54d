"""`python -m pytaskmake`: the same as the `pytaskmake` console script."""

from .cli import entry

entry()
