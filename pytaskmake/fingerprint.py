"""What a file is now: a stat signature (fast path) and a content hash (truth).

A file whose (mtime_ns, size, inode) equals the recorded one is taken as unchanged
without reading it; when the stat differs the content is hashed, so `touch` alone
never reruns a 20-hour simulation while a real edit always does. Nothing compares
timestamps between files, so clock skew cannot fool it.
"""

from __future__ import annotations

import hashlib
import os

Stat = tuple[int, int, int]  # (mtime_ns, size, inode)
Fingerprint = tuple[Stat, str]  # a stat and the content hash taken at that stat

_BLOCK = 1 << 20
_SMALL = 1 << 16
_UNKNOWN: Stat = (-2, -2, -2)


def stat_of(path: str) -> Stat | None:
    """The stat signature of a file, or None when it does not exist."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def hash_file(path: str) -> str:
    """BLAKE2b-128 of the file's bytes, hex; fast enough to hash gigabytes.

    Most files of a sweep are small: they are read in one call, without the 1 MiB
    buffer big files are streamed through (zeroing that buffer for a 20-byte file
    cost more than the rest of hashing it).
    """
    with open(path, "rb", buffering=0) as f:
        head = f.read(_SMALL)
        digest = hashlib.blake2b(head, digest_size=16)
        if len(head) == _SMALL:
            buffer = bytearray(_BLOCK)
            view = memoryview(buffer)
            while n := f.readinto(buffer):
                digest.update(view[:n])
    return digest.hexdigest()


class FileCache:
    """Per-run memo of stats and hashes, so each file is stat'ed and hashed at most once.

    The disk is reached only through this class; tests may subclass it to serve
    files from memory.
    """

    def __init__(self) -> None:
        self._stats: dict[str, Stat | None] = {}
        self._hashes: dict[str, str] = {}  # content hash at the stat in _stats

    def stat(self, path: str) -> Stat | None:
        st = self._stats.get(path, _UNKNOWN)
        if st is _UNKNOWN:  # (not try/except KeyError: raising costs more than stat here)
            st = self._stats[path] = stat_of(path)
        return st

    def fingerprint(self, path: str, known: Fingerprint | None = None) -> Fingerprint | None:
        """The file's current (stat, hash); `known` spares the read when its stat matches."""
        st = self.stat(path)
        if st is None:
            return None
        if known is not None and known[0] == st:
            return known
        memo = self._hashes.get(path)
        if memo is not None:
            return (st, memo)
        digest = self._hashes[path] = self.read_hash(path)
        return (st, digest)

    def read_hash(self, path: str) -> str:
        return hash_file(path)

    def forget(self, path: str) -> None:
        """Drop what is known of a file a task is about to (re)write."""
        self._stats.pop(path, None)
        self._hashes.pop(path, None)
