"""The state database: what each task consumed and produced when it last succeeded.

One SQLite file (WAL mode) in `.pytaskmake/state.db`. A task's record is written
only after it succeeded and its outputs were hashed, so a killed run never records
an unfinished task. Records written together (the tasks one wake-up of the build
loop finished, restored or re-recorded) share one transaction, committed before
the loop waits again (`commit`): one commit per task cost ~90 us and a WAL page
each, and a killed build still finds every task that had finished recorded.
"""

from __future__ import annotations

import os
import sqlite3
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import count, islice
from pathlib import Path
from typing import NamedTuple

from .fanin import SlicedInputs, StoredSlice, is_fanin
from .fingerprint import Fingerprint

SCHEMA_VERSION = 5  # 5: BLAKE3 hashes, ctime and mode in stats (upgrade.py moves 3 and 4)
_UPGRADABLE = (3, 4)
APPLICATION_ID = 0x70746D6B  # "ptmk": tells our database from a foreign one

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    name TEXT PRIMARY KEY,
    ok INTEGER NOT NULL,
    action TEXT NOT NULL,
    files TEXT NOT NULL,
    stamp INTEGER NOT NULL,
    duration REAL NOT NULL,
    finished REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
"""
# Measurements of each task's runs (scheduling, -l): a table of its own, created when
# missing, so that a state file of an older release opens as it was
_USAGE = """
CREATE TABLE IF NOT EXISTS usage (
    name TEXT PRIMARY KEY,
    runs INTEGER NOT NULL,
    wall REAL NOT NULL,
    cpu REAL NOT NULL,
    rss INTEGER NOT NULL,
    peak INTEGER NOT NULL,
    action TEXT NOT NULL,
    ok INTEGER NOT NULL,
    finished REAL NOT NULL
) WITHOUT ROWID
"""
_SAVE_USAGE = """
INSERT INTO usage VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET
    runs = runs + 1, wall = excluded.wall, cpu = excluded.cpu, rss = excluded.rss,
    peak = CASE WHEN action = excluded.action THEN max(peak, excluded.rss) ELSE excluded.rss END,
    action = excluded.action, ok = excluded.ok, finished = excluded.finished
"""
# A record of more than one slice of files (a summary of 100,000 inputs) is kept a
# slice a row: written as one 14 MB row, sqlite held three copies of it at once
# (bound value, record, pages), the memory peak of a Taskfile edit at 100,000 points.
# Its row in tasks then holds "P\0<count>" (no file list starts with P). A table of
# its own, created when missing: an older release reads such a record as damaged, and
# reruns that task.
_PARTS = """
CREATE TABLE IF NOT EXISTS parts (
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    files TEXT NOT NULL,
    PRIMARY KEY (name, seq)
) WITHOUT ROWID
"""
_PARTED = "P\0"
# A fan-in's record (more than fanin.THRESHOLD inputs) is kept a slice a row with
# each slice's stamp and digest (see fanin.py), then its outputs and traced inputs
# (no stamp). Its row in tasks holds "S\0" and the seqs of its rows, in order: a
# slice kept from one record to the next keeps its row and seq, untouched (renumbering
# rows rewrote each 400 KB slice twice). A table of its own, created when missing: an
# older release reads such a record as damaged, and reruns that task.
_SLICES = """
CREATE TABLE IF NOT EXISTS slices (
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    stamp INTEGER,
    digest TEXT,
    files TEXT NOT NULL,
    PRIMARY KEY (name, seq)
) WITHOUT ROWID
"""
_SLICED = "S\0"
_BIG_TABLES = ("parts", "slices")
_SNAPSHOT = "snapshot"  # meta key of the no-op snapshot's head (see snapshot.py)
# ... and of its paths, read only when needed, in pieces of _PIECE bytes (sqlite holds
# a bound value, the record it builds and its pages at once: one row of 12 MB at
# 100,000 points cost +24.4 MB of peak; pieces of 1 MiB +3.0 MB, of 256 KiB +1.5 MB);
# a save writes only the pieces that changed (see save_snapshot)
_SNAPSHOT_PATHS = "snapshot paths "
_PIECE = 1 << 16
_AHEAD = 20_000  # rows read_ahead keeps (~6 MB): more than a chunk of the snapshot's
CLEANED = "cleaned"  # the action of a record --clean left: run it, never restore it


class OlderFormat(sqlite3.DatabaseError):
    """A database of an older format, opened read-only: it cannot be upgraded now."""


class Usage(NamedTuple):
    """What a task's runs measured: the last run's wall and CPU seconds and peak
    resident memory (bytes; 0 unknown), and the largest peak of its runs since its
    action last changed (what mem="auto" reserves, with a margin)."""

    runs: int
    wall: float
    cpu: float
    rss: int
    peak: int
    ok: bool
    finished: float


class TaskRecord:
    """What a task's last run consumed and produced (files: path -> fingerprint).

    `stamp` digests the stats of all its files; when the files' stats today give
    the same stamp nothing changed, and the file list is never decoded (no-op path).
    `traced`: the files a trace (or a depfile) found it reading besides its declared
    inputs (see tracing.py); they make it stale as inputs do.
    """

    __slots__ = ("ok", "action", "stamp", "duration", "_store", "_name", "_decoded", "_sliced")

    def __init__(
        self,
        ok: bool,
        action: str,
        stamp: int,
        duration: float,
        store: StateDB,
        name: str,
        parted: bool = False,
    ) -> None:
        """`parted`: its files may be kept in rows of their own (a big record)."""
        self.ok, self.action, self.stamp, self.duration = ok, action, stamp, duration
        self._store, self._name = store, name  # files read only when the stamp differs
        self._decoded: Files | None = None
        # a fan-in's slices, then its outputs and traced inputs (see fanin.py); False
        # for any other record; None: not asked yet
        self._sliced: tuple[list[StoredSlice], Files] | None | bool = None if parted else False

    def _decode(self) -> Files:
        if self._decoded is None:
            self._decoded = self._damage_is_none(
                lambda: decode_parts(self._store._files_of(self._name))
            )
        return self._decoded

    def _damage_is_none(self, read: Callable[[], Files]) -> Files:
        try:
            return read()
        except (ValueError, IndexError, sqlite3.DatabaseError):  # damaged: trust none of it
            self.ok = False
            return ({}, {}, {})

    @property
    def slices(self) -> list[StoredSlice] | None:
        """A fan-in's slices as recorded (seq, stamp, digest); None for a record
        without (a smaller task's, or one written before slices)."""
        found = self._sliced_parts()
        return None if found is None else found[0]

    def _sliced_parts(self) -> tuple[list[StoredSlice], Files] | None:
        if self._sliced is None:
            self._sliced = False
            try:
                found = self._store._slices_of(self._name)
            except (ValueError, sqlite3.DatabaseError):
                self.ok = False
                return None
            if found is not None:
                slices, texts = found
                self._sliced = (slices, self._damage_is_none(lambda: decode_parts(texts)))
        return self._sliced or None

    def slice_files(self, seqs: list[int]) -> dict[str, Fingerprint]:
        """The inputs recorded in these slices (see slices)."""
        if not seqs:
            return {}
        return self._damage_is_none(
            lambda: decode_parts(self._store._slice_texts(self._name, seqs))
        )[0]

    @property
    def inputs(self) -> dict[str, Fingerprint]:
        return self._decode()[0]

    @property
    def outputs(self) -> dict[str, Fingerprint]:
        sliced = self._sliced_parts()
        return self._decode()[1] if sliced is None else sliced[1][1]

    @property
    def traced(self) -> dict[str, Fingerprint]:
        sliced = self._sliced_parts()
        return self._decode()[2] if sliced is None else sliced[1][2]


Files = tuple[dict[str, Fingerprint], dict[str, Fingerprint], dict[str, Fingerprint]]


def encode_files(
    inputs: Mapping[str, Fingerprint],
    outputs: Mapping[str, Fingerprint],
    traced: Mapping[str, Fingerprint] | None = None,
) -> str:
    """Flat NUL-separated text: parsing 100,000 of these must take milliseconds.
    Tags: I an input, O an output, T a traced input. Made in one go (most records
    name a few files); the same text as encode_parts joined by NUL."""
    return _encoded((("I", inputs.items()), ("O", outputs.items()), ("T", (traced or {}).items())))


def encode_inputs(files: Mapping[str, Fingerprint]) -> str:
    """A fan-in slice's files as its row keeps them (see fanin.Slice.text)."""
    return _encoded((("I", files.items()),))


def encode_parts(
    inputs: Mapping[str, Fingerprint],
    outputs: Mapping[str, Fingerprint],
    traced: Mapping[str, Fingerprint] | None = None,
) -> list[str]:
    """encode_files a slice of files at a time: each part holds at most _SLICE_FILES
    files of one kind (a summary reading 100,000 files would otherwise hold 100,000
    small strings beside the text they are joined into)."""
    return [
        _encoded(((tag, part),))
        for tag, files in (("I", inputs), ("O", outputs), ("T", traced or {}))
        for part in _slices(files)
    ]


def _encoded(tagged: Iterable[tuple[str, Iterable[tuple[str, Fingerprint]]]]) -> str:
    return "\0".join(
        [
            f"{tag}\0{p}\0{m}\0{s}\0{i}\0{c}\0{o}\0{d}"
            for tag, files in tagged
            for p, ((m, s, i, c, o), d) in files
        ]
    )


def _slices(files: dict[str, Fingerprint]) -> Iterator[list[tuple[str, Fingerprint]]]:
    """The items of `files`, _SLICE_FILES at a time (never all of them in one list)."""
    items = iter(files.items())
    while part := list(islice(items, _SLICE_FILES)):
        yield part


_SLICE_FILES = 8192  # files encoded or decoded at a time
_FIELDS = 8  # per file: I, O or T, path, mtime_ns, size, inode, ctime_ns, mode, hash


def decode_files(text: str) -> tuple[dict[str, Fingerprint], dict[str, Fingerprint]]:
    """The declared inputs and outputs of a record's text (see decode_record)."""
    inputs, outputs, _ = decode_record(text)
    return inputs, outputs


def decode_record(text: str) -> Files:
    """encode_files backwards: (inputs, outputs, traced inputs); raises ValueError or
    IndexError on damaged text."""
    return decode_parts([text])


def decode_parts(texts: Iterable[str]) -> Files:
    """encode_parts backwards (or one text of encode_files, as older releases wrote a
    record of any size): (inputs, outputs, traced inputs); ValueError or IndexError on
    damage.

    Split a slice of files at a time, so that decoding 100,000 files never holds
    600,000 field strings at once (~40 MB); parts are taken from `texts` one by one.
    """
    inputs: dict[str, Fingerprint] = {}
    outputs: dict[str, Fingerprint] = {}
    traced: dict[str, Fingerprint] = {}
    by_tag = {"I": inputs, "O": outputs, "T": traced}
    for text in texts:
        _decode_into(text, by_tag)
    return inputs, outputs, traced


def _decode_into(text: str, by_tag: dict[str, dict[str, Fingerprint]]) -> None:
    limit = _FIELDS * _SLICE_FILES
    rest = text
    while rest:
        f = rest.split("\0", limit)
        if len(f) > limit:  # more slices follow this one
            rest = f.pop()
            if not rest:  # a NUL after the last field of a slice
                raise ValueError("damaged record: empty field")
        else:  # the last slice (exactly `limit` fields is a whole record: 8,192 files)
            rest = ""
        if len(f) % _FIELDS:
            raise ValueError("damaged record: a file's fields cut short")
        tags = f[::_FIELDS]
        target = by_tag.get(tags[0])
        if target is not None and tags.count(tags[0]) == len(tags):
            # a slice of one kind (every part of encode_parts): converted column by
            # column in C, ~2x faster than file by file (a summary's 100,000 inputs)
            ints = [map(int, f[k::_FIELDS]) for k in range(2, 7)]
            stats = zip(*ints, strict=True)
            target.update(zip(f[1::_FIELDS], zip(stats, f[7::_FIELDS], strict=True), strict=True))
            continue
        for i in range(0, len(f), _FIELDS):
            target = by_tag.get(f[i])
            if target is None:
                raise ValueError(f"damaged record: tag {f[i]!r}")
            stat = (int(f[i + 2]), int(f[i + 3]), int(f[i + 4]), int(f[i + 5]), int(f[i + 6]))
            target[f[i + 1]] = (stat, f[i + 7])


def _seqs(text: str) -> list[int]:
    """The rows a fan-in's record names (its row's text after "S\\0")."""
    body = text[len(_SLICED) :]
    return [int(q) for q in body.split(",")] if body else []


def read_snapshot(directory: Path) -> bytes | None:
    """The saved snapshot of the state in `directory`, read without the build lock and
    without creating anything; None when there is none or it cannot be read.

    For prefetching only: the build compares it with the one it reads under the lock.
    """
    path = directory / "state.db"
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        with db:  # (one read transaction: the head and the paths of the same snapshot)
            db.execute("BEGIN")
            head = _snapshot_in(db)
            return None if head is None else head + (_snapshot_paths_in(db) or b"")
    except sqlite3.Error:  # locked by a writer, say: no prefetch
        return None
    finally:
        db.close()


def _snapshot_in(db: sqlite3.Connection) -> bytes | None:
    """The snapshot's head kept in `db`; raises sqlite3.DatabaseError when unreadable."""
    found = db.execute("SELECT value FROM meta WHERE key = ?", (_SNAPSHOT,)).fetchone()
    return bytes(found[0]) if found else None


def _pieces(data: bytes | Iterable[bytes]) -> Iterator[bytes | memoryview]:
    """`data` (whole, or its parts in order) cut in pieces of _PIECE bytes."""
    if isinstance(data, bytes):
        view = memoryview(data)
        yield from (view[k : k + _PIECE] for k in range(0, len(data), _PIECE))
        return
    held = bytearray()
    for part in data:
        held += part
        while len(held) >= _PIECE:
            yield bytes(held[:_PIECE])
            del held[:_PIECE]
    if held:
        yield bytes(held)


def _snapshot_paths_in(db: sqlite3.Connection) -> bytes | None:
    """The snapshot's paths, its pieces joined (the head's digest tells whether they
    are all there, and its own)."""
    pieces = db.execute(
        "SELECT value FROM meta WHERE key >= ? AND key < ? ORDER BY key",
        (_SNAPSHOT_PATHS, _SNAPSHOT_PATHS + "\uffff"),
    ).fetchall()
    return b"".join(bytes(p) for (p,) in pieces) if pieces else None


class StateDB:
    """Task records in SQLite; a damaged or foreign file is set aside, never trusted."""

    def __init__(self, directory: Path, readonly: bool = False) -> None:
        """Open (creating) the state of `directory`; `readonly` never writes to the disk.

        A read-only view (-n, --list, --graph) of a missing or damaged database is
        an empty in-memory one, so looking never changes what a build will find.
        Records are read on first use (`load`): a no-op answered by the snapshot
        reads one row, not 200,000.
        """
        self.path = directory / "state.db"
        self.readonly = readonly
        self.warning: str | None = None
        self._rows: dict[str, tuple[int, str, int, float]] | None = None
        self._snapshot_may_exist = True
        # names written since load() whose rows are not kept in _rows (a full build of
        # 200,000 tasks would hold ~60 MB of them): row() reads only these from the
        # database; any other name missing from _rows has no record (with a count
        # instead of names, a full build of 10,000 points made 100,000 queries)
        self._unlisted: set[str] = set()
        self._ahead: dict[str, tuple[int, str, int, float] | None] = {}  # see read_ahead
        self.lost_records = False  # damage found mid-build: records of unread tasks lost
        self._last_record: tuple[str, TaskRecord] | None = None  # see record()
        self._parted: set[str] | None = None  # tasks whose record is in parts (_PARTS)
        if readonly:
            self._db = self._open_readonly()
        else:
            directory.mkdir(parents=True, exist_ok=True)
            try:
                self._db = self._open(self.path)
            except sqlite3.DatabaseError as exc:
                self._db = self._replace_damaged(str(exc))

    def _open(self, path: Path | str, readonly: bool = False) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            if app_id == 0 and not tables:
                db.executescript(_SCHEMA)
                db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif app_id != APPLICATION_ID or version not in (*_UPGRADABLE, SCHEMA_VERSION):
                raise sqlite3.DatabaseError("not a pytaskmake state database of this version")
            elif version in _UPGRADABLE and readonly:
                raise OlderFormat("written by an older pytaskmake; the next build upgrades it")
            elif version in _UPGRADABLE:
                self._upgrade(db, version)
            if not readonly and "usage" not in tables:
                db.execute(_USAGE)
            if not readonly and "parts" not in tables:
                db.execute(_PARTS)
            if not readonly and "slices" not in tables:
                db.execute(_SLICES)
            if not readonly:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _upgrade(self, db: sqlite3.Connection, version: int) -> None:
        """Move a format 3 or 4 database to this one in one transaction (see upgrade.py)."""
        from .upgrade import upgrade

        started = time.monotonic()
        db.executescript(_SCHEMA)  # (format 3 lacked the meta table; commits first)
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                db.execute("COMMIT")  # another process upgraded it while we waited
                return
            hashed = upgrade(db, version)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.warning = (
            f"upgraded the state in {self.path.parent} to format {SCHEMA_VERSION} "
            f"(BLAKE3 hashes): {hashed} recorded files hashed once in "
            f"{time.monotonic() - started:.1f} s; nothing reruns for it"
        )

    def _open_readonly(self) -> sqlite3.Connection:
        if self.path.exists():
            try:
                return self._open(self.path, readonly=True)
            except OlderFormat:
                return self._upgraded_copy()
            except sqlite3.DatabaseError as exc:
                self._unreadable(str(exc))
        return self._open(":memory:")

    def _upgraded_copy(self) -> sqlite3.Connection:
        """A look (-n, -l) at an older database: upgraded in memory, the file untouched."""
        disk = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
        try:
            copy = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            disk.backup(copy)
        finally:
            disk.close()
        self._upgrade(copy, copy.execute("PRAGMA user_version").fetchone()[0])
        copy.execute(_USAGE)
        self.warning = None  # (the build will say it, when it upgrades the file)
        return copy

    def _unreadable(self, why: str) -> None:
        self.warning = (
            f"state database {self.path} is unreadable ({why}); "
            "the next build will set it aside and rerun every task"
        )

    def _replace_damaged(self, why: str) -> sqlite3.Connection:
        aside = self.path.with_name(f"state.db.damaged-{int(time.time())}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists():
                os.replace(src, Path(str(aside) + suffix))
        self.warning = (
            f"state database {self.path} was unreadable ({why}); moved it to {aside.name} "
            "and treating every task as never run"
        )
        return self._open(self.path)

    def load(self) -> None:
        """Read every record, in one pass over every page so that damage shows now.

        A damaged database is set aside (read-only: ignored) with a warning, and
        every task is then treated as never run.
        """
        if self._rows is not None:
            return
        try:
            rows = self._db.execute(
                "SELECT name, ok, action, stamp, duration, length(files) FROM tasks"
            )
            self._rows = {name: (ok, action, stamp, d) for name, ok, action, stamp, d, _ in rows}
            # row() reads _rows from now on: the rows read ahead are copies (a Taskfile
            # edit touching every task read them all first: 40 MB at 100,000 points)
            self._ahead.clear()
            if self._parted_names():
                for table in _BIG_TABLES:
                    try:
                        self._db.execute(f"SELECT sum(length(files)) FROM {table}").fetchone()
                    except sqlite3.OperationalError as exc:
                        if "no such table" not in str(exc):  # (a read-only look at an older file)
                            raise
        except sqlite3.DatabaseError as exc:
            self._last_record = None
            self._db.close()
            if self.readonly:
                self._unreadable(str(exc))
                self._db = self._open(":memory:")
            else:
                self._db = self._replace_damaged(str(exc))
            self._rows = {}

    def _load_midway(self) -> None:
        """load() during a build told which tasks to read: damage found now loses the
        records of tasks it did not read, so no snapshot may vouch for them."""
        warning = self.warning
        self.load()
        if self.warning is not warning:
            self.lost_records = True

    def snapshot(self) -> bytes | None:
        """The saved no-op snapshot's head (snapshot.pack, split), or None."""
        try:
            return _snapshot_in(self._db)
        except sqlite3.DatabaseError:  # no meta table yet, or a damaged page: no shortcut
            return None

    def snapshot_paths(self) -> bytes | None:
        """The saved snapshot's paths (the head says whether they are its own), or None."""
        try:
            return _snapshot_paths_in(self._db)
        except sqlite3.DatabaseError:
            return None

    def save_snapshot(
        self, head: bytes | Callable[[], bytes], paths: bytes | Iterable[bytes] = b""
    ) -> bytes:
        """Keep the snapshot, in one transaction: its paths in pieces of _PIECE, then
        its head (`head()` once `paths`, given in parts, are all written: the head
        holds their digest). Returns the head written.

        A piece the last snapshot left the same is not written again: a command edited
        among 20,000 tasks rewrote 1.2 MB of pieces (2.4 MB through the WAL, then
        copied into the file when the state closed), for a few changed bytes. The
        pieces outlive their head (_drop_snapshot), which alone vouches for them."""
        insert = "INSERT OR REPLACE INTO meta VALUES (?, ?)"
        select = "SELECT value FROM meta WHERE key = ?"
        with self.transaction():
            count = 0
            for k, piece in enumerate(_pieces(paths)):
                key = f"{_SNAPSHOT_PATHS}{k:06d}"
                was = self._db.execute(select, (key,)).fetchone()
                if was is None or was[0] != piece:
                    self._db.execute(insert, (key, piece))
                count = k + 1
            self._db.execute(
                "DELETE FROM meta WHERE key >= ? AND key < ?",
                (f"{_SNAPSHOT_PATHS}{count:06d}", _SNAPSHOT_PATHS + "\uffff"),
            )
            written = head if isinstance(head, bytes) else head()
            self._db.execute(insert, (_SNAPSHOT, written))
            self._snapshot_may_exist = True
        return written

    def _drop_snapshot(self) -> None:
        """Before any record changes: a snapshot must never vouch for changed records.
        Its head goes; its pieces stay for the next save to compare (without the head
        that holds their digest, nothing reads them as a snapshot)."""
        if self._snapshot_may_exist:
            self._db.execute("DELETE FROM meta WHERE key = ?", (_SNAPSHOT,))
            self._snapshot_may_exist = False

    def record(self, name: str) -> TaskRecord | None:
        """A task's record; the last one asked for is kept until anything is written, as
        checking a stale task, keying it for the run cache and starting it each ask
        (a summary's record of 100,000 files is decoded once, not three times)."""
        last = self._last_record
        if last is not None and last[0] == name:
            return last[1]
        row = self.row(name)
        if row is None:
            return None
        parted = name in self._parted_names()
        record = TaskRecord(bool(row[0]), row[1], row[2], row[3], self, name, parted)
        self._last_record = (name, record)
        return record

    def read_ahead(self, names: list[str]) -> None:
        """Before load(), fetch the rows of `names` that row() is about to be asked for,
        500 per query (a chunk of 2,048 tasks asked one by one cost 0.1 s).

        At most _AHEAD rows are kept: those read before are dropped first (row() reads
        a dropped one again, 11 us). A Taskfile edit reaching every task of a sweep
        reads every row here, chunk by chunk; kept, they were 59 MiB at 100,000 points.
        """
        if self._rows is not None:
            return
        if len(self._ahead) + len(names) > _AHEAD:
            self._ahead.clear()
            names = names[:_AHEAD]
        wanted = [n for n in names if n not in self._ahead]
        try:
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                marks = ",".join("?" * len(part))
                found = self._db.execute(
                    f"SELECT name, ok, action, stamp, duration FROM tasks WHERE name IN ({marks})",
                    part,
                )
                ahead = self._ahead
                ahead.update(dict.fromkeys(part))
                for name, ok, action, stamp, duration in found:
                    ahead[name] = (ok, action, stamp, duration)
        except sqlite3.OperationalError:  # locked, disk full...: not damage
            raise
        except sqlite3.DatabaseError:
            self._ahead.clear()
            self._load_midway()

    def row(self, name: str) -> tuple[int, str, int, float] | None:
        """(ok, action digest, stamp, duration) of a task, without building a record.

        Before load() (a build told by the snapshot which few tasks to check), each
        row is read when asked for (or was, by read_ahead); a damaged page then sets
        the database aside as load() does, and the task counts as never run.
        """
        rows = self._rows
        if rows is None:
            ahead = self._ahead
            if name in ahead:
                return ahead[name]
        else:
            found = rows.get(name)
            if found is not None or name not in self._unlisted:
                return found
        try:
            return self._db.execute(
                "SELECT ok, action, stamp, duration FROM tasks WHERE name = ?", (name,)
            ).fetchone()
        except sqlite3.OperationalError:  # locked, disk full...: not damage
            raise
        except sqlite3.DatabaseError:
            if self._rows is not None:
                raise
            self._load_midway()
            return self.row(name)

    def _files_of(self, name: str) -> Iterator[str]:
        """The texts of a record's files: its row's, or its parts one by one (a part
        missing raises ValueError: the record is damaged)."""
        found = self._db.execute("SELECT files FROM tasks WHERE name = ?", (name,)).fetchone()
        text = found[0] if found else ""
        if text.startswith(_SLICED):
            yield from self._slice_texts(name, _seqs(text))
            return
        if not text.startswith(_PARTED):
            yield text
            return
        total = int(text[len(_PARTED) :])
        parts = self._db.execute(
            "SELECT seq, files FROM parts WHERE name = ? ORDER BY seq", (name,)
        )
        seen = 0
        for seq, part in parts:
            if seq != seen:
                raise ValueError(f"damaged record: part {seen} of {name} missing")
            seen += 1
            yield part
        if seen != total:
            raise ValueError(f"damaged record: {total - seen} parts of {name} missing")

    def _slices_of(self, name: str) -> tuple[list[StoredSlice], Iterator[str]] | None:
        """A fan-in record's slices, and the texts of its other parts (outputs, traced
        inputs); None when its record is not kept in slices."""
        seqs = self._sliced_seqs(name)
        if seqs is None:
            return None
        rows = self._db.execute("SELECT seq, stamp, digest FROM slices WHERE name = ?", (name,))
        by_seq = {seq: (stamp, digest) for seq, stamp, digest in rows}
        if any(seq not in by_seq for seq in seqs):
            raise ValueError(f"damaged record: parts of {name} missing")
        if any(stamp is not None and digest is None for stamp, digest in by_seq.values()):
            raise ValueError(f"damaged record: a slice of {name} without its digest")
        slices = [StoredSlice(q, *by_seq[q]) for q in seqs if by_seq[q][0] is not None]
        others = [q for q in seqs if by_seq[q][0] is None]
        return slices, self._slice_texts(name, others)

    def _sliced_seqs(self, name: str) -> list[int] | None:
        """The rows of a fan-in's record in order, or None: not kept in slices."""
        found = self._db.execute(  # (as bytes: text functions stop at a NUL)
            "SELECT substr(CAST(files AS BLOB), 1, 2) = CAST(? AS BLOB), files FROM tasks "
            "WHERE name = ?",
            (_SLICED, name),
        ).fetchone()
        return _seqs(found[1]) if found and found[0] else None

    def _slice_texts(self, name: str, seqs: list[int]) -> Iterator[str]:
        """The texts of these parts of a fan-in's record, one by one."""
        query = "SELECT files FROM slices WHERE name = ? AND seq = ?"
        for seq in seqs:
            found = self._db.execute(query, (name, seq)).fetchone()
            if found is None:
                raise ValueError(f"damaged record: part {seq} of {name} missing")
            yield found[0]

    def _parted_names(self) -> set[str]:
        """The tasks whose record is in parts or slices (few: a record of over 8,192
        files)."""
        if self._parted is None:
            self._parted = set()
            for table in _BIG_TABLES:
                try:
                    found = self._db.execute(f"SELECT DISTINCT name FROM {table}")
                    self._parted.update(name for (name,) in found)
                except sqlite3.OperationalError as exc:
                    if "no such table" not in str(exc):  # (a read-only look at an older file)
                        raise
        return self._parted

    def _drop_parts(self, names: Iterable[str]) -> None:
        parted = self._parted_names()
        if dropped := [(n,) for n in names if n in parted]:
            for table in _BIG_TABLES:
                self._db.executemany(f"DELETE FROM {table} WHERE name = ?", dropped)
            parted.difference_update(n for (n,) in dropped)

    def durations(self, names: list[str], index: dict[str, int]) -> array:
        """Last known run time of each of `names` (`index`: their positions), by
        position; 0 when unknown. For ETAs and scheduling."""
        found = array("d", bytes(8 * len(names)))
        if self._rows is None and len(names) > 10_000:  # one pass beats 10,000 queries
            try:  # (not load(): every row held for the whole build, 59 MiB at 100,000 points)
                where = index.get
                for name, seconds in self._db.execute("SELECT name, duration FROM tasks"):
                    k = where(name)
                    if k is not None and seconds:
                        found[k] = seconds
                return found
            except sqlite3.OperationalError:  # locked, disk full...: not damage
                raise
            except sqlite3.DatabaseError:
                self._load_midway()
                found = array("d", bytes(8 * len(names)))  # (what was read is set aside)
        for k, name in enumerate(names):
            row = self.row(name)
            if row is not None and row[3]:
                found[k] = row[3]
        return found

    def save_success(
        self,
        name: str,
        action: str,  # the action's digest
        inputs: Mapping[str, Fingerprint],
        outputs: Mapping[str, Fingerprint],
        duration: float,
        stamp: int,
        traced: Mapping[str, Fingerprint] | None = None,
    ) -> None:
        """Record a success; `stamp` is the rebuilder's digest of these files' stats."""
        if isinstance(inputs, SlicedInputs) or is_fanin(len(inputs)):
            files = self._write_sliced(name, SlicedInputs.of(inputs), outputs, traced)
            self._write_row(name, 1, action, files, stamp, duration)
            return
        if len(inputs) + len(outputs) + len(traced or ()) <= _SLICE_FILES:  # (see _PARTS)
            parts = [encode_files(inputs, outputs, traced)]
        else:
            parts = encode_parts(inputs, outputs, traced)
        self._write(name, 1, action, parts, stamp, duration)

    def save_usage(
        self, name: str, action: str, wall: float, cpu: float, rss: int, ok: bool
    ) -> None:
        """Record what one run measured (in the open batch of records)."""
        if not self._db.in_transaction:
            self._db.execute("BEGIN")
        self._db.execute(_SAVE_USAGE, (name, wall, cpu, rss, rss, action, int(ok), time.time()))

    def usage(self, names: list[str] | None = None) -> dict[str, Usage]:
        """The measurements of `names` (default: every task measured); a state file
        from before they were kept has none."""
        query = "SELECT name, runs, wall, cpu, rss, peak, ok, finished FROM usage"
        try:
            if names is None or len(names) > 500:
                wanted = None if names is None else set(names)
                rows = self._db.execute(query).fetchall()
                return {r[0]: Usage(*r[1:]) for r in rows if wanted is None or r[0] in wanted}
            marks = ",".join("?" * len(names))
            rows = self._db.execute(f"{query} WHERE name IN ({marks})", names).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # read-only look at an older state file
                return {}
            raise
        return {r[0]: Usage(*r[1:]) for r in rows}

    def peaks(self, names: list[str]) -> dict[str, int]:
        """The largest recorded peak (bytes) of each of `names` that has one (most
        tasks of a sweep have none: a peak below pytaskmake's own is not told)."""
        query = "SELECT name, peak FROM usage WHERE peak > 0"
        try:
            if len(names) <= 500:  # a few tasks to run among many: no pass over the table
                marks = ",".join("?" * len(names))
                return dict(self._db.execute(f"{query} AND name IN ({marks})", names))
            rows = self._db.execute(query).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return {}
            raise
        wanted = set(names) if rows else ()
        return {n: p for n, p in rows if n in wanted}

    def save_failure(self, name: str, action: str, duration: float) -> None:
        self._write(name, 0, action, [], 0, duration)

    def _write(
        self, name: str, ok: int, action: str, parts: list[str], stamp: int, duration: float
    ) -> None:
        self._begin_write(name)
        self._drop_parts((name,))
        if len(parts) > 1:  # (see _PARTS)
            self._db.executemany(
                "INSERT INTO parts VALUES (?, ?, ?)", [(name, i, p) for i, p in enumerate(parts)]
            )
            self._parted_names().add(name)
            files = f"{_PARTED}{len(parts)}"
        else:
            files = parts[0] if parts else ""
        self._write_row(name, ok, action, files, stamp, duration)

    def _begin_write(self, name: str) -> None:
        self._last_record = None
        self._ahead.pop(name, None)
        if not self._db.in_transaction:  # a batch, until commit()
            self._db.execute("BEGIN")
        self._drop_snapshot()

    def _write_sliced(
        self,
        name: str,
        inputs: SlicedInputs,
        outputs: Mapping[str, Fingerprint],
        traced: Mapping[str, Fingerprint] | None,
    ) -> str:
        """A fan-in's files (see _SLICES): a slice kept as recorded keeps its row, not
        decoded, encoded or written again; new slices get rows of their own. Returns
        what its row in tasks holds."""
        db = self._db
        self._begin_write(name)
        db.execute("DELETE FROM parts WHERE name = ?", (name,))
        had = dict(db.execute("SELECT seq, stamp FROM slices WHERE name = ?", (name,)))
        fresh = count(max(had, default=-1) + 1)  # (above every row: none is reused)
        order: list[int] = []
        rows: list[tuple[str, int, int | None, str | None, str]] = []
        for s in inputs.slices:
            if s.kept:
                if had.get(s.seq) != s.stamp or s.stamp is None:
                    raise RuntimeError(f"slice {s.seq} of {name}'s record is gone")
                order.append(s.seq)
            else:
                text = s.text if s.text is not None else encode_inputs(s.files or {})
                rows.append((name, next(fresh), s.stamp, s.digest, text))
                order.append(rows[-1][1])
        for text in encode_parts({}, outputs, traced):
            rows.append((name, next(fresh), None, None, text))
            order.append(rows[-1][1])
        kept = set(order)
        if gone := [(name, q) for q in had if q not in kept]:
            db.executemany("DELETE FROM slices WHERE name = ? AND seq = ?", gone)
        db.executemany("INSERT INTO slices VALUES (?, ?, ?, ?, ?)", rows)
        self._parted_names().add(name)
        return _SLICED + ",".join(map(str, order))

    def _write_row(
        self, name: str, ok: int, action: str, files: str, stamp: int, duration: float
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, ok, action, files, stamp, duration, time.time()),
        )
        rows = self._rows
        if rows is not None and name in rows:
            rows[name] = (ok, action, stamp, duration)
        elif rows is not None:  # not kept in memory: row() reads it from the database
            self._unlisted.add(name)

    def forget(self, names: list[str]) -> None:
        """After --clean: each task's record becomes "cleaned" (it must run, and not be
        restored from the run cache: a user who cleaned wants it computed again)."""
        self._last_record = None
        self._ahead.clear()
        now = time.time()
        with self.transaction():
            self._drop_snapshot()
            self._drop_parts(names)
            self._db.executemany(
                "INSERT OR REPLACE INTO tasks VALUES (?, 0, ?, '', 0, 0.0, ?)",
                [(n, CLEANED, now) for n in names],
            )
        if self._rows is not None:
            for n in names:
                self._rows[n] = (0, CLEANED, 0, 0.0)

    def names(self) -> list[str]:
        """Every task that has a record (for --clean-dead and --rerun-failed)."""
        self.load()
        assert self._rows is not None
        return list(self._rows)

    def failed(self) -> list[str]:
        """Tasks whose last run failed (not those --clean left to run)."""
        self.load()
        assert self._rows is not None
        return [n for n, row in self._rows.items() if not row[0] and row[1] != CLEANED]

    def delete(self, names: list[str]) -> None:
        """Drop these records for good (tasks that no longer exist: --clean-dead)."""
        self._last_record = None
        self._ahead.clear()
        with self.transaction():
            self._drop_snapshot()
            self._drop_parts(names)
            self._db.executemany("DELETE FROM tasks WHERE name = ?", [(n,) for n in names])
        if self._rows is not None:
            for n in names:
                self._rows.pop(n, None)

    def commit(self) -> None:
        """Commit the open batch of records, if any: before waiting, and at the end."""
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    def transaction(self) -> _Transaction:
        """Group many writes into one commit (refreshing stats after a no-op)."""
        return _Transaction(self._db, self._rolled_back)

    def _rolled_back(self) -> None:
        self._snapshot_may_exist = True  # the DELETE of the snapshot may be undone too
        self._parted = None  # parts dropped or written may be back or gone: read again

    def close(self) -> None:
        try:
            self.commit()  # the build commits its last batch itself; this is a safety net
        except sqlite3.Error:
            pass  # the error that stopped the build is already on its way
        self._db.close()


class _Transaction:
    def __init__(self, db: sqlite3.Connection, on_rollback: Callable[[], None]) -> None:
        self._db = db
        self._on_rollback = on_rollback

    def __enter__(self) -> None:
        if self._db.in_transaction:  # a batch of records: it is committed first
            self._db.execute("COMMIT")
        self._db.execute("BEGIN")

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self._db.execute("COMMIT")
        else:
            self._db.execute("ROLLBACK")
            self._on_rollback()
