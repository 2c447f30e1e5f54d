"""What a file is now: a stat signature (fast path) and a content hash (truth).

A file whose (mtime_ns, size, inode) equals the recorded one is taken as unchanged
without reading it; when the stat differs the content is hashed, so `touch` alone
never reruns a 20-hour simulation while a real edit always does. Nothing compares
timestamps between files, so clock skew cannot fool it.
"""

from __future__ import annotations

import hashlib
import os
import struct
from stat import S_ISDIR, S_ISLNK, S_ISREG

Stat = tuple[int, int, int]  # (mtime_ns, size, inode)
Fingerprint = tuple[Stat, str]  # a stat and the content hash taken at that stat

_BLOCK = 1 << 20
_SMALL = 1 << 16
_STAT = struct.Struct("<qQQ")  # mtime_ns (may be negative), size, inode (may pass 2**63)
_unpack = _STAT.unpack_from
_HASHED = _STAT.size + 16  # a packed stat followed by a BLAKE2b-128 digest
_UNKNOWN = b""


def stat_of(path: str) -> Stat | None:
    """The stat signature of a file, or None when it does not exist.

    A folder (a simulator's output tree, a data folder read whole) gets the
    signature of its whole tree: a digest of every entry's path and stat in the
    mtime slot, the total size, its inode; so a file added, removed or edited
    anywhere inside moves it, as an edit of a file does.
    """
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if S_ISDIR(st.st_mode):
        return _tree_stat(path, st.st_ino)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _tree_entries(path: str) -> list[tuple[str, os.stat_result]]:
    """Every entry under a folder, by relative path in sorted order (symlinks not
    followed)."""
    found = []
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(dirs + files):
            full = os.path.join(folder, name)
            try:
                found.append((os.path.relpath(full, path), os.lstat(full)))
            except FileNotFoundError:
                continue
    found.sort(key=lambda item: item[0])
    return found


def _tree_stat(path: str, inode: int) -> Stat:
    digest = hashlib.blake2b(digest_size=8)
    total = 0
    for rel, st in _tree_entries(path):
        digest.update(
            f"{rel}\0{st.st_mode}\0{st.st_mtime_ns}\0{st.st_size}\0{st.st_ino}\n".encode()
        )
        total += st.st_size if S_ISREG(st.st_mode) else 0
    return (int.from_bytes(digest.digest(), "little") >> 1, total, inode)


def _hash_tree(path: str) -> str:
    """The content of a folder: every entry's relative path and kind, and each file's
    bytes (a symlink by its target)."""
    digest = hashlib.blake2b(digest_size=16)
    for rel, st in _tree_entries(path):
        full = os.path.join(path, rel)
        if S_ISREG(st.st_mode):
            what = "f" + hash_file(full)
        elif S_ISLNK(st.st_mode):
            what = "l" + os.readlink(full)
        else:
            what = "d" if S_ISDIR(st.st_mode) else "o"
        digest.update(f"{rel}\0{what}\n".encode())
    return digest.hexdigest()


def hash_file(path: str) -> str:
    """BLAKE2b-128 of the file's bytes, hex; fast enough to hash gigabytes.

    Most files of a sweep are small: they are read in one call, without the 1 MiB
    buffer big files are streamed through (zeroing that buffer for a 20-byte file
    cost more than the rest of hashing it).
    """
    try:
        f = open(path, "rb", buffering=0)  # noqa: SIM115 (closed below)
    except IsADirectoryError:
        return _hash_tree(path)
    with f:
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

    Each file known is one bytes value: its stat packed (24 bytes), then the 16 bytes
    of its content hash once read at that stat; None when it does not exist. A full
    build of 100,000 sweep points knows 300,000 files: as tuples of ints and hex
    strings in two dicts they took ~85 MB, packed they take ~30 MB.

    The disk is reached only through this class; tests may subclass it to serve
    files from memory.
    """

    def __init__(self) -> None:
        self._known: dict[str, bytes | None] = {}

    def stat(self, path: str) -> Stat | None:
        packed = self._known.get(path, _UNKNOWN)
        if packed is _UNKNOWN:  # (not try/except KeyError: raising costs more than stat here)
            st = stat_of(path)
            self._known[path] = None if st is None else _STAT.pack(*st)
            return st
        return None if packed is None else _unpack(packed)  # type: ignore[return-value]

    def fingerprint(self, path: str, known: Fingerprint | None = None) -> Fingerprint | None:
        """The file's current (stat, hash); `known` spares the read when its stat matches."""
        st = self.stat(path)
        if st is None:
            return None
        if known is not None and known[0] == st:
            return known
        packed = self._known.get(path)
        if packed is not None and len(packed) == _HASHED and _unpack(packed) == st:
            return (st, packed[_STAT.size :].hex())
        digest = self.read_hash(path)
        self._known[path] = _STAT.pack(*st) + bytes.fromhex(digest)
        return (st, digest)

    def learn(self, path: str, fp: Fingerprint | None) -> None:
        """What another host found of a file it just wrote (None: it is missing)."""
        self._known[path] = None if fp is None else _STAT.pack(*fp[0]) + bytes.fromhex(fp[1])

    def read_hash(self, path: str) -> str:
        return hash_file(path)

    def forget(self, path: str) -> None:
        """Drop what is known of a file a task is about to (re)write."""
        self._known.pop(path, None)
