"""Executors run jobs somewhere (local processes now, Dask later) behind one interface.

The interface is `executors.base` (Job, Completion, Executor). It is not imported
with the package: a no-op build imports `executors.orphans` alone, and `base`
would bring dataclasses with it (7 ms of every start).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Completion", "Executor", "Job"]


def __getattr__(name: str) -> Any:
    """`from pytaskmake.executors import Job` still works, importing base then."""
    if name in __all__:
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
