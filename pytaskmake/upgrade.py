"""Moving a state database written by an older pytaskmake to this format, in place.

Format 5 changed what a file's fingerprint is (BLAKE3-256 for BLAKE2b-128, the ctime
and mode in the stat, "+x" for executables): old records would compare unequal to
every file and rerun every task. Instead each recorded file is looked at once: if
it still is what the record says (same stat, or same old hash), it is hashed anew
and the record keeps vouching for it; otherwise the record gets a digest that
matches nothing, so that task reruns, as it would have. Nothing else reruns.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from stat import S_ISDIR, S_ISLNK, S_ISREG

from .fingerprint import FileCache, Fingerprint, stat_of

CHANGED = "changed-before-the-upgrade"  # a digest no file has

_OldFingerprint = tuple[tuple[int, int, int], str]


def upgrade(db: sqlite3.Connection, version: int) -> int:
    """Rewrite every record of a format 3 or 4 database in format 5; returns how many
    files were hashed. The caller sets the new version in the same transaction."""
    from .state import encode_files  # (state imports this module lazily, too)

    files = FileCache()
    hashed = 0
    rows = db.execute("SELECT name, files FROM tasks").fetchall()
    for name, text in rows:
        try:
            inputs, outputs = _decode_old(text)
        except (ValueError, IndexError):
            db.execute("UPDATE tasks SET ok = 0 WHERE name = ?", (name,))
            continue
        new_in = {p: _carried(p, fp, files) for p, fp in inputs.items()}
        new_out = {p: _carried(p, fp, files) for p, fp in outputs.items()}
        hashed += len(new_in) + len(new_out)
        # stamp 0 matches no stats: the first build compares these files (by stat,
        # now equal: no hashing) and re-records the stamp
        db.execute(
            "UPDATE tasks SET files = ?, stamp = 0 WHERE name = ?",
            (encode_files(new_in, new_out), name),
        )
    db.execute("DELETE FROM meta WHERE key = 'snapshot'")  # its stats are of format 4
    return hashed


def _carried(path: str, old: _OldFingerprint, files: FileCache) -> Fingerprint:
    """The format-5 fingerprint of a recorded file that is unchanged since it was
    recorded; a fingerprint that matches nothing when it changed or is gone."""
    (mtime, size, inode), digest = old
    now = stat_of(path)
    if now is not None and (now[:3] == (mtime, size, inode) or _old_hash(path) == digest):
        try:
            fp = files.fingerprint(path)
        except OSError:  # unreadable now (permissions): the task reruns, as it would have
            fp = None
        if fp is not None:
            return fp
    return ((mtime, size, inode, 0, 0), CHANGED)


def _decode_old(text: str) -> tuple[dict[str, _OldFingerprint], dict[str, _OldFingerprint]]:
    """Formats 3 and 4: per file I or O, path, mtime_ns, size, inode, BLAKE2b-128."""
    inputs: dict[str, _OldFingerprint] = {}
    outputs: dict[str, _OldFingerprint] = {}
    f = text.split("\0") if text else []
    if len(f) % 6:
        raise ValueError("damaged record")
    for i in range(0, len(f), 6):
        target = inputs if f[i] == "I" else outputs
        target[f[i + 1]] = ((int(f[i + 2]), int(f[i + 3]), int(f[i + 4])), f[i + 5])
    return inputs, outputs


def _old_hash(path: str) -> str | None:
    """The format-4 content hash: BLAKE2b-128 of a file, or of a folder's tree."""
    try:
        if not S_ISDIR(os.stat(path).st_mode):
            digest = hashlib.blake2b(digest_size=16)
            with open(path, "rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
            return digest.hexdigest()
        digest = hashlib.blake2b(digest_size=16)
        for rel, mode in _old_tree(path):
            full = os.path.join(path, rel)
            if S_ISREG(mode):
                what = "f" + (_old_hash(full) or "")
            elif S_ISLNK(mode):
                what = "l" + os.readlink(full)
            else:
                what = "d" if S_ISDIR(mode) else "o"
            digest.update(f"{rel}\0{what}\n".encode())
        return digest.hexdigest()
    except OSError:
        return None


def _old_tree(path: str) -> list[tuple[str, int]]:
    """Every entry under a folder with its mode, sorted by relative path (format 4's order)."""
    found = []
    for folder, dirs, names in os.walk(path):
        for entry in dirs + names:
            full = os.path.join(folder, entry)
            found.append((os.path.relpath(full, path), os.lstat(full).st_mode))
    return sorted(found)
