"""The no-op snapshot: digests proving that nothing, or only a few tasks, changed.

After a build in which every declared task ended up done, the state database keeps
a snapshot. The declarations are cut into chunks of about 2,048 consecutive tasks,
at boundaries chosen by the task names themselves (content-defined, as rsync cuts
files), so that adding or removing tasks moves only the boundaries near them. For
each chunk it keeps a digest of its declarations (names, actions, files, deps,
logs), the files they name and a digest of those files' stats. On the next run:

- the same declarations and the same stats: nothing to do, and no graph, record
  or scheduler is built (ninja's manifest check, Shake's "nothing changed");
- otherwise a chunk whose declarations are those of a saved chunk and whose stats
  did not move holds only up-to-date tasks; the others (new or edited
  declarations, moved files) are the *suspects*: the build checks those tasks and
  what is downstream of them, reading only their records. A Taskfile edit that
  adds ten points to a sweep of 100,000 checks a few chunks, not 200,000 tasks.

The state database removes the snapshot before the first record of a build is
written, so a build killed half-way can never leave one vouching for records it
changed.

A one-shot command may take the stats while the Taskfile loads (`Prefetch`):
forked children stat the saved snapshot's files on the other cores meanwhile
(measured: a 12-15% shorter no-op at 10,000 and 100,000 points).
"""

from __future__ import annotations

import marshal
import os
import signal
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain

from .cuts import cut_points
from .digest import blake2b
from .fingerprint import FileCache, Stat, packed_stats, stat_of
from .taskfile import Task, declared_rows

CHUNK = 2048  # mean tasks per chunk
_MAX_CHUNK = 8 * CHUNK  # a run of names without a boundary is cut here
# then the head's length (8 bytes), the head (marshal: per chunk its declarations and
# stats digests, the bounds, a digest of the paths), then the paths (marshal); anything
# else is simply not a match
_MAGIC = b"pytaskmake snapshot 5\n"
_LENGTH = 8
_TUPLE = b"("  # marshal's tuple (format 2)
_MISSING: Stat = (-1, -1, -1, -1, -1)
# past this many tasks in the saved chunks a changed one may come from, all of its
# tasks are checked (their digests would be a set of them all: a parameter edited)
_MOST_SUSPECTED = 8 * _MAX_CHUNK


def chunk_bounds(tasks: Sequence[Task]) -> list[int]:
    """Where each chunk starts, then len(tasks): cut where the task names say (see
    cuts.py), so inserting a task moves no boundary but its neighbours'."""
    return cut_points([t.name for t in tasks], CHUNK, _MAX_CHUNK)


def declarations_digest(tasks: Sequence[Task]) -> bytes:
    """A digest of everything the graph and the rebuilder read from the declarations.

    The fields are serialized by marshal (format 2: type-tagged, length-prefixed,
    no back-references, so equal values give equal bytes whatever objects hold
    them): unambiguous, and a chunk of tasks costs one C call.
    """
    return blake2b(_marshalled(declared_rows(tasks)), digest_size=16).digest()


def _marshalled(rows: list[tuple[object, ...]]) -> bytes:
    try:
        return marshal.dumps(rows, 2)
    except ValueError:  # a str subclass (marshal takes exact types): the same as str
        return marshal.dumps([_as_plain_str(row) for row in rows], 2)


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


def paths_of_tasks(tasks: Sequence[Task]) -> list[str]:
    """The files named by `tasks`, each once, in order of appearance."""
    return list(dict.fromkeys(chain.from_iterable(t.inputs + t.outputs for t in tasks)))


def paths_digest(paths: Iterable[str], stat: Callable[[str], Stat | None] = stat_of) -> int:
    """A digest of the stats of `paths`, in order; a missing file has its own stat.

    Stats are tuples of ints, whose hash() is the same in every process (str and,
    before Python 3.12, None hash differently in each), so this is stable from one
    run to the next.
    """
    return hash(tuple([stat(p) or _MISSING for p in paths]))


def stats_digests(paths: list[str], stat: Callable[[str], Stat | None]) -> tuple[int, bytes]:
    """paths_digest of `paths`, and each file's own (8 bytes each, in order): a build
    told that a chunk moved finds which of its files did (Comparison.suspects_in)."""
    stats = [stat(p) or _MISSING for p in paths]
    return hash(tuple(stats)), array("q", map(hash, stats)).tobytes()


def task_digests(tasks: Sequence[Task]) -> bytes:
    """Per task, 8 bytes of a digest of its declaration as declarations_digest reads
    it (so a task whose digest a snapshot holds is declared as it was then)."""
    found = bytearray()
    for row in declared_rows(tasks):
        found += blake2b(_marshalled([row]), digest_size=8).digest()
    return bytes(found)


class Chunks:
    """The current declarations cut into chunks, with each chunk's declarations digest.

    `bounds`: where to cut, when known (a snapshot's, tried first: the same
    declarations give the same digests without a CRC per task name); by default
    where the names say (chunk_bounds).
    """

    def __init__(self, tasks: Sequence[Task], bounds: list[int] | None = None) -> None:
        self.tasks = tasks
        self.bounds = chunk_bounds(tasks) if bounds is None else bounds
        self.declarations = [
            declarations_digest(tasks[a:b])
            for a, b in zip(self.bounds, self.bounds[1:], strict=False)
        ]

    def __len__(self) -> int:
        return len(self.declarations)

    def tasks_of(self, j: int) -> Sequence[Task]:
        return self.tasks[self.bounds[j] : self.bounds[j + 1]]

    def index(self) -> array:
        """For each task position, its chunk."""
        found = array("i")
        for j in range(len(self)):
            found.extend([j] * (self.bounds[j + 1] - self.bounds[j]))
        return found


class Saved:
    """A snapshot as the state database keeps it: per chunk, declarations, files, stats.

    Packed, its head (declarations, stats digests, bounds, and a digest of the paths)
    comes before the paths, so that a no-op reads and holds only the head: the paths
    of 300,000 files were 7 MB read and 7.5 MB of strings at 100,000 points, needed
    only once something changed (`take_paths`).
    """

    __slots__ = ("declarations", "digests", "_paths", "bounds", "paths_digest", "_tasks", "_files")

    def __init__(
        self,
        declarations: list[bytes],
        digests: array,
        paths: tuple[str, ...] | None,
        bounds: list[int],
        paths_digest: bytes = b"",
        tasks: tuple[bytes, ...] = (),
        files: tuple[bytes, ...] = (),
    ) -> None:
        self.declarations = declarations  # per chunk
        self.digests = digests  # per chunk
        self._paths = paths  # per chunk, its files NUL-separated (paths hold no NUL)
        self.bounds = bounds  # where each chunk starts, then the number of tasks
        self.paths_digest = paths_digest  # (b"": made here, not read; set by pack)
        self._tasks = tasks  # per chunk, its task_digests (read with the paths)
        self._files = files  # per chunk, its files' stats digests (see stats_digests)

    @classmethod
    def parse(cls, value: bytes | None) -> Saved | None:
        """The snapshot in `value` (from pack, or its head alone: see head_length), or
        None when absent, damaged or of another format."""
        size = head_length(value)
        if value is None or size is None:
            return None
        try:
            head = marshal.loads(value[len(_MAGIC) + _LENGTH : size])
            declarations, digests, bounds, paths_digest = head
            found = array("q", digests)
            if not len(found) == len(declarations) == len(bounds) - 1:
                return None
            if not all(type(b) is int for b in bounds) or bounds[0] != 0:
                return None
            if not all(type(d) is bytes for d in declarations) or type(paths_digest) is not bytes:
                return None
        except Exception:  # damaged: no shortcut, the full path decides
            return None
        saved = cls(list(declarations), found, None, list(bounds), paths_digest)
        if len(value) > size and not saved.take_paths(memoryview(value)[size:]):
            return None
        return saved

    def take_paths(self, packed: bytes | memoryview | None) -> bool:
        """Read the paths part of the packed snapshot; False when it is not this head's."""
        if packed is None or _digest(packed) != self.paths_digest:
            return False
        try:
            paths, tasks, files = marshal.loads(packed)
        except Exception:
            return False
        chunks = len(self.digests)
        if not (type(paths) is type(tasks) is type(files) is tuple):
            return False
        if not len(paths) == len(tasks) == len(files) == chunks:
            return False
        if not all(type(p) is str for p in paths):
            return False
        if not all(type(t) is bytes for t in tasks) or not all(type(f) is bytes for f in files):
            return False
        bounds = self.bounds
        for j in range(chunks):
            count = paths[j].count("\0") + 1 if paths[j] else 0
            if len(tasks[j]) != 8 * (bounds[j + 1] - bounds[j]) or len(files[j]) != 8 * count:
                return False
        self._paths, self._tasks, self._files = paths, tasks, files
        return True

    @property
    def has_paths(self) -> bool:
        return self._paths is not None

    def keep(self, chunks: set[int]) -> None:
        """Hold the file lists and digests of these saved chunks only; asking for
        another's from now on is a bug, a RuntimeError (never an empty list: see
        `_part`)."""
        if self._paths is None:
            return
        if not chunks.issuperset(range(len(self._paths))):
            self._paths = tuple([p if j in chunks else None for j, p in enumerate(self._paths)])  # type: ignore[misc]
            self._tasks = tuple([t if j in chunks else None for j, t in enumerate(self._tasks)])  # type: ignore[misc]
            self._files = tuple([f if j in chunks else None for j, f in enumerate(self._files)])  # type: ignore[misc]

    def pack(self) -> bytes:
        return b"".join(self.packed())

    def packed(self) -> tuple[bytes, bytes]:
        """The packed head and paths, apart (as the state keeps them: 7 MB of paths at
        100,000 points are not copied into one value and out again)."""
        paths = b"".join(self._parts(release=False))
        return self.head(), paths

    def released(self) -> Iterator[bytes]:
        """The packed paths, a chunk's at a time, each chunk's file list let go of once
        given (then `head()`, and the paths are to be read again: `take_paths`). At
        100,000 points, the lists as strings and packed whole were 18 MiB at once, at
        the very end of a build that reran everything: its peak."""
        return self._parts(release=True)

    def _parts(self, release: bool) -> Iterator[bytes]:
        """marshal.dumps((paths, tasks, files), 2), in parts (a tuple is "(", its
        length in 4 bytes, then its items); sets paths_digest once all are given."""
        paths = self._paths_read()
        if None in paths:
            raise RuntimeError("a snapshot whose chunks were let go of (keep) is not saved")
        digest = blake2b(digest_size=16)
        count = len(paths)
        items: list[str | None] = list(paths)
        if release:
            self._paths = None
        del paths
        for j in range(-1, count + 2):
            if j < 0:
                part = _TUPLE + (3).to_bytes(4, "little") + _TUPLE + count.to_bytes(4, "little")
            elif j < count:
                part = marshal.dumps(items[j], 2)
                if release:
                    items[j] = None
            else:
                part = marshal.dumps(self._tasks if j == count else self._files, 2)
            digest.update(part)
            yield part
        self.paths_digest = digest.digest()

    def head(self) -> bytes:
        """The packed head (after the paths were packed: it holds their digest)."""
        head = marshal.dumps(
            (self.declarations, self.digests.tobytes(), self.bounds, self.paths_digest), 2
        )
        size = len(_MAGIC) + _LENGTH + len(head)
        return _MAGIC + size.to_bytes(_LENGTH, "little") + head

    def _paths_read(self) -> tuple[str, ...]:
        if self._paths is None:
            raise RuntimeError("the snapshot's paths were not read (take_paths)")
        return self._paths

    def _part(self, parts: tuple[str, ...] | tuple[bytes, ...], j: int) -> str | bytes:
        """Chunk `j`'s part, unless `keep` dropped it (then a bug to ask for)."""
        self._paths_read()
        found = parts[j]
        if found is None:
            raise RuntimeError(f"the snapshot's chunk {j} was let go of (keep)")
        return found

    def paths_of(self, j: int) -> list[str]:
        """The files of chunk `j`."""
        text = self.joined_paths(j)
        return text.split("\0") if text else []

    def joined_paths(self, j: int) -> str:
        return self._part(self._paths_read(), j)  # type: ignore[return-value]

    def task_digests(self, j: int) -> bytes:
        return self._part(self._tasks, j)  # type: ignore[return-value]

    def file_digests(self, j: int) -> bytes:
        return self._part(self._files, j)  # type: ignore[return-value]


def head_length(value: bytes | None) -> int | None:
    """How many bytes of a packed snapshot are its head (from the start of `value`,
    which may be the head alone); None when `value` is not one."""
    if value is None or not value.startswith(_MAGIC) or len(value) < len(_MAGIC) + _LENGTH:
        return None
    size = int.from_bytes(value[len(_MAGIC) : len(_MAGIC) + _LENGTH], "little")
    return size if len(_MAGIC) + _LENGTH < size <= len(value) else None


def _digest(data: bytes | memoryview) -> bytes:
    return blake2b(data, digest_size=16).digest()


class Comparison:
    """How the current declarations and files compare with a saved snapshot.

    `changed`: the chunks (of `chunks`) that hold suspects: declarations found in
    no saved chunk, or files whose stats moved. `matched[j]`: the saved chunk whose
    declarations chunk j repeats, or -1.
    """

    def __init__(
        self, saved: Saved, chunks: Chunks, matched: list[int], digests: list[int | None]
    ) -> None:
        self.saved, self.chunks, self.matched = saved, chunks, matched
        self.digests = digests  # per current chunk, its stats now (None: not taken)
        # the only tasks whose files may have moved, when the caller knows them (a
        # watcher's events, with every other file as this process last saw it)
        self.suspects: list[Task] | None = None
        self.changed = [
            j
            for j, (i, d) in enumerate(zip(matched, digests, strict=True))
            if i < 0 or d != saved.digests[i]
        ]
        # the Prefetch whose children took the stats of the saved chunks' files, and
        # hand them over (see seed) until let go of
        self.prefetch: Prefetch | None = None
        self._seeded: set[int] = set()
        self._digested: dict[int, bytes] = {}  # task_digests of changed chunks, once each
        self._before: dict[int, int] | None | bool = False  # (False: not yet read)

    def let_go(self) -> None:
        """No more seeding: stop the Prefetch's children (a build may last for hours)."""
        if self.prefetch is not None:
            self.prefetch.close()
            self.prefetch = None

    def checked(self) -> None:
        """The suspects are found: only the saved chunks a current one repeats are read
        from now on (by `updated`). A parameter every point uses, edited, repeats none:
        their 12 MiB of file lists and digests at 100,000 points are dropped for the
        hours its build may last."""
        self.let_go()
        self.saved.keep({i for i in self.matched if i >= 0})
        self._before = False  # (its chunks are let go of; the digests serve `updated`)

    def seed(self, j: int, files: FileCache) -> None:
        """Before the tasks of current chunk `j` are checked: give `files` the stats the
        Prefetch's children took of them, so they are not taken again. A chunk whose
        declarations changed takes those of every saved chunk no current one repeats
        (its former self: the summary's 100,000 inputs, say)."""
        prefetch = self.prefetch
        if prefetch is None:
            return
        i = self.matched[j]
        # the paths as the tasks spell them (the same strings: 100,000 copies of the
        # summary's inputs as keys of `files` cost ~7 MB more)
        ours = paths_of_tasks(self.chunks.tasks_of(j))
        if i >= 0:  # the same declarations: the same paths, in the same order
            if i not in self._seeded:
                self._seeded.add(i)
                packed = prefetch.stats_of(i)
                if packed is not None:
                    files.seed(ours, packed)
            return
        repeated = set(self.matched)
        if j < len(self.saved.digests) and j not in repeated and j not in self._seeded:
            # new declarations over the same files (a command or a parameter edited in
            # every task): the saved chunk of the same position names them, in order
            if self.saved.joined_paths(j) == "\0".join(ours):
                self._seeded.add(j)
                packed = prefetch.stats_of(j)
                if packed is not None:
                    files.seed(ours, packed)
                return
        spelled = {p: p for p in ours}
        for k in range(len(self.saved.digests)):
            if k not in repeated and k not in self._seeded:
                self._seeded.add(k)
                packed = prefetch.stats_of(k)
                if packed is not None:
                    files.seed([spelled.get(p, p) for p in self.saved.paths_of(k)], packed)

    def suspects_in(self, j: int, stat: Callable[[str], Stat | None]) -> list[Task] | None:
        """The tasks of changed chunk `j` that may have moved since the snapshot, or None
        for every task of it (a chunk among too many new ones: a command every task has
        edited).

        A task declared as a saved one (the same task digest) whose files' stats are
        the saved ones has the stamp its record holds, as at the snapshot: only the
        others are checked against their records (an input edited: the tasks naming
        it, not the 2,048 of its chunk; ten points added: the new tasks and the
        summary). Call after seed(j), so that `stat` knows the chunk's files.
        """
        tasks, i = self.chunks.tasks_of(j), self.matched[j]
        if i >= 0:  # the same declarations: which files moved?
            moved = self._moved_in(i, stat)
            return [t for t in tasks if _names_any(t, moved)]
        declared = self._declared_before()
        if declared is None:
            return None
        # each task is compared with the stats of the saved chunk it was declared in
        # (the same path may be saved with other stats in a chunk digested later in
        # the build that saved them: a file edited while that build started); a task
        # of the same digest names only files that chunk lists
        moved_in: dict[int, set[str]] = {}
        found = []
        for t, digest in zip(tasks, array("q", self._task_digests(j)), strict=True):
            k = declared.get(digest)
            if k is None:
                found.append(t)
                continue
            moved = moved_in.get(k)
            if moved is None:
                moved = moved_in[k] = self._moved_in(k, stat)
            if moved and _names_any(t, moved):
                found.append(t)
        return found

    def _moved_in(self, k: int, stat: Callable[[str], Stat | None]) -> set[str]:
        """The files of saved chunk `k` whose stats are not those it saved (each file
        once: every simulation of a sweep reads the same parameters file)."""
        saved = self.saved
        return {
            p
            for p, was in zip(saved.paths_of(k), array("q", saved.file_digests(k)), strict=True)
            if hash(stat(p) or _MISSING) != was
        }

    def redeclared(self) -> list[Task]:
        """The tasks declared anew or edited: in a chunk no saved one repeats, with a
        declaration no saved chunk held (all of such chunks' tasks past
        _MOST_SUSPECTED). Any new edge of the graph has one of them at an end: a
        command edited among 20,000 tasks names one task, not the 2,048 of its chunk
        and what is downstream of them (localgraph.py's cycle check)."""
        chunks = self.chunks
        changed = [j for j, i in enumerate(self.matched) if i < 0]
        declared = self._declared_before()
        if declared is None:
            return [t for j in changed for t in chunks.tasks_of(j)]
        return [
            t
            for j in changed
            for t, digest in zip(chunks.tasks_of(j), array("q", self._task_digests(j)), strict=True)
            if digest not in declared
        ]

    def _task_digests(self, j: int) -> bytes:
        found = self._digested.get(j)
        if found is None:
            found = self._digested[j] = task_digests(self.chunks.tasks_of(j))
        return found

    def _declared_before(self) -> dict[int, int] | None:
        """Each task digest of the saved chunks no current one repeats, and its chunk;
        None past _MOST_SUSPECTED tasks (a command every task has edited)."""
        if self._before is False:
            others = self._unrepeated()
            saved = self.saved
            if sum(saved.bounds[k + 1] - saved.bounds[k] for k in others) > _MOST_SUSPECTED:
                self._before = None
            else:
                self._before = {d: k for k in others for d in array("q", saved.task_digests(k))}
        return self._before  # type: ignore[return-value]

    def _unrepeated(self) -> list[int]:
        """The saved chunks no current one repeats (their tasks were edited, or moved)."""
        repeated = set(self.matched)
        return [k for k in range(len(self.saved.digests)) if k not in repeated]

    @property
    def same_declarations(self) -> bool:
        """Every chunk is the saved chunk of the same position: the graph is the one
        already validated."""
        return len(self.matched) == len(self.saved.declarations) and all(
            i == j for j, i in enumerate(self.matched)
        )

    @property
    def nothing_changed(self) -> bool:
        return not self.changed and self.same_declarations

    def updated(self, stat: Callable[[str], Stat | None], chunks: set[int]) -> Saved:
        """The snapshot to save after a build that left every task done.

        `chunks` (each of whose tasks the build checked, so `stat`, the memo the
        records were written from, knows every file of theirs) and the chunks that
        changed are digested again; the others are as they were when the build
        started, and no task of theirs was recorded since.
        """
        again = chunks | set(self.changed)
        saved, current = self.saved, self.chunks
        paths: list[str] = []
        digests: list[int] = []
        tasks: list[bytes] = []
        files: list[bytes] = []
        for j in range(len(current)):
            i = self.matched[j]
            if i >= 0:  # the same declarations: the same tasks and paths
                joined = saved.joined_paths(i)
                tasks.append(saved.task_digests(i))
            else:
                joined = "\0".join(paths_of_tasks(current.tasks_of(j)))
                tasks.append(self._task_digests(j))
            paths.append(joined)
            if j in again:
                digest, each = stats_digests(joined.split("\0") if joined else [], stat)
                digests.append(digest)
                files.append(each)
            else:
                digests.append(self.digests[j])  # type: ignore[arg-type]
                files.append(saved.file_digests(i))
        return Saved(
            list(current.declarations),
            array("q", digests),
            tuple(paths),
            current.bounds,
            tasks=tuple(tasks),
            files=tuple(files),
        )


def _names_any(task: Task, paths: set[str]) -> bool:
    return bool(paths) and not (paths.isdisjoint(task.inputs) and paths.isdisjoint(task.outputs))


def fresh(
    tasks: Sequence[Task], stat: Callable[[str], Stat | None], chunks: Chunks | None = None
) -> Saved:
    """The snapshot of these declarations and files, computed from scratch (`chunks`:
    the tasks already cut where their names say)."""
    chunks = chunks or Chunks(tasks)
    paths = [paths_of_tasks(chunks.tasks_of(j)) for j in range(len(chunks))]
    both = [stats_digests(p, stat) for p in paths]
    return Saved(
        list(chunks.declarations),
        array("q", [digest for digest, _ in both]),
        tuple(["\0".join(p) for p in paths]),
        chunks.bounds,
        tasks=tuple([task_digests(chunks.tasks_of(j)) for j in range(len(chunks))]),
        files=tuple([each for _, each in both]),
    )


def chunks_like(saved: Saved, tasks: Sequence[Task]) -> Chunks:
    """`tasks` cut into chunks: where the snapshot cut them when that gives the very
    same declarations (the usual case, and no CRC per name), else where the names say
    (so that chunks an edit did not touch are found again)."""
    if saved.bounds[-1] == len(tasks):
        same = Chunks(tasks, saved.bounds)
        if same.declarations == saved.declarations:
            return same
        if chunk_bounds(tasks) == saved.bounds:  # an edited command: cut there all the same
            return same  # (not digested twice: 0.35 s at 100,000 points)
    return Chunks(tasks)


def compare(
    saved: Saved, chunks: Chunks, workers: int = 1, taken: list[int] | None = None
) -> Comparison | None:
    """Match each current chunk with a saved one and digest its files now (in `workers`
    processes); None if a worker failed. `taken`: the digests of every saved chunk,
    already taken (a Prefetch's)."""
    if chunks.declarations == saved.declarations:
        matched = list(range(len(chunks)))
    else:
        where = {d: i for i, d in enumerate(saved.declarations)}
        matched = [where.get(d, -1) for d in chunks.declarations]
    wanted = [i for i in matched if i >= 0]
    try:
        found = [taken[i] for i in wanted] if taken else digests_of(saved, wanted, workers)
    except OSError:
        return None
    now = dict(zip(wanted, found, strict=True))
    digests = [now[i] if i >= 0 else None for i in matched]
    return Comparison(saved, chunks, matched, digests)


def assumed(saved: Saved, chunks: Chunks, paths: set[str], changed: set[int]) -> Comparison:
    """The comparison when the caller knows which files changed (`paths`, named by
    the tasks of the chunks `changed`: a watcher's events) and that the
    declarations are the saved ones: no stat at all, and only the tasks naming one
    of those files are suspects."""
    matched = list(range(len(chunks)))
    digests: list[int | None] = [
        None if j in changed else saved.digests[j] for j in range(len(chunks))
    ]
    found = Comparison(saved, chunks, matched, digests)
    found.suspects = [
        t
        for j in sorted(changed)
        for t in chunks.tasks_of(j)
        if any(p in paths for p in t.inputs) or any(p in paths for p in t.outputs)
    ]
    return found


def digests_of(saved: Saved, wanted: list[int], workers: int = 1) -> list[int]:
    """The stats digests now of the saved chunks `wanted`, in order.

    Forked children share the stats when there are many and this process runs no
    other thread (forking beside a watcher's or a Dask client's threads is unsafe);
    raises OSError when a child could not deliver its share.
    """
    n = len(wanted)
    if workers > 1 and n >= 4 * workers and hasattr(os, "fork") and _alone():
        return _digests_forked(saved, wanted, workers)
    return [paths_digest(saved.paths_of(j)) for j in wanted]


class Prefetch:
    """The stats of the last snapshot's files, taken by forked children while the
    Taskfile loads: one core runs the user's loops, the others stat (at 100,000
    tasks each takes about a second).

    The children send each chunk's digest, then stay to hand over the stats of the
    chunks the build goes on to check (`stats_of`), so that the build does not stat
    those files again (a summary reading 100,000 files: ~0.5 s here). The stats stay
    in the children until asked for: a no-op holds none of them.

    Valid only when the snapshot did not change meanwhile (another build), and the
    Taskfile did nothing that may write a file while the children were statting
    (`spoil`).
    """

    def __init__(self, value: bytes, saved: Saved, workers: int) -> None:
        # a digest, not the value: ~7 MB at 100,000 tasks, held while the Taskfile loads
        self.value = value_digest(value)
        self.spoiled = False
        self.lock_seen: object = None  # the caller's note of the build lock when started
        self._groups = [list(g) for g in _groups(len(saved.digests), workers)]
        self._children: list[_Child] = []
        try:
            for group in self._groups:
                self._children.append(_fork_share(saved, group, serve=True))
        except OSError:
            self.close()
            self.spoiled = True

    @classmethod
    def start(cls, value: bytes | None, workers: int) -> Prefetch | None:
        """Fork the stat workers; None when there is nothing to stat, no fork, or other
        threads run in this process (forking beside them is unsafe)."""
        saved = Saved.parse(value)
        if value is None or saved is None or not saved.digests or not hasattr(os, "fork"):
            return None
        if not _alone():
            return None
        return cls(value, saved, workers)

    def spoil(self) -> None:
        """The Taskfile may have written files: the children's stats may predate it."""
        self.spoiled = True

    def digests(self, value: bytes | None) -> list[int] | None:
        """The chunk digests, if still about `value` (the snapshot read under the lock);
        when not, the children are stopped."""
        try:
            if self.spoiled or value_digest(value) != self.value or not self._children:
                self.close()
                return None
            return _collect(self._children, self._groups)
        except OSError:
            self.close()
            return None

    def stats_of(self, chunk: int) -> bytes | None:
        """The packed stats (fingerprint.packed_stats) of saved chunk `chunk`'s files,
        as the children took them; None when they cannot say."""
        if self.spoiled or not self._children:
            return None
        for child, group in zip(self._children, self._groups, strict=True):
            if chunk in group:
                try:
                    return child.ask(group.index(chunk))
                except OSError:
                    self.close()
                    return None
        return None

    def close(self) -> None:
        """Stop and reap the children (they may still be statting); forget the value,
        which no later comparison may match."""
        self.value = b""
        self.spoiled = True
        children, self._children = self._children, []
        for child in children:
            child.stop()


class _Child:
    """A forked stat worker: `answers` carries its digests, then the stats asked of
    it through `requests` (-1: it does not serve)."""

    def __init__(self, pid: int, answers: int, requests: int) -> None:
        self.pid, self.answers, self.requests = pid, answers, requests

    def ask(self, k: int) -> bytes:
        """The packed stats of the k-th chunk of its group; OSError if it is gone."""
        _write_all(self.requests, k.to_bytes(4, "little"))
        size = int.from_bytes(_read_exact(self.answers, 8), "little")
        return _read_exact(self.answers, size)

    def stop(self) -> None:
        for fd in (self.answers, self.requests):
            if fd >= 0:
                os.close(fd)
        self.answers = self.requests = -1
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):  # reaped by the Taskfile's code
            pass


def value_digest(value: bytes | None) -> bytes:
    """What tells two packed snapshots apart, without keeping either (b"": none): a
    digest of the head, which holds the digest of the paths (so `value` may be the
    head alone)."""
    size = head_length(value)
    if value is None:
        return b""
    return _digest(value if size is None else value[:size])


def _alone() -> bool:
    return threading.active_count() == 1


def _groups(n: int, workers: int) -> list[range]:
    share = -(-n // max(1, workers))
    return [range(k, min(k + share, n)) for k in range(0, n, share)]


def _digests_forked(saved: Saved, wanted: list[int], workers: int) -> list[int]:
    """Chunk digests, the later shares computed by forked children while we do the first."""
    groups = [[wanted[k] for k in g] for g in _groups(len(wanted), workers)]
    children: list[_Child] = []
    try:
        for group in groups[1:]:
            children.append(_fork_share(saved, group, serve=False))
        found = [paths_digest(saved.paths_of(j)) for j in groups[0]]
        return found + _collect(children, groups[1:])
    finally:
        for child in children:
            os.close(child.answers)  # a child still writing gets EPIPE and leaves
            os.waitpid(child.pid, 0)


def _collect(children: list[_Child], groups: list[list[int]]) -> list[int]:
    """The digests the children send, in order; OSError if one died before its answer."""
    found: list[int] = []
    for child, group in zip(children, groups, strict=True):
        found += array("q", _read_exact(child.answers, 8 * len(group)))
    return found


def _fork_share(saved: Saved, group: list[int], serve: bool) -> _Child:
    """Fork a child that stats the files of the saved chunks `group` and sends their
    digests; `serve`: then their packed stats, chunk by chunk, as asked."""
    answers_r, answers_w = os.pipe()
    requests_r, requests_w = os.pipe() if serve else (-1, -1)
    try:
        pid = os.fork()
    except OSError:
        for fd in (answers_r, answers_w, requests_r, requests_w):
            if fd >= 0:
                os.close(fd)
        raise
    if pid == 0:  # the child: never returns
        _child_main(saved, group, answers_r, answers_w, requests_r, requests_w)
    os.close(answers_w)
    if serve:
        os.close(requests_r)
    return _Child(pid, answers_r, requests_w)


def _child_main(
    saved: Saved, group: list[int], answers_r: int, answers_w: int, requests_r: int, requests_w: int
) -> None:
    """Stat, send the digests, serve the stats until the parent closes its end (or
    is gone), then leave without cleanup."""
    status = 1
    try:
        os.close(answers_r)
        if requests_w >= 0:
            os.close(requests_w)
        digests, kept = array("q"), []
        for j in group:
            stats = [stat_of(p) for p in saved.paths_of(j)]
            digests.append(hash(tuple([st or _MISSING for st in stats])))  # as paths_digest
            if requests_r >= 0:
                kept.append(stats)
        _write_all(answers_w, digests.tobytes())  # first: a no-op waits on nothing else
        if requests_r >= 0:
            # packed now, while the parent compares: asked, a chunk is one write (the
            # summary's 10,000 inputs: ~4 ms of an edit's build less), and it is kept
            # in a third of the memory
            packed = [packed_stats(stats) for stats in kept]
            del kept
            while asked := _read_exact(requests_r, 4, eof_ok=True):
                blob = packed[int.from_bytes(asked, "little")]
                _write_all(answers_w, len(blob).to_bytes(8, "little") + blob)
        status = 0
    finally:
        os._exit(status)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, n: int, eof_ok: bool = False) -> bytes:
    """`n` bytes from `fd`; OSError when it ends first (b"" at once if `eof_ok`)."""
    parts, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            if eof_ok and not got:
                return b""
            raise OSError("a stat worker ended before its answer")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)
