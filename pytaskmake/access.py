"""What one run of a task did to files: read, wrote, removed, looked for in vain.

A trace (strace's, or a callable's audit hook) is a stream of file events; a
Recorder turns them, in order, into an Access, keeping only the files that count:
every file inside the project, wherever the project lies (/tmp included), but
pytaskmake's own folder, bytecode caches and .git; outside it, every file but the
system's (the OS folders, Python's installation and virtualenv, the temp folder,
dot-folders of the home). Paths inside the project are kept relative to it, as a
Taskfile names them; the others stay absolute.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field

# Folders of the operating system (Linux, macOS), never a task's own files.
OS_FOLDERS = (
    "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/var",
    "/run", "/sys", "/proc", "/dev", "/boot", "/snap", "/nix", "/gnu",
    "/System", "/Library", "/private", "/tmp",
)  # fmt: skip
# Inside the project: what pytaskmake and the tools around a build write for themselves.
_OWN = (".pytaskmake/", ".git/", "__pycache__/")


def default_ignored() -> tuple[str, ...]:
    """The folders outside the project whose files a trace ignores by default: the
    OS's, Python's (its installation and the virtualenv), the temp folder, and the
    dot-folders of the home (tool installs and caches: ~/.pyenv, ~/.cache...)."""
    python = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    home = os.path.expanduser("~")
    dotted = [os.path.join(home, ".")] if home not in ("", "/", "~") else []
    return (*OS_FOLDERS, *sorted(python), tempfile.gettempdir(), *dotted)


class Scope:
    """Which files a trace keeps, and the names it keeps them under.

    `ignored`: folders outside the project whose files do not count (default:
    default_ignored()); a prefix ending in "/." (the home's dot-folders) matches
    every entry starting with a dot there. Inside the project every file counts
    but `extra_own` (the state folder, when it lies in the project) and _OWN.
    """

    def __init__(
        self, root: str, ignored: Iterable[str] | None = None, extra_own: Iterable[str] = ()
    ) -> None:
        self.root = os.path.normpath(root)
        self._inside = self.root.rstrip("/") + "/"
        chosen = default_ignored() if ignored is None else tuple(ignored)
        self._ignored = tuple(_as_prefix(p) for p in chosen if p)
        own = [os.path.relpath(p, self.root) for p in extra_own if p]
        self._own = _OWN + tuple(p + "/" for p in own if not p.startswith(".."))
        self._state = tuple(_as_prefix(p) for p in extra_own if p)

    def view(self, path: str) -> str | None:
        """`path` (absolute, normalized) as the project names it, or None when it does
        not count."""
        if path == self.root:
            return None
        if path.startswith(self._inside):
            rel = path[len(self._inside) :]
            if rel.startswith(self._own) or "/__pycache__/" in rel:
                return None
            return rel
        probe = path + "/"
        if probe.startswith(self._ignored) or probe.startswith(self._state):
            return None
        return path


def _as_prefix(path: str) -> str:
    """A folder as a prefix that matches its entries only ("/usr/", not "/usrx");
    "HOME/." stays as it is (every dot-entry of the home)."""
    if path.endswith("/."):
        return os.path.normpath(path[:-2]) + "/."
    return os.path.normpath(os.path.abspath(path)).rstrip("/") + "/"


@dataclass(frozen=True)
class Access:
    """The files a run touched, as the project names them (see Scope).

    `reads`: files it opened for reading or executed, which existed, and which it
    had not written itself before; `writes`: files it created or wrote and left in
    place (a temporary file written and removed, or renamed away, is not one);
    `removed`: files it removed that it had not made; `missing`: files it looked
    for that did not exist; `listed`: folders it opened (listed). `blind`: what the
    trace could not see, in words ("" when it saw everything).
    """

    reads: frozenset[str] = field(default_factory=frozenset)
    writes: frozenset[str] = field(default_factory=frozenset)
    removed: frozenset[str] = field(default_factory=frozenset)
    missing: frozenset[str] = field(default_factory=frozenset)
    listed: frozenset[str] = field(default_factory=frozenset)
    blind: str = ""

    def merged(self, other: Access) -> Access:
        """Both traces of one run (a callable's audit hook and strace) as one."""
        writes = self.writes | other.writes
        reads = self.reads | other.reads
        return Access(
            reads,
            writes,
            (self.removed | other.removed) - writes,
            (self.missing | other.missing) - reads,
            self.listed | other.listed,
            other.blind if not self.blind else self.blind,
        )

    def pack(self) -> bytes:
        """NUL-separated (tag, path) pairs, for a forked child to hand over (paths
        hold no NUL)."""
        parts: list[str] = []
        for tag, paths in zip(_TAGS, self._sets(), strict=True):
            for path in sorted(paths):
                parts += [tag, path]
        if self.blind:
            parts += ["B", self.blind]
        return os.fsencode("\0".join(parts))

    @classmethod
    def unpack(cls, data: bytes) -> Access:
        """pack() backwards; ValueError on damaged data."""
        if not data:
            return cls()
        fields = os.fsdecode(data).split("\0")
        if len(fields) % 2:
            raise ValueError("damaged access record")
        found: dict[str, set[str]] = {tag: set() for tag in _TAGS}
        blind = ""
        for tag, path in zip(fields[::2], fields[1::2], strict=True):
            if tag == "B":
                blind = path
            elif tag in found:
                found[tag].add(path)
            else:
                raise ValueError(f"damaged access record: tag {tag!r}")
        sets = [frozenset(found[tag]) for tag in _TAGS]
        return cls(*sets, blind=blind)  # type: ignore[arg-type]

    def _sets(self) -> tuple[frozenset[str], ...]:
        return (self.reads, self.writes, self.removed, self.missing, self.listed)


_TAGS = ("R", "W", "D", "M", "L")


class Recorder:
    """Turns one run's file events, in the order they happened, into an Access.

    Paths are absolute and normalized; those the scope does not keep are dropped
    as they come. Order matters: a file the task wrote and then read back is not a
    read, and a file it wrote and then removed or renamed away is not a write.
    """

    def __init__(self, scope: Scope) -> None:
        self._view = scope.view
        self._reads: set[str] = set()
        self._made: set[str] = set()  # every file it wrote, even if gone since
        self._writes: set[str] = set()
        self._removed: set[str] = set()
        self._missing: set[str] = set()
        self._listed: set[str] = set()

    def read(self, path: str, ok: bool = True) -> None:
        name = self._view(path)
        if name is None or name in self._made:
            return
        if ok:
            self._reads.add(name)
        else:
            self._missing.add(name)

    def write(self, path: str) -> None:
        name = self._view(path)
        if name is not None:
            self._made.add(name)
            self._writes.add(name)
            self._removed.discard(name)

    def remove(self, path: str) -> None:
        name = self._view(path)
        if name is None:
            return
        if name in self._writes:
            self._writes.discard(name)  # its own temporary file
        elif name not in self._made:
            self._removed.add(name)

    def rename(self, source: str, target: str) -> None:
        self.remove(source)
        self.write(target)

    def listing(self, path: str) -> None:
        name = self._view(path)
        if name is not None:
            self._listed.add(name)

    def finish(self, blind: str = "") -> Access:
        return Access(
            frozenset(self._reads),
            frozenset(self._writes),
            frozenset(self._removed),
            frozenset(self._missing - self._reads),
            frozenset(self._listed),
            blind,
        )
