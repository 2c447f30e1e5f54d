"""The run cache: outputs of every successful run, content-addressed, to restore later.

An entry is keyed by the task's action signature plus its inputs' content hashes
(the very data the rebuilder compares), and maps each output path to a blob named
by its hash. Blobs and entries are written to a temp name and renamed, so
concurrent builds sharing a cache directory never see half an entry. Restores
copy (or reflink) and verify the blob's hash first: a corrupt blob is dropped,
never restored.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .fingerprint import Fingerprint, hash_file

_FICLONE = 0x40049409  # Linux ioctl: share extents copy-on-write (btrfs, xfs)


@dataclass(frozen=True)
class CacheStats:
    entries: int
    blobs: int
    size: int  # bytes held by blobs only the cache references


class CorruptEntry(Exception):
    """A cached blob no longer matches its hash (edited through a hard link, disk error)."""


def cache_key(signature: str, outputs: tuple[str, ...], inputs: dict[str, Fingerprint]) -> str:
    """One key per (action, declared outputs, input contents)."""
    h = hashlib.blake2b(digest_size=20)
    h.update(signature.encode())
    for path in outputs:
        h.update(b"\0O" + path.encode())
    for path in sorted(inputs):
        h.update(b"\0I" + path.encode() + b"=" + inputs[path][1].encode())
    return h.hexdigest()


class RunCache:
    """A cache directory: `entries/KEY.json` and `blobs/HASH`."""

    def __init__(self, directory: Path) -> None:
        self.root = directory
        self.entries = directory / "entries"
        self.blobs = directory / "blobs"
        self.tmp = directory / "tmp"
        for d in (self.entries, self.blobs, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        self._entries_str, self._blobs_str = str(self.entries), str(self.blobs)
        self._tmp_str = str(self.tmp)
        self._made: set[str] = set()
        self._token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._counter = 0

    def _entry_path(self, key: str) -> Path:
        return self.entries / key[:2] / f"{key}.json"

    def _blob_path(self, digest: str) -> Path:
        return self.blobs / digest[:2] / digest

    def lookup(self, key: str) -> dict[str, str] | None:
        """Output path -> blob hash for `key`, or None; a hit counts as a use (for LRU)."""
        path = self._entry_path(key)
        try:
            outputs = json.loads(path.read_text())["outputs"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        try:
            os.utime(path)
        except OSError:
            pass
        return outputs if isinstance(outputs, dict) else None

    def restore(self, key: str, outputs: dict[str, str]) -> None:
        """Copy each blob to its output path; raises CorruptEntry (entry dropped) on a bad blob."""
        for path, digest in outputs.items():
            blob = self._blob_path(digest)
            try:
                actual = hash_file(str(blob))
            except OSError:
                actual = None
            if actual != digest:
                self.drop(key)
                raise CorruptEntry(f"cache blob for {path} is missing or corrupt; entry dropped")
        for path, digest in outputs.items():
            self._copy_out(self._blob_path(digest), path)

    def _copy_out(self, blob: Path, path: str) -> None:
        """A private copy of the blob (reflink when the filesystem can), renamed into place."""
        parent = os.path.dirname(path) or "."
        os.makedirs(parent, exist_ok=True)
        temp = os.path.join(parent, f".{os.path.basename(path)}.restore-{uuid.uuid4().hex[:8]}")
        try:
            _clone_or_copy(blob, temp)
            os.replace(temp, path)
        except BaseException:
            _unlink_quietly(temp)
            raise

    def store(self, key: str, outputs: dict[str, Fingerprint]) -> None:
        """Add the outputs just produced under `key` (blobs first, then the entry).

        Runs once per finished task, so it sticks to plain strings and few syscalls.
        """
        for path, (_, digest) in outputs.items():
            blob = self._blob_name(digest)
            if not os.path.exists(blob):
                self._add_blob(path, blob)
        entry = {"outputs": {p: fp[1] for p, fp in outputs.items()}, "stored": time.time()}
        target = self._ensure_dir(self._entries_str, key[:2]) + f"/{key}.json"
        temp = self._temp_name()
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, json.dumps(entry).encode())
        finally:
            os.close(fd)
        os.replace(temp, target)

    def _blob_name(self, digest: str) -> str:
        return f"{self._blobs_str}/{digest[:2]}/{digest}"

    def _ensure_dir(self, base: str, sub: str) -> str:
        folder = f"{base}/{sub}"
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)
        return folder

    def _temp_name(self) -> str:
        self._counter += 1
        return f"{self._tmp_str}/{self._token}-{self._counter}"

    def _add_blob(self, source: str, blob: str) -> None:
        """Hard-link the fresh output into the cache when possible: no copy, no extra space."""
        self._ensure_dir(self._blobs_str, os.path.basename(blob)[:2])
        temp = self._temp_name()
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)
        try:
            os.replace(temp, blob)
        except BaseException:
            _unlink_quietly(temp)
            raise

    def drop(self, key: str) -> None:
        _unlink_quietly(str(self._entry_path(key)))

    def stats(self) -> CacheStats:
        entries = sum(1 for _ in self.entries.glob("*/*.json"))
        blobs = list(self._blob_files())
        size = sum(st.st_size for _, st in blobs if st.st_nlink == 1)
        return CacheStats(entries, len(blobs), size)

    def _blob_files(self) -> list[tuple[Path, os.stat_result]]:
        found = []
        for blob in self.blobs.glob("*/*"):
            try:
                found.append((blob, blob.stat()))
            except FileNotFoundError:
                pass
        return found

    def prune(self, max_bytes: int) -> tuple[int, int]:
        """Drop least-recently-used entries until blobs fit in `max_bytes`.

        Blobs still hard-linked from a current output cost no extra space and are
        kept. Returns (entries removed, bytes freed).
        """
        entries = sorted(self.entries.glob("*/*.json"), key=_mtime)
        uses: dict[str, int] = {}
        blobs_of: dict[Path, list[str]] = {}
        for entry in entries:
            blobs_of[entry] = _entry_blobs(entry)
            for digest in blobs_of[entry]:
                uses[digest] = uses.get(digest, 0) + 1
        files = {blob.name: (blob, st) for blob, st in self._blob_files()}
        size = sum(st.st_size for _, st in files.values() if st.st_nlink == 1)
        removed = freed = 0
        for entry in entries:
            if size <= max_bytes:
                break
            _unlink_quietly(str(entry))
            removed += 1
            for digest in blobs_of[entry]:
                uses[digest] -= 1
                blob, st = files.get(digest, (None, None))
                if uses[digest] == 0 and blob is not None and st.st_nlink == 1:
                    _unlink_quietly(str(blob))
                    size -= st.st_size
                    freed += st.st_size
        return removed, freed


def _entry_blobs(entry: Path) -> list[str]:
    try:
        return list(json.loads(entry.read_text())["outputs"].values())
    except (OSError, ValueError, KeyError, AttributeError):
        return []


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
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


def parse_size(text: str) -> int:
    """'10G', '500M', '1.5k', '1024' -> bytes (powers of 1024)."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    number, unit = (t[:-1], t[-1]) if t and t[-1] in units else (t, "")
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (try 10G, 500M, 1024)") from None
    if value < 0:
        raise ValueError(f"not a size: {text!r}")
    return int(value * units[unit])
