"""The run cache: outputs of every successful run, content-addressed, to restore later.

An entry is keyed by the task's action signature plus its inputs' content hashes
(the very data the rebuilder compares), and maps each output path to a blob named
by its hash. Blobs appear atomically (hard link, or copy + rename). Entries go to
an append-only journal of the writing process (`index/*.log`, one line each), so
storing costs one write() and no new file per task, and concurrent builds sharing
a directory (even over NFS) never write the same file. When the process is done
with its journal it writes beside it the sorted key prefixes of its entries
(`index/*.keys`), so that a later build answers a miss without reading the
journals (see RunCache.peek). Restores copy (or reflink) and verify the blob's hash
first: a corrupt blob is dropped, never restored.
"""

from __future__ import annotations

import errno
import heapq
import json
import mmap
import os
import shutil
import socket
import sys
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from stat import S_ISDIR
from typing import TypeVar

from blake3 import blake3

from .digest import blake2b
from .fanin import SlicedInputs, is_fanin
from .fingerprint import Fingerprint, content_of, hash_file
from .sizes import parse_size  # noqa: F401 (its old home)

PRINTED = "\0printed"  # an entry's key for what its run printed (no path holds a NUL)
_FICLONE = 0x40049409  # Linux ioctl: share extents copy-on-write (btrfs, xfs)
_T = TypeVar("_T")


@dataclass(frozen=True)
class CacheStats:
    entries: int
    blobs: int
    size: int  # bytes held by blobs only the cache references (what --prune counts)
    shared: int = 0  # bytes of blobs that are also a current output (hard links)
    disk: int = 0  # the disk blocks the cache's own blobs take (a small file: 4 KiB)


class CorruptEntry(Exception):
    """A cached blob no longer matches its hash (edited through a hard link, disk error)."""


def cache_key(
    signature: str,
    outputs: tuple[str, ...],
    inputs: Mapping[str, Fingerprint],
    traced: Mapping[str, Fingerprint] | None = None,
) -> str:
    """One key per (action, declared outputs, input contents, traced input contents).

    A fan-in's inputs (fanin.py) count by their slices' digests, in order: a slice
    as recorded is not hashed again (a summary of 100,000 inputs re-keyed after one
    edit hashes one slice).
    """
    h = blake2b(digest_size=20)
    h.update(signature.encode())
    for path in outputs:
        h.update(b"\0O" + path.encode())
    if isinstance(inputs, SlicedInputs) or is_fanin(len(inputs)):
        for piece in SlicedInputs.of(inputs).slices:
            h.update(b"\0S" + piece.digest.encode())
        files: Mapping[str, Fingerprint] = traced or {}
    else:
        files = {**inputs, **traced} if traced else inputs
    for path in sorted(files):
        h.update(b"\0I" + path.encode() + b"=" + files[path][1].encode())
    return h.hexdigest()


class RunCache:
    """A cache directory: `blobs/HASH` and the entry journals `index/*.log`."""

    def __init__(self, directory: Path, *, read_only: bool = False) -> None:
        """`read_only`: for looking only (-n): not even a journal's .keys file is
        written on its behalf (see _present)."""
        self.root = directory
        self.read_only = read_only
        self.blobs = directory / "blobs"
        self.index = directory / "index"
        self.tmp = directory / "tmp"
        for d in (self.blobs, self.index, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        self._blobs_str, self._tmp_str = str(self.blobs), str(self.tmp)
        # (the host: a journal whose writer is not alive here may be another host's)
        self._token = f"{os.getpid()}-{os.urandom(4).hex()}-{_HOST}"
        self._counter = 0
        self._journal: int | None = None
        self._entries: dict[str, _Entry] | None = None
        self._journals_read: list[Path] = []
        self._read_upto: dict[Path, int] = {}  # how much of each journal _load read
        self._scans = 0
        self._keys: _KeySet | None = None  # keys with an entry, when read (see peek)
        self._indexed: bool | None = None  # whether those are cheap to read (see peek)
        self._key_hits = 0  # lookups that found their key in _keys, each then searched
        self._put = array("Q")  # the key prefixes of this process's entries (its .keys)
        self._put_odd = False  # it put a key not in hex: no .keys file then
        self._drops = 0  # drops it wrote
        self.stored = 0  # bytes of outputs stored by this process (see keep_within)

    # -- the index ---------------------------------------------------------------

    def _load(self, fresh: bool = False) -> dict[str, _Entry]:
        """Replay every journal once per process, in time order (lazily: a no-op never pays).

        `fresh` replays them again, this process's own puts included (see _append).
        """
        if self._entries is None or fresh:
            self._journals_read, records = self._listed(self._read_journals)
            records.sort(key=lambda r: r[-1])  # type: ignore[arg-type, return-value]
            entries: dict[str, _Entry] = {}
            for record in records:
                _apply(entries, record)
            self._entries = entries
        return self._entries

    def _read_journals(self, journals: list[Path]) -> list[list[object]]:
        """The well-formed lines of `journals` (a torn last line, a killed writer's, is
        skipped), and how many bytes of each were read (see _dead_in)."""
        self._read_upto = {}
        records: list[list[object]] = []
        for journal in journals:
            try:
                data = journal.read_bytes()
            except OSError:
                continue
            self._read_upto[journal] = len(data)
            records += _parsed(data.decode(errors="replace").split("\n"))
        return records

    def _append(self, record: list[object]) -> None:
        if self._journal is None:
            path = self.index / f"{self._token}.log"
            self._journal = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(self._journal, (json.dumps(record) + "\n").encode())
        if record[0] == "drop":
            self._drops += 1
        elif record[0] == "put":
            found = _prefix(str(record[1]))
            if found is None:
                self._put_odd = True
            else:
                self._put.append(found)
        # A put is not kept in memory: a build stores each key once and never looks it
        # up again (outputs belong to one task), and 200,000 entries would cost ~60 MB.
        if self._entries is not None and record[0] != "put":
            _apply(self._entries, record)
        # (a key dropped since _keys was read still reads as present there: it is
        # searched for, and found dropped; see peek)

    def lookup(self, key: str) -> dict[str, str] | None:
        """Output path -> blob hash for `key`, or None; a hit counts as a use (for LRU).

        The first few lookups of a process search the journals for the key instead
        of loading them all: an edit among 200,000 cached tasks looks up three keys,
        and loading the whole index for them cost ~250 MB of memory. When the
        journals have their .keys files, the keys present are read from those at
        once and only a key among them is searched for (see peek).
        """
        found = self.peek(key)
        if found is not None:
            self._append(["use", key, time.time()])
        return found

    def peek(self, key: str) -> dict[str, str] | None:
        """lookup() that writes nothing (not even the use): for -n, which touches nothing.

        A search reads every journal: at 170 MB of journals (a cache that kept a few
        sweeps of 200,000 tasks) ten points added, 21 lookups and all misses, spent
        1.8 s searching. When the journals' .keys files cover nearly all of them
        (`_cheap_keys`), a miss is answered from those keys first."""
        if self._entries is not None:
            entry = self._entries.get(key)
        elif self._scans < _SEARCHED_FIRST and not self._cheap_keys():
            self._scans += 1
            entry = self._scan(key)
        elif key not in self._present():
            return None  # a miss, answered without loading every entry
        elif self._key_hits < _SCANNED_LOOKUPS:
            self._key_hits += 1
            entry = self._scan(key)
        else:
            entry = self._load().get(key)
        return None if entry is None else dict(entry.outputs)

    def _cheap_keys(self) -> bool:
        """Whether the keys present can be read without parsing more than
        _CHEAP_BYTES of journals: nearly all of them have their .keys file."""
        if self._keys is not None:
            return True
        if self._indexed is None:
            uncovered = 0
            for journal in self.index.glob("*.log"):
                try:
                    uncovered += os.stat(journal).st_size - _covered(journal)
                except OSError:
                    pass  # (compacted away meanwhile)
            self._indexed = uncovered <= _CHEAP_BYTES
        return self._indexed

    def _present(self) -> _KeySet:
        """The keys that have an entry, read once: a build whose lookups mostly miss
        (a parameter every simulation uses, changed) no longer loads every entry the
        cache ever recorded (400,002 entries: 365 MiB and 4.0 s; their keys as a set
        of strings: 53 MiB, as _KeySet: 3 MiB). Misses only, from here: a key found
        here is searched for (see peek).

        A journal's .keys file stands for the part of it it covers; only the rest is
        parsed. A key dropped since its entry was put may then read as present: it is
        searched for, and found dropped."""
        if self._keys is None:
            self._keys = self._listed(self._key_set)[1]
        return self._keys

    def _key_set(self, journals: list[Path]) -> _KeySet:
        """The keys present in `journals` (see _present)."""
        parts = [(j, _read_keys(j)) for j in journals]
        dropped: dict[str, float] = {}
        drops: dict[Path, int] = {}
        for journal, indexed in parts:
            start = 0 if indexed is None else indexed.covered
            for key, moment in _keyed(journal, '["drop", "', start):
                dropped[key] = max(dropped.get(key, moment), moment)
                drops[journal] = drops.get(journal, 0) + 1
        runs: list[array] = []
        tags: list[str | None] = []
        odd: list[str] = []
        for journal, indexed in parts:
            if indexed is not None:
                runs.append(indexed.prefixes)
                tags.append(journal.name if indexed.whole else None)
            dropping = drops.get(journal, 0)
            runs.append(self._parsed_keys(journal, indexed, dropped, dropping, odd))
            tags.append(None)
        return _KeySet(odd, runs, tags)

    def _listed(self, read: Callable[[list[Path]], _T]) -> tuple[list[Path], _T]:
        """The journals listed now, and `read` of them; listed and read again while
        one listed was gone before it could be read (a fold or a prune in another
        process replaced it: its lines are in the journal written in its place,
        renamed in before it was removed). Read as empty, its entries were misses
        for the whole build."""
        for _ in range(_RELISTS):
            journals = sorted(self.index.glob("*.log"))
            found = read(journals)
            if all(j.exists() for j in journals):
                break
        return journals, found

    def _scan(self, key: str) -> _Entry | None:
        """The entry of `key`, from the journal lines that name it (in time order)."""
        needle = json.dumps(key).encode()
        elsewhere = self._keys.elsewhere(key) if self._keys is not None else ()
        records = self._listed(
            lambda journals: [
                r
                for j in journals
                if j.name not in elsewhere  # (a large journal whose keys tell it not)
                for r in _lines_naming(j, needle)
            ]
        )[1]
        records.sort(key=lambda r: r[-1])  # type: ignore[arg-type, return-value]
        entries: dict[str, _Entry] = {}
        for record in records:
            if record[1] == key:
                _apply(entries, record)
        return entries.get(key)

    def store(self, key: str, outputs: dict[str, Fingerprint], printed: bytes = b"") -> None:
        """Add the outputs just produced under `key`: blobs first, then the entry.

        `printed`, what the task printed (compiler warnings, a summary), is kept too,
        so that a restore can replay it as Bazel does."""
        modes = {p: fp[0][4] for p, fp in outputs.items()}  # (the stat has the mode)
        if any(S_ISDIR(m) for m in modes.values()):
            return  # a folder output is recorded and set aside whole, not cached
        self.stored += sum(fp[0][1] for fp in outputs.values())
        for path, (_, digest) in outputs.items():
            self._add_blob(path, self._blob_name(content_of(digest)))
        kept = {p: _with_mode(content_of(fp[1]), modes[p]) for p, fp in outputs.items()}
        if printed:
            kept[PRINTED] = self._add_bytes(printed)
        self._append(["put", key, kept, time.time()])

    def _add_bytes(self, data: bytes) -> str:
        """A blob of `data` (written beside, renamed into place); returns its digest."""
        digest = blake3(data).hexdigest()
        blob = self._blob_name(digest)
        if not os.path.exists(blob):
            self._counter += 1
            temp = f"{self._tmp_str}/{self._token}-{self._counter}"
            try:
                with open(temp, "wb") as f:
                    f.write(data)
                os.replace(temp, blob)
            except BaseException:
                _unlink_quietly(temp)
                raise
        return digest

    def printed(self, entry: dict[str, str]) -> bytes:
        """What the run cached in `entry` printed (b"" when nothing, or its blob is bad)."""
        digest = entry.get(PRINTED)
        if digest is None:
            return b""
        try:
            with open(self._blob_name(digest), "rb") as f:
                data = f.read()
        except OSError:
            return b""
        return data if blake3(data).hexdigest() == digest else b""

    def drop(self, key: str) -> None:
        self._append(["drop", key, time.time()])

    # -- blobs -------------------------------------------------------------------

    def _blob_name(self, digest: str) -> str:
        return f"{self._blobs_str}/{digest}"

    def _add_blob(self, source: str, blob: str) -> None:
        """Hard-link the fresh output into the cache: no copy, no extra space, atomic."""
        try:
            os.link(source, blob)
            return
        except FileExistsError:
            return  # the same content is cached already
        except OSError:
            pass  # another filesystem, or no hard links: copy, then rename into place
        self._counter += 1
        temp = f"{self._tmp_str}/{self._token}-{self._counter}"
        try:
            shutil.copyfile(source, temp)
            os.replace(temp, blob)
        except BaseException:
            _unlink_quietly(temp)
            raise

    def restore(self, key: str, entry: dict[str, str]) -> None:
        """Copy each blob to its output path; raises CorruptEntry (entry dropped) on a bad blob."""
        outputs = outputs_of(entry)
        for path, value in outputs.items():
            digest = _blob_of(value)[0]
            try:
                actual = hash_file(self._blob_name(digest))
            except OSError:
                actual = None
            if actual != digest:
                self.drop(key)
                raise CorruptEntry(f"cache blob for {path} is missing or corrupt; entry dropped")
        for path, value in outputs.items():
            digest, mode = _blob_of(value)
            self._copy_out(self._blob_name(digest), path, mode)

    def _copy_out(self, blob: str, path: str, mode: int | None = None) -> None:
        """A private copy of the blob (reflink when the filesystem can), with the mode
        the output had (a linked program keeps its executable bit), renamed into place."""
        parent = os.path.dirname(path) or "."
        os.makedirs(parent, exist_ok=True)
        temp = os.path.join(parent, f".{os.path.basename(path)}.restore-{os.urandom(4).hex()}")
        try:
            _clone_or_copy(blob, temp)
            if mode is not None:
                os.chmod(temp, mode)
            os.replace(temp, path)
        except BaseException:
            _unlink_quietly(temp)
            raise

    def _blob_files(self) -> dict[str, os.stat_result]:
        found = {}
        for blob in self.blobs.iterdir():
            try:
                found[blob.name] = blob.stat()
            except FileNotFoundError:
                pass
        return found

    # -- size ------------------------------------------------------------------

    def stats(self) -> CacheStats:
        blobs = self._blob_files()
        size = sum(st.st_size for st in blobs.values() if st.st_nlink == 1)
        shared = sum(st.st_size for st in blobs.values() if st.st_nlink > 1)
        disk = sum(st.st_blocks * 512 for st in blobs.values() if st.st_nlink == 1)
        return CacheStats(len(self._load(fresh=True)), len(blobs), size, shared, disk)

    def prune(self, max_bytes: int) -> tuple[int, int]:
        """Drop least-recently-used entries until blobs fit in `max_bytes`, then compact.

        Blobs still hard-linked from a current output cost no extra space; a blob no
        entry needs is removed all the same (the output keeps its file), and a limit
        of 0 empties the cache. Returns (entries removed, bytes freed). A blob no entry
        read here needs but linked since the read began is kept: a build running
        beside this one is about to name it (its inode's ctime tells: a link sets it).
        """
        with _index_lock(self.root, wait=True):
            return self._prune(max_bytes)

    def _prune(self, max_bytes: int) -> tuple[int, int]:
        began = time.time() - 1.0  # (filesystem clocks tick coarser than ours)
        # closed before the read: all of such a journal is read (one that closes during
        # the read may have put entries after it read: it is kept)
        closed = {j for j in self.index.glob("*.log") if _closed(j)}
        entries = self._load(fresh=True)
        uses: dict[str, int] = {}
        for entry in entries.values():
            for value in entry.outputs.values():
                digest = _blob_of(value)[0]
                uses[digest] = uses.get(digest, 0) + 1
        blobs = self._blob_files()
        orphans = [d for d, st in blobs.items() if d not in uses and st.st_ctime < began]
        freed = sum(self._remove_blob(d, blobs[d]) for d in orphans)
        size = sum(st.st_size for st in blobs.values() if st.st_nlink == 1) - freed
        removed = 0
        dropped: list[str] = []
        for key in sorted(entries, key=lambda k: entries[k].used):
            if size <= max_bytes and max_bytes > 0:  # (0: empty it, links to outputs too)
                break
            removed += 1
            dropped.append(key)
            for value in entries.pop(key).outputs.values():
                digest = _blob_of(value)[0]
                uses[digest] -= 1
                if uses[digest] == 0 and digest in blobs:
                    gained = self._remove_blob(digest, blobs[digest])
                    size, freed = size - gained, freed + gained
        self._compact(entries, dropped, closed)
        return removed, freed

    def _remove_blob(self, digest: str, st: os.stat_result) -> int:
        """Remove a blob no entry needs; returns the bytes that frees (none when it is
        also a current output's file: that output stays, only the link goes)."""
        _unlink_quietly(self._blob_name(digest))
        return st.st_size if st.st_nlink == 1 else 0

    def keep_within(self, limit: int, stored: int) -> tuple[int, int] | None:
        """After a build that stored `stored` bytes: prune to `limit` when the cache may
        have passed it. The size last measured is kept in `size`, so that a build far
        under the limit does not stat every blob; returns prune()'s answer, or None."""
        mark = self.root / "size"
        try:
            known, when = (float(x) for x in mark.read_text().split())
        except (OSError, ValueError):
            known, when = float("inf"), 0.0
        if known + stored <= limit and time.time() - when < 86400:
            if stored:
                _write_quietly(mark, f"{int(known + stored)} {when}")
            return None
        size = self._blob_bytes()  # without loading the index (~250 MB at 200,000 entries)
        found = self.prune(limit) if size > limit else None
        if found is not None:
            size = self._blob_bytes()
        _write_quietly(mark, f"{size} {time.time()}")
        return found

    def _blob_bytes(self) -> int:
        """Bytes the blobs take beyond the outputs they are hard-linked to."""
        total = 0
        with os.scandir(self.blobs) as entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if st.st_nlink == 1:
                    total += st.st_size
        return total

    def _compact(self, entries: dict[str, _Entry], dropped: list[str], closed: set[Path]) -> None:
        """Rewrite the journals as one, holding only the live entries.

        A journal another build may still be appending to (not in `closed`, the
        journals closed before the index was read) is kept: its entries put after
        it was read would go with it (a prune while a build ran
        lost them: rerun instead of restored). The entries `dropped` are then written
        dropped, so that its copies of them do not come back."""
        compact = self.index / f"compact-{self._token}.log"
        own = self.index / f"{self._token}.log"  # (closed here: its records go in compact)
        kept = [j for j in self._journals_read if j not in (compact, own) and j not in closed]
        lines = "".join(
            json.dumps(["put", key, e.outputs, e.used]) + "\n" for key, e in entries.items()
        )
        now = time.time()
        drops = dropped + _dead_in(kept, entries, self._read_upto) if kept else []
        lines += "".join(json.dumps(["drop", key, now]) + "\n" for key in drops)
        temp = self.tmp / f"{self._token}-compact"
        temp.write_text(lines)
        _unlink_quietly(str(compact.with_suffix(".keys")))  # (of an earlier compaction)
        os.replace(temp, compact)
        prefixes = [_prefix(key) for key in entries]
        if None not in prefixes:
            closed = len(drops) | _BY_WRITER  # (written whole: nobody appends to it)
            self._write_keys(compact, len(lines.encode()), array("Q", prefixes), closed)  # type: ignore[arg-type]
        if self._journal is not None:
            os.close(self._journal)
            self._journal = None
        for journal in [*self._journals_read, own]:
            if journal.name != compact.name and journal not in kept:
                _unlink_quietly(str(journal))
                _unlink_quietly(str(journal.with_suffix(".keys")))

    def close(self) -> None:
        """Done with this process's journal: close it, and write its .keys file."""
        if self._journal is None:
            return
        fd, self._journal = self._journal, None
        try:
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if not self._put_odd:  # (uses alone too: what it covers is not parsed again)
            own = self.index / f"{self._token}.log"
            self._write_keys(own, size, self._put, self._drops | _BY_WRITER)
        self._fold()

    def _fold(self) -> None:
        """Fold the small closed journals into one, once there are _FOLD_AT of them.

        Every build that looks a key up reads each journal's .keys file, and a hit
        searches each small journal: a project edited daily for months left hundreds
        of them (132 here: ~8 ms of each edit's build, growing with every build).
        The folded journal holds their well-formed lines, each once (records carry
        their moment, so their order does not matter), and its .keys file. Skipped
        while a prune holds the index lock: it could not tell the folded journal's
        entries from those it dropped."""
        journals = sorted(self.index.glob("*.log"))
        if len(journals) < _FOLD_AT:
            return
        sizes = {
            j: size for j in journals if (size := _size(j)) is not None and size <= _FOLD_SMALL
        }
        foldable = sorted((j for j in sizes if _closed(j)), key=sizes.__getitem__)
        if len(foldable) < _FOLD_AT:  # (many large journals: a fold would gain little)
            return
        taken, total = [], 0
        for journal in foldable:  # the smallest first, up to _FOLD_BYTES in all
            total += sizes[journal]
            if total > _FOLD_BYTES and len(taken) >= 2:
                break
            taken.append(journal)
        with _index_lock(self.root, wait=False) as held:
            if held:
                self._fold_closed(taken)

    def _fold_closed(self, journals: list[Path]) -> None:
        lines: dict[str, list[object]] = {}  # each well-formed line once, and its record
        folded: list[Path] = []
        for journal in journals:
            try:
                text = journal.read_text(errors="replace")
            except OSError:
                continue  # (folded or compacted away meanwhile)
            folded.append(journal)
            for line in text.split("\n"):
                if line not in lines and (record := _parsed([line])):
                    lines[line] = record[0]
        if len(folded) < 2:
            return
        records = lines.values()
        keys = [_prefix(str(r[1])) for r in records if r[0] == "put"]
        drops = sum(1 for r in records if r[0] == "drop")
        data = "".join(line + "\n" for line in lines).encode()
        target = self.index / f"fold-{self._token}.log"
        temp = self.tmp / f"{self._token}-fold"
        try:
            temp.write_bytes(data)
            if None not in keys:  # (its keys first: a reader finds both, or the journal alone)
                self._write_keys(target, len(data), array("Q", keys), drops | _BY_WRITER)  # type: ignore[arg-type]
            os.replace(temp, target)
        except OSError:
            _unlink_quietly(str(temp))
            return
        for journal in folded:
            _unlink_quietly(str(journal))
            _unlink_quietly(str(journal.with_suffix(".keys")))

    def _parsed_keys(
        self,
        journal: Path,
        indexed: _Keys | None,
        dropped: dict[str, float],
        drops: int,
        odd: list[str],
    ) -> array:
        """The sorted prefixes of the keys `journal` puts past its .keys file (all of
        them when it has none) and no later drop removed; a key not in hex goes to
        `odd`. A journal parsed whole gets its .keys file then (a killed build's, or
        one written before .keys files were), so the next build need not parse it;
        so does one whose .keys file left much of it out (written by a reader while
        its build still ran)."""
        start = 0 if indexed is None else indexed.covered
        reached = [start]
        every, kept = array("Q"), array("Q")
        whole = True  # every key in hex: a .keys file can hold them
        for key, moment in _keyed(journal, '["put", "', reached[0], reached):
            found = _prefix(key)
            live = dropped.get(key, -1.0) < moment
            if found is None:
                whole = False
                if live:
                    odd.append(key)
                continue
            every.append(found)
            if live:
                kept.append(found)
        if whole and not self.read_only and reached[0] - start >= _WORTH_KEYS:
            if indexed is not None:
                every.extend(indexed.prefixes)
                drops += indexed.drops
            self._write_keys(journal, reached[0], every, drops)
        return _sorted(kept)

    def _write_keys(self, journal: Path, covered: int, prefixes: array, drops: int) -> None:
        """Beside `journal`, the sorted prefixes of the keys it puts in its first
        `covered` bytes, and how many drops those hold (renamed into place: a reader
        sees all of it or none). Not written is only slower: the journal is then
        parsed."""
        ordered = _sorted(prefixes)
        if sys.byteorder == "big":
            ordered.byteswap()
        temp = self.tmp / f"{self._token}-keys"
        try:
            head = _KEYS_MAGIC + covered.to_bytes(8, "little") + drops.to_bytes(8, "little")
            temp.write_bytes(head + ordered.tobytes())
            os.replace(temp, journal.with_suffix(".keys"))
        except OSError:
            _unlink_quietly(str(temp))


@dataclass
class _Entry:
    outputs: dict[str, str]
    used: float


# Past this many lookups, a process loads the whole index. A search in place reads
# the journals at memory speed, a load parses them as JSON (~100 times slower): at
# 200,000 entries a load took 3.5 s, a search ~20 ms.
_SCANNED_LOOKUPS = 64
# Lookups searched before the keys present are read, when the journals lack .keys
# files: a search reads ~20 times faster than a parse, and the parse writes them
_SEARCHED_FIRST = 16
# Journal bytes without a .keys file past which the keys present are not read before
# the first lookups (parsed at ~150 MB/s here: ~25 ms)
_CHEAP_BYTES = 4 << 20
# a .keys file: this, the journal bytes it covers, the drops among them, then the prefixes
_KEYS_MAGIC = b"ptmkeys2"
_KEYS_HEAD = 24
_BY_WRITER = 1 << 63  # in the drops word: written by the journal's own build, closing it
_WORTH_KEYS = 64 << 10  # a journal parsed whole gets a .keys file past this many bytes
# small closed journals at which a build closing its own folds them into one
# (RunCache._fold), the smallest first, up to _FOLD_BYTES in all; a journal past
# _FOLD_SMALL bytes (a sweep's full build, or a fold) stays as it is: folding is
# never a rewrite of the large ones
_FOLD_AT = 64
_FOLD_SMALL = 256 << 10
_FOLD_BYTES = 4 << 20


def _size(journal: Path) -> int | None:
    try:
        return os.stat(journal).st_size
    except OSError:
        return None


@contextmanager
def _index_lock(root: Path, wait: bool) -> Iterator[bool]:
    """The cache's `lock` file, held (flock) while a prune rewrites the index or a
    build folds journals; yields False when `wait` is False and another holds it."""
    import fcntl

    try:
        fd = os.open(root / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # (releases the lock)


def _dead_in(journals: list[Path], entries: dict[str, _Entry], upto: dict[Path, int]) -> list[str]:
    """The keys `journals` put, in their first `upto` bytes (what the prune read),
    that are not live in `entries` (a drop read elsewhere, a prune before): a
    compaction that keeps those journals writes them dropped again, since its own
    file replaces the drops it read. A key put after the read is its build's."""
    return list(
        {
            k
            for j in journals
            for k, _ in _keyed(j, '["put", "', 0, None, upto.get(j, 0))
            if k not in entries
        }
    )


def _closed(journal: Path) -> bool:
    """Whether no build may still append to `journal`: its .keys file, written by its
    own build as it closed it (not by a reader), covers it whole; it is a compaction's
    or a fold's (written whole); or it was written on this host (its name says) by a
    process no longer running. Another host's journal (a cache shared over NFS)
    counts as closed only by its .keys file. A journal named by an earlier release
    (no host in its name) whose writer's number no process here has reads as closed,
    as every journal did before."""
    indexed = _read_keys(journal)
    if indexed is not None and indexed.by_writer and indexed.covered == indexed.size:
        return True
    pid, _, rest = journal.stem.partition("-")
    if journal.name.startswith(("compact-", "fold-")) or not pid.isdigit():
        return True
    host = rest.partition("-")[2]
    if host and host != _HOST:
        return False
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, OverflowError):  # (no such process; no such number)
        return True
    except OSError:  # (another user's: running)
        return False
    return False


def _covered(journal: Path) -> int:
    """How many bytes of `journal` its .keys file covers (0: none)."""
    try:
        with open(journal.with_suffix(".keys"), "rb") as f:
            head = f.read(16)
        size = os.stat(journal).st_size
    except OSError:
        return 0
    covered = int.from_bytes(head[8:16], "little")
    return covered if head[:8] == _KEYS_MAGIC and covered <= size else 0


def _read_keys(journal: Path) -> _Keys | None:
    """What `journal`'s .keys file says; None when it has none, or one that does not
    read so."""
    try:
        with open(journal.with_suffix(".keys"), "rb") as f:
            data = f.read()
        size = os.stat(journal).st_size
    except OSError:
        return None
    covered = int.from_bytes(data[8:16], "little")
    flags = int.from_bytes(data[16:_KEYS_HEAD], "little")
    if data[:8] != _KEYS_MAGIC or len(data) < _KEYS_HEAD or len(data) % 8 or covered > size:
        return None
    found = array("Q")
    found.frombytes(data[_KEYS_HEAD:])
    if sys.byteorder == "big":
        found.byteswap()
    return _Keys(found, covered, flags & ~_BY_WRITER, size, bool(flags & _BY_WRITER))


@dataclass(frozen=True)
class _Keys:
    """A journal's .keys file, read."""

    prefixes: array  # sorted
    covered: int  # the journal's first bytes it stands for
    drops: int  # drop lines among them
    size: int  # the journal's size when read
    by_writer: bool  # written by the journal's own build as it closed it (see _closed)

    @property
    def whole(self) -> bool:
        """Whether it tells every key the journal holds or drops: a lookup that finds
        a key's prefix elsewhere need not search this journal."""
        return self.covered == self.size and self.drops == 0


def _lines_naming(path: Path, needle: bytes) -> list[list[object]]:
    """The well-formed journal lines of `path` holding `needle`, searched in place."""
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            found = []
            at = m.find(needle)
            while at >= 0:
                start, end = m.rfind(b"\n", 0, at) + 1, m.find(b"\n", at)
                end = len(m) if end < 0 else end
                found += _parsed([m[start:end].decode(errors="replace")])
                at = m.find(needle, end)
            return found
    except (OSError, ValueError):  # gone, or empty (an empty file cannot be mapped)
        return []


_RUN = 65_536  # keys sorted at a time (see _KeySet)
_RELISTS = 8  # times the index is listed again when a journal was replaced while read
# this host, in journal names: a writer not running here may be running elsewhere
_HOST = blake2b(socket.gethostname().encode(), digest_size=3).hexdigest()


class _KeySet:
    """Run-cache keys, held as the first 64 bits of each in a sorted array: 8 bytes
    a key instead of ~130 for a string in a set (600,002 keys: ~5 MB, not ~80 MB).

    It answers "maybe present" for a key sharing those bits with one that is: the
    caller searches the journals for every key found here, so such a key is a miss
    found a little later, never a wrong hit. A key not written in hex (none this
    release writes) is kept whole.
    """

    def __init__(
        self, keys: Iterable[str], runs: Iterable[array] = (), tags: Iterable[str | None] = ()
    ) -> None:
        """`keys` and the small `runs` (sorted prefixes, as .keys files hold them: a
        build that adds ten points writes one of 21 keys), sorted _RUN keys at a time;
        the large runs kept as they are. Sorting them all as one list held ~44 bytes a
        key at once (880,000 keys after a few sweeps of 200,000 tasks: 37 MiB more at
        the peak of the build that read them). A few runs are searched each until
        many lookups have been made, then merged.

        `tags` name the runs that are a journal's every key (see `elsewhere`)."""
        self._odd: set[str] = set()
        kept: list[array] = []
        self._tagged: list[tuple[str, array]] | None = []
        pool = array("Q")
        for run, tag in zip_longest(runs, tags):
            if len(run) >= _RUN:
                kept.append(run)
                if tag is not None:
                    self._tagged.append((tag, run))
                continue
            pool.extend(run)
            if len(pool) >= _RUN:
                kept.append(array("Q", sorted(pool)))
                pool = array("Q")
        for key in keys:
            found = _prefix(key)
            if found is None:
                self._odd.add(key)
                continue
            pool.append(found)
            if len(pool) >= _RUN:
                kept.append(array("Q", sorted(pool)))
                pool = array("Q")
        if pool:
            kept.append(array("Q", sorted(pool)))
        self._runs = kept
        self._asked = 0
        if len(kept) > _FEW_RUNS:
            self._merge()

    def _merge(self) -> None:
        """One run of them all (the journals they came from are then not told apart)."""
        self._runs = [array("Q", heapq.merge(*self._runs))]
        self._tagged = None

    def elsewhere(self, key: str) -> set[str]:
        """The tags of the runs that do not hold `key`: their journals need not be
        searched for it (none once the runs are merged)."""
        found = _prefix(key)
        if found is None or not self._tagged:
            return set()
        return {tag for tag, ordered in self._tagged if not _holds(ordered, found)}

    def __contains__(self, key: str) -> bool:
        found = _prefix(key)
        if found is None:
            return key in self._odd
        if len(self._runs) > 1:
            self._asked += 1
            if self._asked > _MERGE_AFTER:  # (a parameter edited: 200,000 lookups)
                self._merge()
        return any(_holds(ordered, found) for ordered in self._runs)


def _sorted(prefixes: array) -> array:
    """`prefixes` sorted, _RUN at a time then merged: a build that stored 200,000
    entries sorted as one list held 7 MB of ints at once, at its very end (a parameter
    edited at 100,000 points peaks near 300 MB)."""
    if len(prefixes) <= _RUN:
        return array("Q", sorted(prefixes))
    runs = [array("Q", sorted(prefixes[k : k + _RUN])) for k in range(0, len(prefixes), _RUN)]
    return array("Q", heapq.merge(*runs))


def _holds(ordered: array, found: int) -> bool:
    i = bisect_left(ordered, found)
    return i < len(ordered) and ordered[i] == found


_FEW_RUNS = 16  # sorted runs searched one by one (journals' .keys files, mostly)
_MERGE_AFTER = 256  # lookups before they are merged (~0.3 s at 1,000,000 keys)


def _prefix(key: str) -> int | None:
    """The first 64 bits of a hex key, or None for a key that is not hex (int() alone
    would read "-1", "+f" or "a_b" too)."""
    head = key[:16]
    if len(head) < 16 or head.strip(_HEX):
        return None
    return int(head, 16)


_HEX = "0123456789abcdefABCDEF"


def _keyed(
    path: Path,
    prefix: str,
    start: int = 0,
    reached: list[int] | None = None,
    end: int | None = None,
) -> Iterator[tuple[str, float]]:
    """(key, moment) of each well-formed journal line starting with `prefix` (a put
    or a drop), read a line at a time from byte `start`; `reached[0]` is kept at the
    byte past the last whole line read. A line is `["put", "KEY", {...}, MOMENT]` as
    json.dumps writes it: the key and moment are read in place; a line that does
    not read so (torn by a killed writer) is parsed as JSON or skipped. `end`: no line
    that ends past this byte."""
    tag = prefix.encode()
    try:
        with open(path, "rb") as f:
            if start:
                f.seek(start)
            at = start
            for raw in f:
                if end is not None and at + len(raw) > end:
                    return  # (past `end`: written after it was read)
                whole = raw[-1:] == b"\n"  # (else the last line: being written, or torn,
                if whole:  # or whole but for its newline: read, never counted as covered)
                    at += len(raw)
                    if reached is not None:
                        reached[0] = at
                if not raw.startswith(tag):
                    continue
                line = raw.decode(errors="replace").rstrip("\n")
                try:
                    key = line[len(prefix) : line.index('"', len(prefix))]
                    if not whole or not line.endswith("]") or "\\" in key:
                        raise ValueError(line)
                    yield key, float(line[line.rindex(", ") + 2 : -1])
                except ValueError:
                    for record in _parsed([line]):
                        yield str(record[1]), float(record[-1])  # type: ignore[arg-type]
    except OSError:
        return


def _parsed(lines: list[str]) -> list[list[object]]:
    """The well-formed records among journal lines; a torn line (killed writer) is skipped."""
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, list) and len(record) >= 3 and isinstance(record[-1], float | int):
            records.append(record)
    return records


def _apply(entries: dict[str, _Entry], record: list[object]) -> None:
    kind, key, moment = record[0], str(record[1]), float(record[-1])  # type: ignore[arg-type]
    if kind == "put" and isinstance(record[2], dict):
        entries[key] = _Entry(record[2], moment)
    elif kind == "use" and key in entries:
        entries[key].used = max(entries[key].used, moment)
    elif kind == "drop":
        entries.pop(key, None)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except (FileNotFoundError, IsADirectoryError):  # (gone; or a folder put there by hand)
        pass


def _clone_or_copy(source: Path, target: str) -> None:
    import fcntl

    with open(source, "rb") as src, open(target, "wb") as dst:
        try:
            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
            return
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY):
                raise
        shutil.copyfileobj(src, dst, 1 << 20)


def _write_quietly(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError:
        pass


def outputs_of(entry: dict[str, str]) -> dict[str, str]:
    """The output paths of an entry (without what the run printed)."""
    return {p: v for p, v in entry.items() if p != PRINTED} if PRINTED in entry else entry


def _with_mode(digest: str, st_mode: int) -> str:
    """An entry's value for an output: its content digest, then ":MODE" (octal) when
    the file has an executable bit (entries written before keep the bare digest)."""
    mode = st_mode & 0o7777
    return f"{digest}:{mode:o}" if mode & 0o111 else digest


def _blob_of(value: str) -> tuple[str, int | None]:
    """(content digest, mode or None) of an entry's value for an output."""
    digest, _, mode = value.partition(":")
    return digest, (int(mode, 8) if mode else None)
