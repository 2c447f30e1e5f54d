"""Seeing what a command really opens: strace's command line, and its output read back.

A traced job runs as `strace -f -y -o TRACE -e trace=<file syscalls> -- COMMAND`:
every process the command starts is followed, only the system calls that name
files (and the forks that carry a working directory to a child) are stopped on
(seccomp-bpf), and each file descriptor is printed with its path (-y), so a call
relative to a folder (`openat(AT_FDCWD</proj/sub>, "x")`) names the folder. No
maintained Python library reads strace's output (the few on PyPI are abandoned
and do not follow -f's interleaved `<unfinished ...>` lines); this reader covers
the calls above only, and skips any line it cannot read rather than guess.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable

from .access import Access, Recorder, Scope

# The system calls that read, write, rename or remove a file by name, change the
# working directory, or start a process (which inherits it); "?" lets strace skip
# the ones this architecture lacks (aarch64 has no open, rename, fork...).
SYSCALLS = (
    "open", "openat", "openat2", "creat", "execve", "execveat",
    "rename", "renameat", "renameat2", "unlink", "unlinkat",
    "link", "linkat", "symlink", "symlinkat", "truncate",
    "chdir", "fchdir", "clone", "clone3", "fork", "vfork",
)  # fmt: skip
_OPTIONS = ("-f", "-qq", "-y", "-s", "65535", "-e", "trace=" + ",".join("?" + s for s in SYSCALLS))


def find_strace() -> str | None:
    """The strace program on PATH, or None."""
    return shutil.which("strace")


def command(strace: str, trace_file: str, argv: Iterable[str]) -> tuple[str, ...]:
    """The command line running `argv` under strace, writing its trace to `trace_file`."""
    return (strace, *_OPTIONS, "--seccomp-bpf", "-o", trace_file, "--", *argv)


def attach_command(strace: str, trace_file: str, pid: int) -> tuple[str, ...]:
    """The command line tracing the running process `pid` (seccomp-bpf needs an exec:
    not available when attaching)."""
    return (strace, *_OPTIONS, "-o", trace_file, "-p", str(pid))


def read_trace(path: str, cwd: str, scope: Scope, blind: str = "") -> Access:
    """The Access in strace output file `path`, of a command started in `cwd`."""
    recorder = Recorder(scope)
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        parse(f, cwd, recorder)
    return recorder.finish(blind)


_LINE = re.compile(r"(\d+)\s+(.*)")
_RESUMED = re.compile(r"<\.\.\. (\w+) resumed>(.*)")
_UNFINISHED = " <unfinished ...>"
_RESULT = re.compile(r"\s*=\s*(-?\d+|\?|0x[0-9a-f]+)(?:<(.*)>)?(?:\s+([A-Z0-9_]+))?")


def parse(lines: Iterable[str], cwd: str, recorder: Recorder) -> None:
    """Feed `recorder` the file events of strace -f -y output, in order.

    Calls interrupted by another process's (`<unfinished ...>`) are joined with
    their `<... resumed>` rest; signals, exits and lines that are not a whole call
    are skipped.
    """
    pending: dict[str, str] = {}
    reader = _Calls(cwd, recorder)
    for raw in lines:
        line = raw.rstrip("\n")
        m = _LINE.match(line)
        pid, text = (m.group(1), m.group(2)) if m else ("0", line)
        if text.endswith(_UNFINISHED):
            pending[pid] = text[: -len(_UNFINISHED)]
            continue
        resumed = _RESUMED.match(text)
        if resumed is not None:
            start = pending.pop(pid, None)
            if start is None or not start.startswith(resumed.group(1) + "("):
                continue  # its start was lost: do not guess its arguments
            text = start + resumed.group(2)
        reader.call(pid, text)


class _Calls:
    """Turns each whole system call line into recorder events, keeping each
    process's working directory (for calls that do not print it)."""

    def __init__(self, cwd: str, recorder: Recorder) -> None:
        self.start = os.path.normpath(cwd)
        self.cwd: dict[str, str] = {}
        self.r = recorder

    def call(self, pid: str, text: str) -> None:
        paren = text.find("(")
        if paren <= 0 or not text[:paren].isidentifier():
            return  # a signal (---), an exit (+++), strace's own message
        name = text[:paren]
        try:
            args, end = split_args(text, paren + 1)
        except ValueError:
            return
        result = _RESULT.match(text, end + 1)
        if result is None or result.group(1) == "?":
            return
        ok = not result.group(1).startswith("-")
        handler = _HANDLERS.get(name)
        if handler is not None:
            handler(self, pid, args, ok, result.group(1))

    def here(self, pid: str) -> str:
        return self.cwd.get(pid, self.start)

    def path(self, pid: str, arg: str, dirfd: str | None = None) -> str | None:
        """The absolute path an argument names, relative to `dirfd` (an fd argument as
        -y prints it) or to the process's working directory."""
        text = c_string(arg)
        if text is None:
            return None
        if os.path.isabs(text):
            return os.path.normpath(text)
        base = self.here(pid) if dirfd is None else self.folder(pid, dirfd)
        return os.path.normpath(os.path.join(base, text)) if base is not None else None

    def folder(self, pid: str, fd: str) -> str | None:
        """The folder a dirfd argument names: `AT_FDCWD</cwd>` or `3</some/dir>`."""
        lt = fd.find("<")
        if lt >= 0 and fd.endswith(">"):
            found = decode_escapes(fd[lt + 1 : -1])
            if fd.startswith("AT_FDCWD"):
                self.cwd[pid] = found  # the kernel's word beats our bookkeeping
            return found
        return self.here(pid) if fd.startswith("AT_FDCWD") else None

    # --- the system calls ---------------------------------------------------------------

    def open(self, pid: str, path: str | None, flags: str, ok: bool) -> None:
        if path is None or "O_PATH" in flags:
            return
        if "O_DIRECTORY" in flags:
            if ok:
                self.r.listing(path)
            return
        writes = "O_WRONLY" in flags or "O_RDWR" in flags or "O_CREAT" in flags
        if "O_WRONLY" not in flags and "O_TRUNC" not in flags and "O_EXCL" not in flags:
            self.r.read(path, ok)  # (a file truncated or made anew is not read)
        if writes and ok:
            self.r.write(path)


def _open(c: _Calls, pid: str, args: list[str], ok: bool, _: str) -> None:
    if len(args) >= 2:
        c.open(pid, c.path(pid, args[0]), args[1], ok)


def _openat(c: _Calls, pid: str, args: list[str], ok: bool, _: str) -> None:
    if len(args) >= 3:
        c.folder(pid, args[0])
        flags = args[2]
        if flags.startswith("{"):  # openat2: {flags=O_RDONLY|..., mode=..., resolve=...}
            m = re.search(r"flags=([A-Z0-9_|x]+)", flags)
            flags = m.group(1) if m else ""
        c.open(pid, c.path(pid, args[1], args[0]), flags, ok)


def _creat(c: _Calls, pid: str, args: list[str], ok: bool, _: str) -> None:
    path = c.path(pid, args[0]) if args else None
    if path is not None and ok:
        c.r.write(path)


def _execve(c: _Calls, pid: str, args: list[str], ok: bool, _: str) -> None:
    path = c.path(pid, args[0]) if args else None
    if path is not None:
        c.r.read(path, ok)


def _execveat(c: _Calls, pid: str, args: list[str], ok: bool, _: str) -> None:
    path = c.path(pid, args[1], args[0]) if len(args) >= 2 else None
    if path is not None:
        c.r.read(path, ok)


def _rename(c: _Calls, pid: str, args: list[str], ok: bool, _: str) -> None:
    if ok and len(args) >= 2:
        source, target = c.path(pid, args[0]), c.path(pid, args[1])
        if source is not None and target is not None:
            c.r.rename(source, target)


def _renameat(c: _Calls, pid: str, args: list[str], ok: bool, _: str) -> None:
    if ok and len(args) >= 4:
        source, target = c.path(pid, args[1], args[0]), c.path(pid, args[3], args[2])
        if source is not None and target is not None:
            c.r.rename(source, target)


def _unlink(c: _Calls, pid: str, args: list[str], ok: bool, _: str) -> None:
    path = c.path(pid, args[0]) if args else None
    if ok and path is not None:
        c.r.remove(path)


def _unlinkat(c: _Calls, pid: str, args: list[str], ok: bool, _: str) -> None:
    if ok and len(args) >= 3 and "AT_REMOVEDIR" not in args[2]:
        path = c.path(pid, args[1], args[0])
        if path is not None:
            c.r.remove(path)


def _made(c: _Calls, pid: str, target: str | None, ok: bool) -> None:
    if ok and target is not None:
        c.r.write(target)


def _link(c: _Calls, pid: str, args: list[str], ok: bool, _: str) -> None:
    _made(c, pid, c.path(pid, args[1]) if len(args) >= 2 else None, ok)


def _linkat(c: _Calls, pid: str, args: list[str], ok: bool, _: str) -> None:
    _made(c, pid, c.path(pid, args[3], args[2]) if len(args) >= 4 else None, ok)


def _symlinkat(c: _Calls, pid: str, args: list[str], ok: bool, _: str) -> None:
    _made(c, pid, c.path(pid, args[2], args[1]) if len(args) >= 3 else None, ok)


def _truncate(c: _Calls, pid: str, args: list[str], ok: bool, _: str) -> None:
    _made(c, pid, c.path(pid, args[0]) if args else None, ok)


def _chdir(c: _Calls, pid: str, args: list[str], ok: bool, _: str) -> None:
    path = c.path(pid, args[0]) if args else None
    if ok and path is not None:
        c.cwd[pid] = path


def _fchdir(c: _Calls, pid: str, args: list[str], ok: bool, _: str) -> None:
    if ok and args:
        found = c.folder(pid, args[0])
        if found is not None:
            c.cwd[pid] = found


def _fork(c: _Calls, pid: str, args: list[str], ok: bool, returned: str) -> None:
    if ok and returned.isdigit():  # the child starts where its parent stands
        c.cwd[returned] = c.here(pid)


_HANDLERS = {
    "open": _open,
    "openat": _openat,
    "openat2": _openat,
    "creat": _creat,
    "execve": _execve,
    "execveat": _execveat,
    "rename": _rename,
    "renameat": _renameat,
    "renameat2": _renameat,
    "unlink": _unlink,
    "unlinkat": _unlinkat,
    "link": _link,
    "linkat": _linkat,
    "symlink": _link,
    "symlinkat": _symlinkat,
    "truncate": _truncate,
    "chdir": _chdir,
    "fchdir": _fchdir,
    "clone": _fork,
    "clone3": _fork,
    "fork": _fork,
    "vfork": _fork,
}


def split_args(text: str, start: int) -> tuple[list[str], int]:
    """The top-level arguments of a call printed from `start` (just past its "("), and
    the index of its closing ")"; ValueError when the line ends first.

    Strings ("..." with C escapes), fd paths (<...>, where strace escapes ">"),
    arrays [...] and structs {...} are passed over whole.
    """
    args: list[str] = []
    depth, i, begin, n = 0, start, start, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i = _string_end(text, i)
        elif c == "<":
            close = text.find(">", i)
            if close < 0:
                raise ValueError("unterminated fd path")
            i = close
        elif c in "[{(":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == ")":
            if depth == 0:
                args.append(text[begin:i].strip())
                return args, i
            depth -= 1
        elif c == "," and depth == 0:
            args.append(text[begin:i].strip())
            begin = i + 1
        i += 1
    raise ValueError("unfinished call")


def _string_end(text: str, i: int) -> int:
    """The index of the quote closing the string opened at `i`."""
    i += 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i
        i += 1
    raise ValueError("unterminated string")


def c_string(arg: str) -> str | None:
    """A quoted string argument's text (strace's C escapes undone; bytes that are not
    UTF-8 kept as the file system names them), or None when `arg` is not one or was
    cut short by strace ("..."...)."""
    if len(arg) < 2 or arg[0] != '"' or arg.endswith('"...'):
        return None
    if not arg.endswith('"'):
        return None
    return decode_escapes(arg[1:-1])


_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)", re.DOTALL)
_SIMPLE = {"n": 10, "t": 9, "r": 13, "v": 11, "f": 12, "a": 7, "b": 8, "e": 27}


def decode_escapes(text: str) -> str:
    """strace's escaping undone: \\n \\t \\" \\\\ \\ooo \\xHH, the bytes decoded as the
    file system does (os.fsdecode)."""
    if "\\" not in text:
        return text
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(text):
        out += os.fsencode(text[pos : m.start()])
        code = m.group(1)
        if code[0] == "x" and len(code) == 3:
            out.append(int(code[1:], 16))
        elif code[0] in "01234567":
            out.append(int(code, 8) & 0xFF)
        else:
            out.append(_SIMPLE.get(code, ord(code) if ord(code) < 256 else 63))
        pos = m.end()
    out += os.fsencode(text[pos:])
    return os.fsdecode(bytes(out))
