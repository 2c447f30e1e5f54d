"""File fingerprints: the content hash at every size, and what the stat memo remembers."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from pytaskmake.fingerprint import FileCache, hash_file, stat_of


@pytest.mark.parametrize("size", [0, 1, 65_535, 65_536, 65_537, (1 << 20) + 3, 3 << 20])
def test_hash_is_blake2b_128_of_the_bytes_at_every_size(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert hash_file(str(path)) == hashlib.blake2b(data, digest_size=16).hexdigest()


def test_the_memo_hashes_once_per_stat_and_forgets_on_request(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("one")
    reads: list[str] = []

    class Counting(FileCache):
        def read_hash(self, p: str) -> str:
            reads.append(p)
            return super().read_hash(p)

    files = Counting()
    first = files.fingerprint(str(path))
    assert first is not None and files.fingerprint(str(path)) == first and len(reads) == 1
    assert files.fingerprint(str(path), first) == first and len(reads) == 1
    path.write_text("two, longer")  # the memo still answers for the stat it saw...
    assert files.fingerprint(str(path)) == first
    files.forget(str(path))  # ...until told the file was rewritten
    second = files.fingerprint(str(path))
    assert second is not None and second[1] != first[1] and len(reads) == 2
    assert second[0] == stat_of(str(path))
    (tmp_path / "f").unlink()
    files.forget(str(path))
    assert files.fingerprint(str(path)) is None and files.stat(str(path)) is None
