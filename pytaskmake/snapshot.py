"""The no-op snapshot: two digests proving nothing changed since the last complete build.

After a build in which every declared task ended up done, two digests are saved:
one of the declarations (each task's name, action, files, deps and log, in
order) and one of the stat of every file those tasks name. When the next run
computes the same two digests, the graph it would build is the one already
validated and every task's record still matches its files: there is nothing to
do, and no graph, record or scheduler is built (ninja's manifest check, Shake's
"nothing changed" answer). Any difference falls back to the full path, which
decides task by task.

The state database removes the snapshot before the first record of a build is
written, so a build killed half-way can never leave one vouching for records it
changed.
"""

from __future__ import annotations

import hashlib
import os
from array import array
from collections.abc import Iterable, Sequence

from .fingerprint import FileCache, Stat
from .taskfile import Task


def declarations_digest(tasks: Iterable[Task]) -> bytes:
    """A digest of everything the graph and the rebuilder read from the declarations.

    Unambiguous: names and paths hold no NUL (the Taskfile loader refuses them),
    the signature (whose argv may hold NULs) is length-prefixed, and each list is
    preceded by its length.
    """
    digest = hashlib.blake2b(digest_size=16)
    update = digest.update
    for t in tasks:
        sig = t.action.signature
        parts = (
            t.name,
            f"{len(sig)}:{sig}",
            str(len(t.inputs)),
            *t.inputs,
            str(len(t.outputs)),
            *t.outputs,
            str(len(t.deps)),
            *t.deps,
            t.log or "",
        )
        update(("\0".join(parts) + "\0\0").encode())
    return digest.digest()


def stats_digest(tasks: Sequence[Task], files: FileCache, workers: int = 1) -> int:
    """A digest of the stat of every input and output of `tasks`, in order.

    Stats are tuples of ints, whose hash() is the same in every process (str and,
    before Python 3.12, None hash differently in each), so this is stable from one
    run to the next. The digest is made of per-chunk digests, so that `workers`
    forked processes can stat the chunks in parallel and agree with one process:
    at 300,000 files, stat() is most of a no-op's time.
    """
    starts = range(0, len(tasks), _CHUNK)
    if workers > 1 and len(starts) >= 4 * workers and hasattr(os, "fork"):
        found = _chunk_digests_forked(tasks, files, starts, workers)
    else:
        found = [_chunk_digest(tasks, j, files) for j in starts]
    return hash(tuple(found))


_CHUNK = 2048  # tasks per chunk digest


def _chunk_digest(tasks: Sequence[Task], start: int, files: FileCache) -> int:
    stat = files.stat
    stats: list[Stat] = []
    add = stats.append
    for t in tasks[start : start + _CHUNK]:
        for path in t.inputs:
            add(stat(path) or _MISSING)
        for path in t.outputs:
            add(stat(path) or _MISSING)
    return hash(tuple(stats))


def _chunk_digests_forked(
    tasks: Sequence[Task], files: FileCache, starts: range, workers: int
) -> list[int]:
    """Chunk digests, the later shares computed by forked children while we do the first.

    Raises OSError when a child could not deliver its share (the caller then takes
    the full path, which is always correct).
    """
    share = -(-len(starts) // workers)
    groups = [starts[k : k + share] for k in range(0, len(starts), share)]
    children: list[tuple[int, int]] = []
    try:
        for group in groups[1:]:
            children.append(_fork_share(tasks, files, group))
        found = [_chunk_digest(tasks, j, files) for j in groups[0]]
        for (_, fd), group in zip(children, groups[1:], strict=True):
            data = _read_all(fd)
            if len(data) != 8 * len(group):
                raise OSError("a stat worker died before its answer")
            found += array("q", data)
    finally:
        for pid, fd in children:
            os.close(fd)  # a child still writing gets EPIPE and leaves
            os.waitpid(pid, 0)
    return found


def _fork_share(tasks: Sequence[Task], files: FileCache, group: range) -> tuple[int, int]:
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
            data = array("q", [_chunk_digest(tasks, j, files) for j in group]).tobytes()
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


_MISSING: Stat = (-1, -1, -1)


def pack(declarations: bytes, stats: int) -> bytes:
    """The snapshot as the state database keeps it."""
    return declarations + stats.to_bytes(8, "little", signed=True)


def matches(saved: bytes | None, tasks: list[Task], files: FileCache, workers: int = 1) -> bool:
    """True when `saved` (from pack) describes these declarations and files exactly."""
    if saved is None or len(saved) != 24 or declarations_digest(tasks) != saved[:16]:
        return False
    try:
        now = stats_digest(tasks, files, workers)
    except OSError:
        return False
    return now == int.from_bytes(saved[16:], "little", signed=True)
