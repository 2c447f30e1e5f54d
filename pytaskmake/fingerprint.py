"""What a file is now: a stat signature (fast path) and a content hash (truth).

A file whose stat (mtime_ns, size, inode, ctime_ns, mode) equals the recorded one
is taken as unchanged without reading it; when the stat differs the content is
hashed, so `touch` alone never reruns a 20-hour simulation while a real edit always
does. The ctime is in the stat because no program can set it: `cp -p` keeps a
file's size, mtime and even (over an existing file) its inode, but moves its ctime.
Nothing compares timestamps between files, so clock skew cannot fool it.

The content hash is BLAKE3-256 (cryptographic: the run cache is content-addressed
and may be shared between users; ~2 GB/s here, against 0.19 GB/s for hashlib's
BLAKE2b, and threads over big files with the GIL released). A regular file with an
executable bit has "+x" after its hash: a chmod outside the build is an edit.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from stat import S_ISDIR, S_ISLNK, S_ISREG

import blake3

from .digest import blake2b

Stat = tuple[int, int, int, int, int]  # (mtime_ns, size, inode, ctime_ns, st_mode)
Fingerprint = tuple[Stat, str]  # a stat and the content hash taken at that stat

EXECUTABLE = "+x"  # after the hash of a file any of whose executable bits is set
HASH_NAME = "blake3-256"
_BLOCK = 1 << 20
_SMALL = 1 << 16
_THREADED = 8 << 20  # files from this size are hashed by several threads (mmap)
_STAT = struct.Struct("<qQQqI")  # mtime_ns, size, inode (may pass 2**63), ctime_ns, mode
_unpack = _STAT.unpack_from
_DIGEST = 32
_HASHED = _STAT.size + _DIGEST  # a packed stat followed by the content digest
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
        return _tree_stat(path, st)
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns, st.st_mode)


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


def _tree_stat(path: str, top: os.stat_result) -> Stat:
    digest = blake2b(digest_size=8)
    total = 0
    for rel, st in _tree_entries(path):
        digest.update(
            f"{rel}\0{st.st_mode}\0{st.st_mtime_ns}\0{st.st_size}\0{st.st_ino}\0"
            f"{st.st_ctime_ns}\n".encode()
        )
        total += st.st_size if S_ISREG(st.st_mode) else 0
    moved = int.from_bytes(digest.digest(), "little") >> 1
    return (moved, total, top.st_ino, top.st_ctime_ns, top.st_mode)


def _hash_tree(path: str) -> str:
    """The content of a folder: every entry's relative path and kind, and each file's
    bytes (a symlink by its target)."""
    digest = blake3.blake3()
    for rel, st in _tree_entries(path):
        full = os.path.join(path, rel)
        try:
            if S_ISREG(st.st_mode):
                what = "f" + hash_file(full) + (EXECUTABLE if st.st_mode & 0o111 else "")
            elif S_ISLNK(st.st_mode):
                what = "l" + os.readlink(full)
            else:
                what = "d" if S_ISDIR(st.st_mode) else "o"
        except FileNotFoundError:  # removed since the folder was listed: not there
            continue
        digest.update(f"{rel}\0{what}\n".encode())
    return digest.hexdigest()


def hash_file(path: str) -> str:
    """BLAKE3-256 of the file's bytes (a folder: of its tree), hex.

    Most files of a sweep are small: they are read in one call, without the 1 MiB
    buffer mid-sized files are streamed through (zeroing that buffer for a 20-byte
    file cost more than the rest of hashing it); big ones are mapped and hashed by
    several threads, without the GIL.
    """
    try:
        f = open(path, "rb", buffering=0)  # noqa: SIM115 (closed below)
    except IsADirectoryError:
        return _hash_tree(path)
    with f:
        head = f.read(_SMALL)
        if len(head) < _SMALL:
            return blake3.blake3(head).hexdigest()
        if os.fstat(f.fileno()).st_size >= _THREADED:
            return blake3.blake3(max_threads=blake3.blake3.AUTO).update_mmap(path).hexdigest()
        digest = blake3.blake3(head)
        buffer = bytearray(_BLOCK)
        view = memoryview(buffer)
        while n := f.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def content_of(digest: str) -> str:
    """The content hash of a fingerprint's digest, without its "+x" (a blob's name)."""
    return digest[: -len(EXECUTABLE)] if digest.endswith(EXECUTABLE) else digest


def _with_kind(content: str, st: Stat) -> str:
    """A fingerprint's digest: the content hash, and "+x" for an executable file."""
    return content + EXECUTABLE if st[4] & 0o111 and S_ISREG(st[4]) else content


_ABSENT = bytes(_STAT.size)  # a missing file among packed stats (no file has mode 0)
PACKED = _STAT  # how packed_stats packs one stat
ABSENT = _ABSENT


def packed_stats(stats: list[Stat | None]) -> bytes:
    """Stats as FileCache keeps them, one after the other; a missing file as _ABSENT."""
    pack = _STAT.pack
    return b"".join([_ABSENT if st is None else pack(*st) for st in stats])


class FileCache:
    """Per-run memo of stats and hashes, so each file is stat'ed and hashed at most once.

    Each file known is one bytes value: its stat packed (36 bytes), then the 32 bytes
    of its content hash once read at that stat; None when it does not exist. A full
    build of 100,000 sweep points knows 300,000 files: as tuples of ints and hex
    strings in two dicts they took ~85 MB, packed they take ~40 MB.

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

    def packed(self, paths: Iterable[str]) -> bytes:
        """The files' stats as packed_stats packs them (ABSENT for a missing file),
        without making tuples of them: a fan-in's 100,000 inputs are stamped so."""
        get, size, found = self._known.get, _STAT.size, []
        add = found.append
        for path in paths:
            item = get(path, _UNKNOWN)
            if item is _UNKNOWN:
                st = self.stat(path)
                add(_ABSENT if st is None else _STAT.pack(*st))
            elif item is None:
                add(_ABSENT)
            else:
                add(item if len(item) == size else item[:size])
        return b"".join(found)

    def fingerprint(self, path: str, known: Fingerprint | None = None) -> Fingerprint | None:
        """The file's current (stat, hash); `known` spares the read when its stat matches."""
        st = self.stat(path)
        if st is None:
            return None
        if known is not None and known[0] == st:
            return known
        packed = self._known.get(path)
        if packed is not None and len(packed) == _HASHED and _unpack(packed) == st:
            return (st, _with_kind(packed[_STAT.size :].hex(), st))
        try:
            content = self.read_hash(path)
        except FileNotFoundError:  # removed since its stat was taken (during a build)
            self._known[path] = None
            return None
        self._known[path] = _STAT.pack(*st) + bytes.fromhex(content)
        return (st, _with_kind(content, st))

    def seed(self, paths: list[str], packed: bytes) -> None:
        """Stats of `paths` taken a moment ago by another process (packed_stats: a
        Prefetch's children, which stat the snapshot's files while the Taskfile loads);
        a file already known here keeps what is known."""
        known, size = self._known, _STAT.size
        if len(packed) != size * len(paths):
            return  # not about these paths: take nothing
        for k, path in enumerate(paths):
            if known.get(path, _UNKNOWN) is _UNKNOWN:
                item = packed[k * size : (k + 1) * size]
                known[path] = None if item == _ABSENT else item

    def learn(self, path: str, fp: Fingerprint | None) -> None:
        """What another host found of a file it just wrote (None: it is missing)."""
        self._known[path] = None if fp is None else _STAT.pack(*fp[0]) + bytes.fromhex(fp[1])

    def read_hash(self, path: str) -> str:
        """The content hash (hex, 32 bytes) of the file at `path`."""
        return hash_file(path)

    def adopt(self, path: str, st: Stat, content: str) -> Fingerprint:
        """Remember a hash taken elsewhere (a hashing thread, a worker) at stat `st`."""
        self._known[path] = _STAT.pack(*st) + bytes.fromhex(content)
        return (st, _with_kind(content, st))

    def restat(self, fingerprint: Fingerprint, path: str) -> Fingerprint:
        """`fingerprint` with the file's stat as it is now, after pytaskmake itself did
        something that moves only its ctime (a hard link into the run cache, a chmod
        back): the content read a moment ago is still what the file holds."""
        self.forget(path)
        st = self.stat(path)
        old = fingerprint[0]
        if st is None or st[:3] != old[:3] or (st[4] & 0o111) != (old[4] & 0o111):
            return fingerprint  # it did change: the stale stat makes the next run read it
        self._known[path] = _STAT.pack(*st) + bytes.fromhex(content_of(fingerprint[1]))
        return (st, fingerprint[1])

    def forget(self, path: str) -> None:
        """Drop what is known of a file a task is about to (re)write.

        Its entry stays, as _UNKNOWN: a build rewriting 200,000 of 300,000 known files
        deleted and added as many keys, and the dict was made again at twice its size
        (10 MiB more, and both at once while it was copied)."""
        known = self._known
        if path in known:
            known[path] = _UNKNOWN
