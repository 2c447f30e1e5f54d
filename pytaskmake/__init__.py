"""pytaskmake: a make-like, file-target build tool for parameter sweeps.

The public API is what a Taskfile.py uses: `task()` declares a task and returns a
`Task`, whose `depends_on()` adds ordering that files do not express.
"""

__version__ = "0.1.0"

from .taskfile import Task, task  # noqa: E402

__all__ = ["Task", "task", "__version__"]
