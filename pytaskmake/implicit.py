"""Files named on a command line are inputs, declared or not.

`python3 tool.py in.txt > out.txt` with only `in.txt` declared must still rerun
when `tool.py` is edited, and the run cache must not hand back an output made by
the old `tool.py`. So when a Taskfile loads, every word of a shell command or an
argv list that names an existing regular file inside the project (not after an
output redirection, and not any task's declared output) becomes an implicit
input of its task; so does a program found on PATH inside the project
(`bin/netsim` run as `netsim`). They are decided once, at load, from the files
that exist then, so a task's inputs do not change between builds by themselves.
`task(..., implicit_inputs=False)` opts a task out.

A sweep declares 200,000 tasks whose command words are nearly all declared
paths: the words of 4,096 tasks are split and compared with their declared paths
as sets, and only a chunk left with a word naming a project file is looked at
task by task.
"""

from __future__ import annotations

import os
import shutil
from itertools import chain
from pathlib import Path

from .action import ArgvAction
from .taskfile import Task

_REDIRECT_OUT = (">", ">>", ">|", "1>", "2>", "&>", "1>>", "2>>", "&>>")
_CHUNK = 2048  # (the words of 4,096 tasks, split and kept twice across iterations, were
# a 12.6 MiB peak of a 100,000-point no-op)


def add_implicit_inputs(tasks: list[Task], root: Path) -> None:
    """Give each task the project files its command names; the cwd is `root`."""
    finder = _Finder(root, tasks)
    for start in range(0, len(tasks), _CHUNK):
        chunk = tasks[start : start + _CHUNK]
        named = _undeclared_words(chunk)
        usual = not any([finder.file(w) for w in named])
        del named  # (before the next chunk's are made)
        if usual:
            continue  # every word is a declared path of its own task, or no file
        for t in chunk:
            words = _words(t) if t.implicit_allowed else None
            found = _implicit_of(t, words, finder) if words else ()
            if found:
                t._set_implicit(True, found)


def _undeclared_words(chunk: list[Task]) -> set[str]:
    """The words of the chunk's commands that are not a declared input of their own
    task, nor any task's output (never an implicit input). Per task: a path one task
    declares and another only names (`cat dur.txt` beside the task reading dur.txt)
    is an input of both. (The load's implicit step at 100,000 points: 145 ms; 90 ms
    when every input declared in the chunk was dropped at once, losing that input.)"""
    named: set[str] = set()
    for t in chunk:
        action = t._action
        words = set(action.split()) if type(action) is str else _word_set(t)
        if words:
            words.difference_update(t.inputs)
            named |= words
    named.difference_update(chain.from_iterable(t.outputs for t in chunk))
    # a declared path with shell punctuation (`p_7.txt;` of `(cat p_7.txt;)`) names
    # no file: dropped here, not stat'ed once a point (nor kept in the memo)
    punctuated = {w: bare for w in named if w != (bare := _bare(w)) and bare}  # (`<`: none)
    if punctuated:
        bares = set(punctuated.values())
        declared = bares.intersection(chain.from_iterable(t.inputs for t in chunk))
        declared |= bares.intersection(chain.from_iterable(t.outputs for t in chunk))
        if declared:
            own = {w for w, bare in punctuated.items() if bare in declared}
            named -= own
            named |= _named_by_others(chunk, own)
    return named


def _named_by_others(chunk: list[Task], punctuated: set[str]) -> set[str]:
    """Those of `punctuated` (declared paths with punctuation around them) that a task
    names without declaring the path itself."""
    found: set[str] = set()
    for t in chunk:
        words = _word_set(t)
        mine = words & punctuated if words else None
        if mine:
            declared = _declared(t)
            found.update(word for word in mine if _bare(word) not in declared)
    return found


def _declared(t: Task) -> set[str] | tuple[str, ...]:
    """A task's declared paths, as a set when there are many (a summary's 20,000
    quoted inputs, each looked up: not in a tuple)."""
    if len(t.inputs) > 8:
        return set(t.inputs) | set(t.outputs)
    return (*t.inputs, *t.outputs)


def _words(t: Task) -> list[str] | None:
    action = t._action
    if type(action) is str:
        return action.split()
    if isinstance(action, ArgvAction):
        return list(action.argv)
    command = getattr(action, "command", None)  # a str subclass, kept wrapped
    return str(command).split() if command is not None else None


def _word_set(t: Task) -> set[str] | None:
    words = _words(t)
    return set(words) if words else None


def _bare(word: str) -> str:
    """A command word without the shell punctuation around it: `(cat`, `p_7.txt;`."""
    return word.lstrip("<(").rstrip(";)&|").strip("'\"")


def _implicit_of(t: Task, words: list[str], finder: _Finder) -> tuple[str, ...]:
    declared = _declared(t)
    found: dict[str, None] = {}
    skip_next = False
    for word in words:
        if skip_next:  # the target of an output redirection: written, not read
            skip_next = False
            continue
        if word in _REDIRECT_OUT:
            skip_next = True
            continue
        if word.startswith((">", "1>", "2>", "&>")):
            continue
        path = finder.file(word)
        if path is not None and path not in declared:
            found[path] = None
    return tuple(found)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _Finder:
    """Which words name a project file (memoized: a sweep repeats its programs)."""

    def __init__(self, root: Path, tasks: list[Task]) -> None:
        self.root = str(root)
        self.tasks = tasks
        self._produced: set[str] | None = None  # made when a word names a file
        self.memo: dict[str, str | None] = {}

    def produced(self, path: str) -> bool:
        """A task's output, or inside one (a folder output)."""
        if self._produced is None:
            self._produced = set(chain.from_iterable(t.outputs for t in self.tasks))
        while path:
            if path in self._produced:
                return True
            path = os.path.dirname(path)
        return False

    def file(self, word: str) -> str | None:
        found = self.memo.get(word, "")
        if found == "":
            if len(self.memo) >= 4096:  # words of each point (`r=7)`) repeat nowhere else
                self.memo.clear()
            found = self.memo[word] = self._look(word)
        return found

    def _look(self, word: str) -> str | None:
        text = word.lstrip("<").strip("'\"")
        if "=" in text and text.startswith("-"):  # --config=path
            text = text.split("=", 1)[1]
        if not text or text.startswith("-") or "$" in text or "*" in text or _number(text):
            return None  # (a sweep's parameters: 100,000 distinct numbers, no file)
        path = self._program(text) if "/" not in text and "." not in text else self._inside(text)
        if path is None or path.startswith(".pytaskmake/") or not os.path.isfile(path):
            return None
        return None if self.produced(path) else path  # another task's output: an edge

    def _program(self, name: str) -> str | None:
        """A program run by name and found on PATH inside the project."""
        if not name[0].isalpha():
            return None
        where = shutil.which(name)
        return self._inside(where) if where else None

    def _inside(self, text: str) -> str | None:
        if os.path.isabs(text):
            rel = os.path.relpath(text, self.root)
        else:
            rel = os.path.normpath(text)
        if rel == "." or rel.startswith(".."):
            return None
        return rel
