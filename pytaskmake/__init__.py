"""pytaskmake: a make-like, file-target build tool for parameter sweeps.

The public API is what a Taskfile.py uses: `task()` declares a task and returns a
`Task`, whose `depends_on()` adds ordering that files do not express; `param()`
reads NAME=value from the command line.
"""

__version__ = "0.1.0"

from .params import param  # noqa: E402
from .taskfile import Task, task  # noqa: E402

__all__ = ["Task", "param", "task", "__version__"]
