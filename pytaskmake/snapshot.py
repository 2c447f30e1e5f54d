"""The no-op snapshot: digests proving that nothing, or only a few files, changed.

After a build in which every declared task ended up done, the state database keeps
a snapshot: a digest of the declarations (each task's name, action, files, deps
and log, in order) and, for each chunk of 2,048 consecutive tasks, the files those
tasks name and a digest of their stats. A run whose declarations give the same
digest has the very graph already validated, and:

- when every chunk's stats give the same digest too, every record still matches
  its files: nothing to do, and no graph, record or scheduler is built (ninja's
  manifest check, Shake's "nothing changed" answer);
- otherwise only the tasks of the chunks that moved can have a moved stamp (the
  *suspects*): the build checks those and what is downstream of them, reading
  only their records (a touched input among 200,000 tasks checks 2,048).

Any other difference takes the full path, which decides task by task. The state
database removes the snapshot before the first record of a build is written, so a
build killed half-way can never leave one vouching for records it changed.

The file list is kept so that the stats can be taken without the declarations:
forked workers split it while this process computes the declarations' digest.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import signal
from array import array
from collections.abc import Callable, Iterable, Sequence
from itertools import chain

from .fingerprint import Stat, stat_of
from .taskfile import Task

CHUNK = 2048  # tasks per chunk digest
_MAGIC = b"pytaskmake snapshot 2\n"  # then marshal; anything else is simply not a match
_MISSING: Stat = (-1, -1, -1)


def declarations_digest(tasks: Sequence[Task]) -> bytes:
    """A digest of everything the graph and the rebuilder read from the declarations.

    The fields are serialized by marshal (format 2: type-tagged, length-prefixed,
    no back-references, so equal values give equal bytes whatever objects hold
    them): unambiguous, and 4,096 tasks cost one C call.
    """
    digest = hashlib.blake2b(digest_size=16)
    for start in range(0, len(tasks), 4096):
        rows = [
            (t.name, t.signature, t.inputs, t.outputs, t.deps, t.log)
            for t in tasks[start : start + 4096]
        ]
        try:
            digest.update(marshal.dumps(rows, 2))
        except ValueError:  # a str subclass (marshal takes exact types): the same as str
            digest.update(marshal.dumps([_as_plain_str(row) for row in rows], 2))
    return digest.digest()


def _as_plain_str(row: tuple[object, ...]) -> tuple[object, ...]:
    name, sig, ins, outs, deps, log = row
    return (
        str(name),
        str(sig),
        tuple(map(str, ins)),  # type: ignore[call-overload]
        tuple(map(str, outs)),  # type: ignore[call-overload]
        tuple(map(str, deps)),  # type: ignore[call-overload]
        None if log is None else str(log),
    )


def chunk_paths(tasks: Sequence[Task], j: int) -> list[str]:
    """The files named by the tasks of chunk `j`, each once, in order of appearance."""
    chunk = tasks[j * CHUNK : (j + 1) * CHUNK]
    return list(dict.fromkeys(chain.from_iterable(t.inputs + t.outputs for t in chunk)))


def paths_digest(paths: Iterable[str], stat: Callable[[str], Stat | None] = stat_of) -> int:
    """A digest of the stats of `paths`, in order; a missing file has its own stat.

    Stats are tuples of ints, whose hash() is the same in every process (str and,
    before Python 3.12, None hash differently in each), so this is stable from one
    run to the next.
    """
    return hash(tuple([stat(p) or _MISSING for p in paths]))


def chunk_count(tasks: Sequence[Task]) -> int:
    return -(-len(tasks) // CHUNK)


class Saved:
    """A snapshot as the state database keeps it: declarations, files, stat digests."""

    __slots__ = ("declarations", "digests", "_paths")

    def __init__(self, declarations: bytes, digests: array, paths: tuple[str, ...]) -> None:
        self.declarations = declarations
        self.digests = digests  # per chunk
        self._paths = paths  # per chunk, its files NUL-separated (paths hold no NUL)

    @classmethod
    def parse(cls, value: bytes | None) -> Saved | None:
        """The snapshot in `value` (from pack), or None when absent or of another format."""
        if value is None or not value.startswith(_MAGIC):
            return None
        try:
            declarations, digests, paths = marshal.loads(value[len(_MAGIC) :])
            found = array("q", digests)
            if len(found) != len(paths) or not all(type(p) is str for p in paths):
                return None
        except Exception:  # damaged: no shortcut, the full path decides
            return None
        return cls(declarations, found, paths)

    def pack(self) -> bytes:
        saved = (self.declarations, self.digests.tobytes(), self._paths)
        return _MAGIC + marshal.dumps(saved, 2)

    def with_digests(self, digests: list[int]) -> Saved:
        """The same declarations and files, with their stats now."""
        return Saved(self.declarations, array("q", digests), self._paths)

    def paths_of(self, j: int) -> list[str]:
        """The files of chunk `j`."""
        text = self._paths[j]
        return text.split("\0") if text else []


class Comparison:
    """How the files now compare with a saved snapshot of the same declarations."""

    def __init__(self, saved: Saved, digests: list[int]) -> None:
        self.saved = saved
        self.digests = digests  # per chunk, now
        self.changed = [
            j for j, (a, b) in enumerate(zip(saved.digests, digests, strict=True)) if a != b
        ]

    @property
    def nothing_changed(self) -> bool:
        return not self.changed

    def updated(self, stat: Callable[[str], Stat | None], chunks: set[int]) -> Saved:
        """The snapshot to save after a build that left every task done.

        `chunks` (each of whose tasks the build checked, so `stat`, the memo the
        records were written from, knows every file of theirs) and the chunks that
        moved are digested again; the others are as they were when the build
        started, and no task of theirs was recorded since.
        """
        again = chunks | set(self.changed)
        saved = self.saved
        digests = [
            paths_digest(saved.paths_of(j), stat) if j in again else d
            for j, d in enumerate(self.digests)
        ]
        return saved.with_digests(digests)


def fresh(tasks: Sequence[Task], stat: Callable[[str], Stat | None]) -> Saved:
    """The snapshot of these declarations and files, computed from scratch."""
    paths = [chunk_paths(tasks, j) for j in range(chunk_count(tasks))]
    digests = array("q", [paths_digest(p, stat) for p in paths])
    return Saved(declarations_digest(tasks), digests, tuple(["\0".join(p) for p in paths]))


def compare(saved: Saved, workers: int = 1) -> Comparison | None:
    """Digest every chunk's files now (in `workers` processes); None if a worker failed."""
    n = len(saved.digests)
    try:
        if workers > 1 and n >= 4 * workers and hasattr(os, "fork"):
            digests = _digests_forked(saved, n, workers)
        else:
            digests = [paths_digest(saved.paths_of(j)) for j in range(n)]
    except OSError:
        return None
    return Comparison(saved, digests)


class Prefetch:
    """The stats of the last snapshot's files, taken by forked children while the
    Taskfile loads: one core runs the user's loops, the others stat (at 100,000
    tasks each takes about a second).

    Valid only when the declarations turn out to be the snapshot's own, the
    snapshot did not change meanwhile (another build), and the Taskfile did
    nothing that may write a file while the children were statting (`spoil`).
    """

    def __init__(self, value: bytes, saved: Saved, workers: int) -> None:
        self.value = value
        self.spoiled = False
        self.lock_seen: object = None  # the caller's note of the build lock when started
        self._groups = _groups(len(saved.digests), workers)
        self._children: list[tuple[int, int]] = []
        try:
            for group in self._groups:
                self._children.append(_fork_share(saved, group))
        except OSError:
            self.close()
            self.spoiled = True

    @classmethod
    def start(cls, value: bytes | None, workers: int) -> Prefetch | None:
        saved = Saved.parse(value)
        if value is None or saved is None or not saved.digests or not hasattr(os, "fork"):
            return None
        return cls(value, saved, workers)

    def spoil(self) -> None:
        """The Taskfile may have written files: the children's stats may predate it."""
        self.spoiled = True

    def digests(self, value: bytes | None) -> list[int] | None:
        """The chunk digests, if still about `value` (the snapshot read under the lock)."""
        try:
            if self.spoiled or value != self.value or not self._children:
                return None
            return _collect(self._children, self._groups)
        except OSError:
            return None
        finally:
            self.close()

    def close(self) -> None:
        """Stop and reap the children (they may still be statting); forget the value
        (~7 MB at 100,000 tasks), which no later comparison may match."""
        self.value = b""
        self.spoiled = True
        children, self._children = self._children, []
        for pid, fd in children:
            os.close(fd)
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):  # reaped by the Taskfile's code
                pass


def _groups(n: int, workers: int) -> list[range]:
    share = -(-n // max(1, workers))
    return [range(k, min(k + share, n)) for k in range(0, n, share)]


def _digests_forked(saved: Saved, n: int, workers: int) -> list[int]:
    """Chunk digests, the later shares computed by forked children while we do the first.

    Raises OSError when a child could not deliver its share (the caller then takes
    the full path, which is always correct).
    """
    groups = _groups(n, workers)
    children: list[tuple[int, int]] = []
    try:
        for group in groups[1:]:
            children.append(_fork_share(saved, group))
        found = [paths_digest(saved.paths_of(j)) for j in groups[0]]
        return found + _collect(children, groups[1:])
    finally:
        for pid, fd in children:
            os.close(fd)  # a child still writing gets EPIPE and leaves
            os.waitpid(pid, 0)


def _collect(children: list[tuple[int, int]], groups: list[range]) -> list[int]:
    """The digests the children send, in order; OSError if one died before its answer."""
    found: list[int] = []
    for (_, fd), group in zip(children, groups, strict=True):
        data = _read_all(fd)
        if len(data) != 8 * len(group):
            raise OSError("a stat worker died before its answer")
        found += array("q", data)
    return found


def _fork_share(saved: Saved, group: range) -> tuple[int, int]:
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        raise
    if pid == 0:  # the child: stat its chunks, send their digests, leave without cleanup
        status = 1
        try:
            os.close(read_end)
            data = array("q", [paths_digest(saved.paths_of(j)) for j in group]).tobytes()
            view = memoryview(data)
            while view:
                view = view[os.write(write_end, view) :]
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    return pid, read_end


def _read_all(fd: int) -> bytes:
    parts = []
    while chunk := os.read(fd, 1 << 16):
        parts.append(chunk)
    return b"".join(parts)
