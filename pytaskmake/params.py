"""Parameters from the command line: `pytaskmake seeds=20 topo=mesh` (make's
VAR=value, snakemake's --config), read by the Taskfile with `param()`.

A parameter is an ordinary Python value by the time a task uses it, so a command
built from it changes when it changes, and the task reruns: nothing else to track.
A VAR=value the Taskfile never asks for is a usage error naming those it asks for.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .errors import TaskfileError, UsageError

T = TypeVar("T")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*=")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def split_assignments(words: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Targets and NAME=value parameters, from the command line's positional words."""
    targets: list[str] = []
    given: dict[str, str] = {}
    for word in words:
        if _ASSIGNMENT.match(word):
            name, _, value = word.partition("=")
            given[name] = value
        else:
            targets.append(word)
    return targets, given


def param(
    name: str,
    default: Any = None,
    type: Callable[[str], T] | None = None,  # noqa: A002 (argparse's name for it)
) -> Any:
    """The value of NAME=value from the command line, converted by `type` (default:
    the type of `default`, else str); `default` when not given.

    Only while a Taskfile loads: `seeds = param("seeds", 10)` at its top.
    """
    from .taskfile import _caller_location, _loading, _split_where

    registry = _loading.get()
    if registry is None:
        raise RuntimeError("param() is only available while pytaskmake loads a Taskfile")
    where = _caller_location(sys._getframe(1))
    registry.asked.setdefault(name, where)
    if name not in registry.given:
        return default
    text = registry.given[name]
    convert = type or _converter(default)
    try:
        return convert(text)
    except (TypeError, ValueError) as exc:
        kind = getattr(convert, "__name__", "the given type")
        raise TaskfileError(
            f"parameter {name}={text}: not a valid {kind} ({exc})", *_split_where(where)
        ) from None


def _converter(default: object) -> Callable[[str], Any]:
    if isinstance(default, bool):
        return _boolean
    if default is None or isinstance(default, str):
        return str
    return type(default)


def _boolean(text: str) -> bool:  # (named "bool" in messages)
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("use true or false")


_boolean.__name__ = "bool"


def check_all_asked(given: dict[str, str], asked: dict[str, str], taskfile: str) -> None:
    """UsageError for a NAME=value the Taskfile did not ask for (a typo, most often)."""
    unknown = [name for name in given if name not in asked]
    if unknown:
        wanted = ", ".join(sorted(asked)) or "none"
        raise UsageError(
            f"unknown parameter {unknown[0]}={given[unknown[0]]}: {taskfile} asks for: {wanted}"
        )
