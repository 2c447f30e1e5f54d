"""File fingerprints: the content hash at every size, and what the stat memo remembers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import blake3
import pytest

from pytaskmake.fingerprint import EXECUTABLE, FileCache, content_of, hash_file, stat_of


@pytest.mark.parametrize("size", [0, 1, 65_535, 65_536, 65_537, (1 << 20) + 3, 3 << 20])
def test_hash_is_blake3_256_of_the_bytes_at_every_size(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert hash_file(str(path)) == blake3.blake3(data).hexdigest()


def test_a_big_file_is_hashed_by_threads_to_the_same_hash(tmp_path: Path) -> None:
    data = os.urandom(9 << 20)  # past the size hashed by several threads (mmap)
    path = tmp_path / "big"
    path.write_bytes(data)
    assert hash_file(str(path)) == blake3.blake3(data).hexdigest()


def test_cp_p_over_a_file_moves_its_stat_through_the_ctime(tmp_path: Path) -> None:
    """`cp -p b cfg` keeps cfg's inode, and gives it b's size and mtime: only the
    ctime tells the new content from the old (issue 18, case 5)."""
    cfg, other = tmp_path / "cfg.dat", tmp_path / "b.dat"
    cfg.write_text("alpha")
    other.write_text("bravo")
    st = os.stat(other)
    os.utime(cfg, ns=(st.st_atime_ns, st.st_mtime_ns))
    before = stat_of(str(cfg))
    time.sleep(0.01)  # the ctime clock ticks in jiffies on some filesystems
    subprocess.run(["cp", "-p", str(other), str(cfg)], check=True)
    after = stat_of(str(cfg))
    assert before is not None and after is not None
    assert before[:3] == after[:3]  # mtime, size and inode say "unchanged"...
    assert before != after  # ...the ctime does not


def test_the_executable_bit_is_part_of_the_digest(tmp_path: Path) -> None:
    path = tmp_path / "tool"
    path.write_text("#!/bin/sh\n")
    os.chmod(path, 0o644)
    plain = FileCache().fingerprint(str(path))
    os.chmod(path, 0o755)
    executable = FileCache().fingerprint(str(path))
    assert plain is not None and executable is not None
    assert executable[1] == plain[1] + EXECUTABLE and content_of(executable[1]) == plain[1]


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


def test_forgetting_rewritten_files_does_not_grow_the_memo(tmp_path: Path) -> None:
    """A build rewrites most files it knows (every output of a parameter edit): each
    is forgotten, then known again. The memo keeps its entries, so it is never made
    again at twice its size (10 MiB at 100,000 points), and reads the new files."""
    paths = [str(tmp_path / f"f{i}") for i in range(30_000)]
    for p in paths:
        Path(p).write_text("old")
    files = FileCache()
    for p in paths:
        files.fingerprint(p)
    size = sys.getsizeof(files._known)
    for p in paths[:20_000]:
        Path(p).write_text("new!")
        files.forget(p)
        files.fingerprint(p)
    assert sys.getsizeof(files._known) == size
    assert files.fingerprint(paths[0]) == (stat_of(paths[0]), hash_file(paths[0]))
    assert files.fingerprint(paths[-1]) == (stat_of(paths[-1]), hash_file(paths[-1]))
