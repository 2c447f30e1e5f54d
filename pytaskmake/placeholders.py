"""`{inputs}` and `{outputs}` in a task's command, so it need not repeat its paths.

snakemake's `{input}`, ninja's `$in`/`$out`. Only these placeholders are expanded
(`{inputs}`, `{inputs[0]}`, `{inputs.NAME}` or `{inputs[NAME]}` when the paths were
given as a dict, the same for outputs); every other brace (`awk '{print $1}'`,
`${HOME}`) is left as written. In a shell command each path is shell-quoted; in an
argv list an item that is exactly `{inputs}` becomes one item per path.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Mapping, Sequence


@functools.cache
def _pattern() -> re.Pattern[str]:
    # compiled on first use: ~1 ms of every start, and most commands hold no brace
    return re.compile(r"\{(inputs|outputs)(?:\[([^\]\[{}]+)\]|\.([A-Za-z_]\w*))?\}")


class PlaceholderError(ValueError):
    """A placeholder names an index or a name the task's paths do not have."""


def has_placeholder(text: str) -> bool:
    return "{" in text and _pattern().search(text) is not None


def expand_command(
    command: str, paths: dict[str, Sequence[str]], names: dict[str, Mapping[str, str]]
) -> str:
    """A shell command with its placeholders replaced by shell-quoted paths."""
    return _pattern().sub(lambda m: " ".join(map(shlex.quote, _chosen(m, paths, names))), command)


def expand_argv(
    argv: Sequence[object], paths: dict[str, Sequence[str]], names: dict[str, Mapping[str, str]]
) -> list[object]:
    """An argv list with its placeholders replaced (a whole `{inputs}` item: one item
    per path); items are not quoted, there is no shell."""
    found: list[object] = []
    for item in argv:
        if not isinstance(item, str) or "{" not in item:
            found.append(item)
            continue
        whole = _pattern().fullmatch(item)
        if whole is not None:
            found.extend(_chosen(whole, paths, names))
        else:
            found.append(_pattern().sub(lambda m: " ".join(_chosen(m, paths, names)), item))
    return found


def _chosen(
    match: re.Match[str], paths: dict[str, Sequence[str]], names: dict[str, Mapping[str, str]]
) -> list[str]:
    which, index, attribute = match.group(1), match.group(2), match.group(3)
    key = attribute if attribute is not None else index
    if key is None:
        return list(paths[which])
    if key.strip().lstrip("-").isdigit():
        i = int(key)
        if -len(paths[which]) <= i < len(paths[which]):
            return [paths[which][i]]
        raise PlaceholderError(f"{match.group(0)}: it has {len(paths[which])} {which}")
    if key in names[which]:
        return [names[which][key]]
    known = ", ".join(names[which]) or f"none: give {which} as a dict to name them"
    raise PlaceholderError(f"{match.group(0)}: no {which} named {key!r} ({known})")
