"""Depfiles: the files a compiler says it read, in Makefile syntax (gcc -MD -MF x.d).

A task declared with `depfile="x.d"` writes it as it runs; once the task has
succeeded, the files it lists become the task's discovered inputs (recorded as
traced inputs, see tracing.py), so a C or Fortran code needs no hand-kept header
list and no `gcc -MM` at every load (ninja's `deps = gcc`). The syntax is the one
gcc and clang write: `target: dep dep \\` continued lines, "\\ " and "\\#" escapes,
"$$" for "$"; several rules (-MP adds an empty one per header) are read alike. No
maintained Python package reads it; ninja's own reader is C.
"""

from __future__ import annotations

import os
import re

from .access import Scope

_RULE = re.compile(r"(?<!\\):(?=\s|$)")  # the colon ending a rule's targets


def parse(text: str) -> list[str]:
    """The prerequisites of every rule in `text`, each once, in order."""
    joined = re.sub(r"\\\r?\n", " ", text)
    found: dict[str, None] = {}
    for line in joined.splitlines():
        if line.lstrip().startswith("#"):
            continue
        colon = _RULE.search(line)
        if colon is None:
            continue
        for word in _words(line[colon.end() :]):
            found[word] = None
    return list(found)


def _words(text: str) -> list[str]:
    """Whitespace-separated words; "\\ " and "\\#" are a space and a hash inside a
    word, "$$" a dollar."""
    words: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in " #\\":
            current.append(text[i + 1])
            i += 2
            continue
        if c == "$" and text[i + 1 : i + 2] == "$":
            current.append("$")
            i += 2
            continue
        if c.isspace():
            if current:
                words.append("".join(current))
                current = []
        elif c == "#" and not current:
            break  # a comment
        else:
            current.append(c)
        i += 1
    if current:
        words.append("".join(current))
    return words


def listed(path: str, scope: Scope) -> list[str]:
    """The files depfile `path` lists, as the project names them (system headers and
    other files outside it that the scope ignores are left out); [] when the
    task wrote none."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except (FileNotFoundError, IsADirectoryError):
        return []
    found = []
    for word in parse(text):
        name = scope.view(os.path.normpath(os.path.join(scope.root, word)))
        if name is not None:
            found.append(name)
    return found
