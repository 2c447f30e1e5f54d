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
by task, once per command shape (a sweep's lines differ only in their declared
paths, numbers and logs). Measured in process at 100,000 points (the whole pass):
the benchmark's sweep ~160 ms (101 before this release, which missed a path one
task declared and another only named, and any path written with punctuation around
it); with `python3 sim.py` undeclared in every command, 0.7-0.9 s (1.37).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import NoReturn

from .action import ArgvAction
from .errors import TaskfileError
from .taskfile import Task, _split_where

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
        module = "-m" in named and any(w.startswith("python") for w in named)
        names = [c for w in named for c in ((w, w.partition("=")[2]) if "=" in w else (w,))]
        usual = not module and not any([finder.file(c) for c in names if c])
        del named, names  # (before the next chunk's are made)
        if usual:
            continue  # every word is a declared path of its own task, or no file
        for t in chunk:
            words = _words(t) if t.implicit_allowed else None
            found = _implicit_of(t, words, finder, _literal(t)) if words else ()
            if found:
                t._set_implicit(True, found)


def _undeclared_words(chunk: list[Task]) -> set[str]:
    """The words of the chunk's commands, cut at the shell's punctuation (`(cat p.txt;)`
    is `cat` and `p.txt`), that are not a declared input of their own task, nor any
    task's output (never an implicit input). Per task: a path one task declares and
    another only names (`cat dur.txt` beside the task reading dur.txt) is an input of
    both."""
    # (an argv list's items as they are too: no shell reads `run(1).csv` in one)
    texts = [t._action if type(t._action) is str else " ".join(_argv_texts(t)) for t in chunk]
    try:
        cut = _spaced("\0".join(texts)).split("\0")  # (one call a chunk)
    except UnicodeEncodeError:
        _refuse_unencodable(chunk, texts)
    if len(cut) != len(chunk):  # (a NUL in a command)
        cut = [_spaced(text) for text in texts]
    named: set[str] = set()
    for t, text in zip(chunk, cut, strict=True):
        words = set(text.split())
        words.difference_update(t.inputs)
        named |= words
    named.difference_update(chain.from_iterable(t.outputs for t in chunk))
    return named


_PUNCTUATION = bytes.maketrans(b";|&()<>`$'\",", b" " * 12)


def _spaced(text: str) -> str:
    """The shell's punctuation made spaces (through bytes: str.translate took 1.4 us
    a command, 0.3 s of a 100,000-point load)."""
    data = text.encode("utf-8", "surrogateescape").translate(_PUNCTUATION)
    return data.decode("utf-8", "surrogateescape")


def _refuse_unencodable(chunk: list[Task], texts: list[str]) -> NoReturn:
    """A command no process can be given (a lone surrogate, \\ud800: not bytes in any
    encoding) is a load error naming its task, not a traceback when it runs."""
    for t, text in zip(chunk, texts, strict=True):
        try:
            text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as exc:
            bad = repr(text[exc.start])
            raise TaskfileError(
                f"task {t.name!r}: its command holds {bad}, which no program can be given",
                *_split_where(t.where),
            ) from None
    raise AssertionError("no task's command failed to encode")


def _declared(t: Task) -> set[str] | tuple[str, ...]:
    """A task's declared paths, as a set when there are many (a summary's 20,000
    quoted inputs, each looked up: not in a tuple)."""
    if len(t.inputs) > 8:
        return set(t.inputs) | set(t.outputs)
    return (*t.inputs, *t.outputs)


def _words(t: Task) -> list[str] | None:
    action = t._action
    if type(action) is str:
        return _shell_words(action)
    if isinstance(action, ArgvAction):  # (an item with spaces: a `sh -c` script's words)
        argv = action.argv
        return [w for item in argv for w in (_shell_words(item) if " " in item else (item,))]
    command = getattr(action, "command", None)  # a str subclass, kept wrapped
    return _shell_words(str(command)) if command is not None else None


def _shell_words(text: str) -> list[str]:
    """A shell command's words; a line's end ends a command, as `;` does."""
    if "\n" in text:
        text = text.replace("\\\n", " ").replace("\n", " ; ")
    return text.split()


def _argv_texts(t: Task) -> list[str]:
    """An argv list's items, each also with its shell words (a `sh -c` script)."""
    if not isinstance(t._action, ArgvAction):
        return list(_words(t) or ())
    return [*t._action.argv, *(_words(t) or ())]


def _literal(t: Task) -> frozenset[str]:
    """The words no shell reads: an argv list's items (but a `sh -c` script's)."""
    if not isinstance(t._action, ArgvAction):
        return frozenset()
    return frozenset(item for item in t._action.argv if " " not in item)


_OPERATORS = re.compile(r"(\$\(|[|;&()`]+)")  # (captured: a command ends there)
_WRITTEN_AFTER = ("-o", "--output", "--out")
_WRITTEN_AS = ("--output=", "--out=", "-o=")
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
            for quoted in _QUOTES.split(text):  # (`open("e.txt",` in python -c)
                if quoted:
                    found.append(quoted)
                    value = quoted.partition("=")[2]
                    if value:
                        found.append(value)
    return found


_QUOTES = re.compile(r"[\"',]+")


def _implicit_of(
    t: Task, words: list[str], finder: _Finder, literal: frozenset[str] = frozenset()
) -> tuple[str, ...]:
    declared = _declared(t)
    # a sweep's commands differ only in their declared paths: what the rest of the
    # words name is found once for all the commands of that shape
    shape = _shape(words, declared, literal)
    named = finder.shapes.get(shape)
    if named is None:
        if len(finder.shapes) >= 4096:
            finder.shapes.clear()
        named = finder.shapes[shape] = _named_by(words, declared, finder, literal)
    return tuple(path for path in named if path not in declared)


def _shape(
    words: list[str], declared: set[str] | tuple[str, ...], literal: frozenset[str]
) -> tuple[object, ...]:
    """A command line less what differs from point to point and names nothing read:
    its declared paths, numbers (`--seed 17`), a plain word written by a redirection
    (`> out/17.log`) and named nowhere else in the line, in any spelling. Lines of
    one shape read the same files."""
    key: list[object] = [bool(literal)]
    redirected = False
    program = True  # (the first word, or one after an operator: it says what runs)
    for word in words:
        if word in declared and not program:
            key.append(None)
        elif redirected and _SPECIAL.search(word) is None and _only_here(word, words):
            key.append(0)
        elif word[0] in "0123456789" and _number(word):
            key.append(1)
        else:
            key.append(word)
        redirected = word in _REDIRECT_OUT
        program = word in _COMMAND_ENDS or word[-1:] in (";", "|", "&", "(")
    return tuple(key)


_COMMAND_ENDS = frozenset((";", "|", "||", "&", "&&", "(", "then", "do", "else", "time", "nice"))


def _only_here(word: str, words: list[str]) -> bool:
    """No other word of the line may name the same file (`./x.txt`, `sub/../x.txt`):
    none holds its name."""
    name = os.path.basename(word) or word
    return sum(name in w for w in words) == 1


def _named_by(
    words: list[str],
    declared: set[str] | tuple[str, ...],
    finder: _Finder,
    literal: frozenset[str],
) -> tuple[str, ...]:
    """The project files a command line reads, in order, once each."""
    found: dict[str, None] = {}
    written: set[str] = set()  # (a file the line writes, then reads: its own)
    for command in _commands(words, declared, literal):
        # (memoized by the command's words less its declared paths: a sweep's commands
        # differ only in those)
        key = (
            bool(literal),
            command[0][0],  # (the program, declared or not: gzip and zstd differ)
            *[piece if names is not None else None for piece, names in command[1:]],
        )
        known = _read_memo.get(key)
        if known is None:
            if len(_read_memo) >= 4096:
                _read_memo.clear()
            reads: list[str] = []
            writes: set[str] = set()
            known = _read_memo[key] = (tuple(_read_by(command, reads, writes)), tuple(writes))
        for name in known[0]:
            path = finder.file(name)
            if path is not None and path not in written:
                found[path] = None
        written.update(known[1])
    return tuple(found)


_read_memo: dict[tuple[object, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _commands(
    words: list[str], declared: set[str] | tuple[str, ...], literal: frozenset[str]
) -> Iterator[list[_Word]]:
    """The simple commands of a command line (cut at `;`, `|`, `&&`, `(`...), each as
    its words with the paths they may name (None: a declared path)."""
    command: list[_Word] = []
    for word in words:
        if word in declared:  # (a sweep's words are mostly its own paths)
            command.append((word, None))
            continue
        if word in literal:  # (an argv item: no shell cuts it)
            value = word.partition("=")[2]
            command.append((word, (word, value) if value else (word,)))
            continue
        for operator, piece, names in _parsed(word):
            if operator:
                if command:
                    yield command
                command = []
            else:
                command.append((piece, names))
    if command:
        yield command


def _read_by(command: list[_Word], reads: list[str], written: set[str]) -> list[str]:
    """The paths a simple command may read (into `reads`, returned): its words, less
    what it writes (after an output redirection, `-o`, `--output`; every file of
    touch, mkdir, rm, tee; the last of cp, mv, ln, rsync; those of `sed -i`; gzip's
    are read: -k keeps them, -c prints them),
    which go into `written`; and with `-m`'s module."""
    program = os.path.basename(command[0][0])
    pieces = [piece for piece, _ in command]
    written_all = program in _WRITES_EACH or (
        program in ("sed", "perl") and any(p.startswith("-i") for p in pieces)
    )
    written_after = () if program in _O_IS_NOT_OUTPUT else _WRITTEN_AFTER
    last = -1
    if program in _WRITES_LAST:
        plain = [
            k
            for k, p in enumerate(pieces)
            if k and not p.startswith(("-", *_REDIRECTED)) and pieces[k - 1] not in _REDIRECT_OUT
        ]
        last = plain[-1] if len(plain) > 1 else -1
    skip_next = False
    for k, (piece, names) in enumerate(command):
        names = names or ()
        if piece.startswith("<") or (k and pieces[k - 1] == "<"):  # (`tee o < c.txt`)
            reads += names
        elif piece in _REDIRECT_OUT:  # (also right after `-o`: `grep -o > A.log`)
            skip_next = True
        elif skip_next:  # the target of an output redirection: written, not read
            skip_next = False
            written.update(os.path.normpath(n) for n in names)
        elif piece in written_after:
            skip_next = True
        elif piece.startswith(_REDIRECTED) or piece.startswith(_WRITTEN_AS):
            # (`2>err.log`, `>a=b.txt`: all after the `>`; `--out=x`: after the `=`)
            target = piece.partition("=")[2] if piece[0] == "-" else piece.lstrip("0123456789&>|")
            if target.strip("'\""):
                written.add(os.path.normpath(target.strip("'\"")))
        elif k and not piece.startswith("-") and (written_all or k == last):
            written.update(os.path.normpath(n) for n in names)
        elif k and pieces[k - 1] == "-m" and names:  # python -m pkg.mod
            module = names[0].replace(".", "/")
            reads += (*names, module + ".py", module + "/__main__.py")
        else:
            reads += names
    return reads


_Word = tuple[str, tuple[str, ...] | None]  # a command's word, the paths it may name
# programs whose every file argument is written (or removed), and those whose last is
_WRITES_EACH = frozenset(("touch", "mkdir", "rm", "rmdir", "tee", "truncate"))
_WRITES_LAST = frozenset(("cp", "mv", "ln", "install", "rsync", "scp"))
# programs whose -o is no output file (unzip: overwrite; find: or; ssh: an option)
_O_IS_NOT_OUTPUT = frozenset(("unzip", "find", "ssh", "scp", "sftp", "mount", "tar", "ps"))


_Piece = tuple[bool, str, tuple[str, ...]]  # (an operator?, the text, the paths it may name)
_parsed_words: dict[str, tuple[_Piece, ...]] = {}
_SPECIAL = re.compile(r"[|;&()`$<>'\"=]")


def _parsed(word: str) -> tuple[_Piece, ...]:
    """A command word cut at the shell's operators, each piece with the paths it may
    name (memoized: a sweep repeats `(cat`, `params.txt)`, `>` in every command)."""
    found = _parsed_words.get(word)
    if found is None:
        text = word.replace(">|", ">")  # (>| overwrites: not a pipe)
        if _SPECIAL.search(word) is None:
            found = ((False, word, (word,)),)
        else:
            found = tuple(
                (True, piece, ())
                if _OPERATORS.fullmatch(piece)
                else (False, piece, tuple(_candidates(piece)))
                for piece in _OPERATORS.split(text)
                if piece
            )
        if len(_parsed_words) >= 8192:  # (each point's own words repeat nowhere)
            _parsed_words.clear()
        _parsed_words[word] = found
    return found


def _listing(folder: str) -> frozenset[str]:
    try:
        return frozenset(os.listdir(folder))
    except OSError:
        return frozenset()


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
        self._path_dirs: list[tuple[str, bool, frozenset[str]]] | None = None
        self._top: frozenset[str] | None = None  # what the project folder holds
        self.shapes: dict[tuple[object, ...], tuple[str, ...]] = {}  # (_implicit_of)

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
        if path is None or path.startswith(".pytaskmake/") or not self._isfile(path):
            path = self._program(text) if "/" not in text else None
            if path is None:
                return None
        return None if self.produced(path) else path  # another task's output: an edge

    def _isfile(self, path: str) -> bool:
        """A file, asked of the disk only when the project folder has its first part
        (`run_17`, `label17`: 100,000 words of a sweep, each a stat, were 4 s)."""
        if self._top is None:
            try:
                self._top = frozenset(os.listdir(self.root))
            except OSError:
                self._top = frozenset()
        return path.partition(os.sep)[0] in self._top and os.path.isfile(path)

    def _program(self, name: str) -> str | None:
        """A program run by name and found first on PATH inside the project."""
        if not name[0].isalpha():
            return None
        for folder, inside, names in self._path():
            full = os.path.join(folder, name)
            if name in names and os.path.isfile(full) and os.access(full, os.X_OK):
                return self._inside(full) if inside else None
        return None

    def _path(self) -> list[tuple[str, bool, frozenset[str]]]:
        """PATH's folders up to the last one inside the project (none: no program run
        by name is the project's, and nothing is looked up), each with whether it is
        and what it holds (listed once: not a stat a word a folder)."""
        if self._path_dirs is None:
            folders = [
                os.path.abspath(f) for f in os.environ.get("PATH", "").split(os.pathsep) if f
            ]
            inside = [self._inside(f) is not None for f in folders]
            last = max((k for k, yes in enumerate(inside) if yes), default=-1)
            self._path_dirs = [
                (f, yes, _listing(f)) for f, yes in zip(folders[: last + 1], inside, strict=False)
            ]
        return self._path_dirs

    def _inside(self, text: str) -> str | None:
        if os.path.isabs(text):  # (through symlinks: the root is a real path)
            rel = os.path.relpath(os.path.realpath(text), self.root)
        else:
            rel = os.path.normpath(text)
        if rel == "." or rel.startswith(".."):
            return None
        return rel
