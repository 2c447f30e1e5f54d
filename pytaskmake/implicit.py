"""Files named on a command line are inputs, declared or not.

`python3 tool.py in.txt > out.txt` with only `in.txt` declared must still rerun
when `tool.py` is edited, and the run cache must not hand back an output made by
the old `tool.py`. So when a Taskfile loads, every word of a shell command or an
argv list that names an existing regular file inside the project becomes an
implicit input of its task: `VERSION`, `(cat p.txt;)`, `<in.txt`, `$(cat q.txt)`,
`--config="cfg.txt"`, `if=s.txt`, a module run as `python -m tools.sim`, an argv
list's `sh -c` script; so does a program found on PATH inside the project
(`bin/netsim` run as `netsim`, `gen.sh`). Not a word written to: after an output
redirection, `tee`'s files, `-o`/`--output`'s; nor any task's declared output.
They are decided once, at load, from the files that exist then, so a task's
inputs do not change between builds by themselves. `task(...,
implicit_inputs=False)` opts a task out.

A sweep declares 200,000 tasks whose command words are nearly all declared
paths: the commands of 2,048 tasks are cut at the shell's punctuation in one call,
each task's words less its own declared inputs gathered in a set, and only a chunk
left with a word naming a project file is looked at word by word, in order, task
by task. Measured in process at 100,000 points (the whole pass): the benchmark's
sweep 161 ms (101 before this release, which missed a path one task declared and
another only named, and any path written with punctuation around it); with
`python3 sim.py` undeclared in every command, 822 ms (1,366).
"""

from __future__ import annotations

import os
import re
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
        # (`python -m pkg.mod` names a file only with the -m before it)
        names = [c for w in named for c in ((w, w.partition("=")[2]) if "=" in w else (w,))]
        usual = "-m" not in named and not any([finder.file(c) for c in names if c])
        del named, names  # (before the next chunk's are made)
        if usual:
            continue  # every word is a declared path of its own task, or no file
        for t in chunk:
            words = _words(t) if t.implicit_allowed else None
            found = _implicit_of(t, words, finder) if words else ()
            if found:
                t._set_implicit(True, found)


def _undeclared_words(chunk: list[Task]) -> set[str]:
    """The words of the chunk's commands, cut at the shell's punctuation (`(cat p.txt;)`
    is `cat` and `p.txt`), that are not a declared input of their own task, nor any
    task's output (never an implicit input). Per task: a path one task declares and
    another only names (`cat dur.txt` beside the task reading dur.txt) is an input of
    both."""
    texts = [t._action if type(t._action) is str else " ".join(_words(t) or ()) for t in chunk]
    cut = _spaced("\0".join(texts)).split("\0")  # (one call a chunk)
    if len(cut) != len(chunk):  # (a NUL in a command)
        cut = [_spaced(text) for text in texts]
    named: set[str] = set()
    for t, text in zip(chunk, cut, strict=True):
        words = set(text.split())
        words.difference_update(t.inputs)
        named |= words
    named.difference_update(chain.from_iterable(t.outputs for t in chunk))
    return named


_PUNCTUATION = bytes.maketrans(b";|&()<>`$'\"", b" " * 11)


def _spaced(text: str) -> str:
    """The shell's punctuation made spaces (through bytes: str.translate took 1.4 us
    a command, 0.3 s of a 100,000-point load)."""
    data = text.encode("utf-8", "surrogateescape").translate(_PUNCTUATION)
    return data.decode("utf-8", "surrogateescape")


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
    if isinstance(action, ArgvAction):  # (an item with spaces: a `sh -c` script's words)
        return [w for item in action.argv for w in (item.split() if " " in item else (item,))]
    command = getattr(action, "command", None)  # a str subclass, kept wrapped
    return str(command).split() if command is not None else None


_OPERATORS = re.compile(r"(\$\(|[|;&()`]+)")  # (captured: a command ends there)
_WRITTEN_AFTER = ("-o", "--output")
_REDIRECTED = (">", "1>", "2>", "&>")


def _candidates(piece: str) -> list[str]:
    """The paths a command word may name, without the shell's punctuation: `(cat`,
    `p.txt;`, `<in.txt`, `'q.txt'`, `--config="c.txt"` and `if=s.txt` (both the
    word and what follows its `=`). Not what it writes (`>out`, `2>err.log`)."""
    found = []
    for part in _OPERATORS.split(piece):
        if not part or _OPERATORS.fullmatch(part) or part.startswith(_REDIRECTED):
            continue
        for text in part.split(">", 1)[0].split("<"):  # (`a>b`: a read, b written)
            text = text.strip("'\"")
            if text:
                found.append(text)
                value = text.partition("=")[2].strip("'\"")
                if value:
                    found.append(value)
    return found


def _implicit_of(t: Task, words: list[str], finder: _Finder) -> tuple[str, ...]:
    declared = _declared(t)
    found: dict[str, None] = {}
    skip_next = writing = False  # (the next word is written; `tee`'s words are)
    before = ""
    for word in words:
        if word in declared:  # (a sweep's words are mostly its own paths)
            skip_next = False
            before = word
            continue
        for operator, piece, names in _parsed(word):
            if operator:  # a command ends
                skip_next = writing = False
                before = ""
                continue
            if skip_next:  # the target of an output redirection: written, not read
                skip_next = False
            elif piece in _REDIRECT_OUT or piece in _WRITTEN_AFTER:
                skip_next = True
            elif piece == "tee" or piece.endswith("/tee"):
                writing = True
            elif not (
                piece.startswith(_REDIRECTED)
                or piece.startswith(("--output=", "-o="))
                or (writing and not piece.startswith("-"))
            ):
                if before == "-m" and names:  # python -m pkg.mod
                    module = names[0].replace(".", "/")
                    names = (*names, module + ".py", module + "/__main__.py")
                for name in names:
                    path = finder.file(name)
                    if path is not None and path not in declared:
                        found[path] = None
            before = piece
    return tuple(found)


_Piece = tuple[bool, str, tuple[str, ...]]  # (an operator?, the text, the paths it may name)
_parsed_words: dict[str, tuple[_Piece, ...]] = {}
_SPECIAL = re.compile(r"[|;&()`$<>'\"=]")


def _parsed(word: str) -> tuple[_Piece, ...]:
    """A command word cut at the shell's operators, each piece with the paths it may
    name (memoized: a sweep repeats `(cat`, `params.txt)`, `>` in every command)."""
    found = _parsed_words.get(word)
    if found is None:
        if _SPECIAL.search(word) is None:
            found = ((False, word, (word,)),)
        else:
            found = tuple(
                (True, piece, ())
                if _OPERATORS.fullmatch(piece)
                else (False, piece, tuple(_candidates(piece)))
                for piece in _OPERATORS.split(word)
                if piece
            )
        if len(_parsed_words) >= 8192:  # (each point's own words repeat nowhere)
            _parsed_words.clear()
        _parsed_words[word] = found
    return found


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
        self._path_dirs: list[tuple[str, bool]] | None = None

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

    def _look(self, text: str) -> str | None:
        """A project file `text` names (relative to the root), or a program on PATH
        inside the project (`netsim`, `gen.sh`); None for another task's output."""
        if not text or text.startswith("-") or "$" in text or "*" in text or _number(text):
            return None  # (a sweep's parameters: 100,000 distinct numbers, no file)
        path = self._inside(text)
        if path is None or path.startswith(".pytaskmake/") or not os.path.isfile(path):
            path = self._program(text) if "/" not in text else None
            if path is None:
                return None
        return None if self.produced(path) else path  # another task's output: an edge

    def _program(self, name: str) -> str | None:
        """A program run by name and found first on PATH inside the project."""
        if not name[0].isalpha():
            return None
        for folder, inside in self._path():
            full = os.path.join(folder, name)
            if os.path.isfile(full) and os.access(full, os.X_OK):
                return self._inside(full) if inside else None
        return None

    def _path(self) -> list[tuple[str, bool]]:
        """PATH's folders up to the last one inside the project (none: no program run
        by name is the project's, and nothing is looked up), each with whether it is."""
        if self._path_dirs is None:
            folders = [
                os.path.abspath(f) for f in os.environ.get("PATH", "").split(os.pathsep) if f
            ]
            inside = [self._inside(f) is not None for f in folders]
            last = max((k for k, yes in enumerate(inside) if yes), default=-1)
            self._path_dirs = list(zip(folders, inside, strict=True))[: last + 1]
        return self._path_dirs

    def _inside(self, text: str) -> str | None:
        if os.path.isabs(text):
            rel = os.path.relpath(text, self.root)
        else:
            rel = os.path.normpath(text)
        if rel == "." or rel.startswith(".."):
            return None
        return rel
