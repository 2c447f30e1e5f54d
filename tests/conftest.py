"""Shared fixtures: a throw-away project directory and a way to run the real CLI in it."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest


class Project:
    """A temporary directory with a Taskfile.py, driven through the real `pytaskmake` CLI."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, path: str, text: str) -> Path:
        """Write a file (dedented), creating parent folders; returns its path."""
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
        return target

    def taskfile(self, text: str) -> Path:
        return self.write("Taskfile.py", "from pytaskmake import task\n" + textwrap.dedent(text))

    def read(self, path: str) -> str:
        return (self.root / path).read_text()

    def exists(self, path: str) -> bool:
        return (self.root / path).exists()

    def run(self, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        """Run `python -m pytaskmake ARGS` here; output is not a terminal, colour off."""
        full_env = {**os.environ, "NO_COLOR": "1", **env}
        return subprocess.run(
            [sys.executable, "-m", "pytaskmake", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
        )

    def popen(self, *args: str, **env: str) -> subprocess.Popen[str]:
        full_env = {**os.environ, "NO_COLOR": "1", **env}
        return subprocess.Popen(
            [sys.executable, "-m", "pytaskmake", *args],
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
        )


@pytest.fixture(autouse=True)
def _restore_cwd() -> Iterator[None]:
    """Each test starts in the folder the suite started in: a test that chdirs into
    its tmp_path must not move the next (a callable's project is the folder it is
    signed in, so test_action's closures signed elsewhere lost their values)."""
    before = os.getcwd()
    yield
    os.chdir(before)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


RAN_LINE = re.compile(r"^\[\d+/\d+\] ran (\S+) \(")


def build(project: Project, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    """Run the CLI and insist on its exit code and on no traceback."""
    result = project.run(*args)
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback (most recent call last)" not in result.stderr
    return result


def runs(project: Project) -> list[str]:
    """Tasks that ran since the last call, from the runs.log they append to; then empties it."""
    if not project.exists("runs.log"):
        return []
    names = project.read("runs.log").split()
    (project.root / "runs.log").unlink()
    return names


def ran(result: subprocess.CompletedProcess[str]) -> list[str]:
    """Task names of the `[i/N] ran NAME (...)` lines of a build's output."""
    return [m.group(1) for line in result.stdout.splitlines() if (m := RAN_LINE.match(line))]


def old_files_text(root: Path, text: str) -> str:
    """A record's file list as formats 3 and 4 wrote it (3 stat fields, BLAKE2b-128 of
    the bytes as they are now), from this format's text: to test upgrades."""
    import hashlib

    from pytaskmake.state import decode_files

    fields: list[str] = []
    for tag, files in zip("IO", decode_files(text), strict=True):
        for path, ((mtime, size, inode, _, _), _) in files.items():
            digest = hashlib.blake2b((root / path).read_bytes(), digest_size=16).hexdigest()
            fields += [tag, path, str(mtime), str(size), str(inode), digest]
    return "\0".join(fields)


def recorded(root: Path, column: str) -> dict[str, int]:
    """name -> `column` ("ok", "stamp") of every task in the state file under `root`,
    as another process reads it (committed records only)."""
    db = sqlite3.connect(root / ".pytaskmake" / "state.db")
    try:
        return dict(db.execute(f"SELECT name, {column} FROM tasks").fetchall())
    finally:
        db.close()
