"""A task's outputs around a run: set aside before, dropped or put back after.

A rerun must never destroy the last good output: a script with a typo, or a crash
after 19 hours, would otherwise leave nothing. So before a task runs, its existing
outputs are renamed into `.pytaskmake/backup/` (same filesystem: a rename, even for
gigabytes); when it succeeds they are dropped, once its record is committed; when
it fails or is interrupted, what it left goes to `.pytaskmake/failed/` and the
old outputs are put back where they were. Outputs that no record vouches for
(results copied from a colleague, made before the Taskfile existed) are not
dropped but kept in `.pytaskmake/replaced/`, and the build says so. A build killed
outright (kill -9) leaves its backups behind; the next one puts each back unless
the task's committed record shows that the file now there is its good output.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

_SIBLING = ".pytaskmake-old"  # suffix of a backup kept beside its file (another filesystem)


class OutputKeeper:
    """Sets aside, drops and puts back outputs under one state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.backup = state_dir / "backup"
        self.failed = state_dir / "failed"
        self.replaced = state_dir / "replaced"
        self._project = state_dir.parent
        self._held: dict[str, str] = {}  # output path -> where its old file is now

    def set_aside(self, outputs: tuple[str, ...], exists: Callable[[str], bool]) -> None:
        """Move the outputs present now out of the way of the task about to run.

        On a retry the first attempt's backup is kept and what the failed attempt
        left is moved to failed/ (it must not be taken for an output either).
        """
        for path in outputs:
            if not (exists(path) or os.path.lexists(path)):
                continue
            if path in self._held:
                _move(path, self.failed / path)
                continue
            self._held[path] = _rename_aside(path, self.backup / path)

    def drop(self, outputs: tuple[str, ...], vouched: bool) -> list[str]:
        """The task succeeded and is recorded: forget the old outputs. Those no record
        vouched for are kept in replaced/; returns their paths (to say so)."""
        kept = []
        for path in outputs:
            where = self._held.pop(path, None)
            if where is None:
                continue
            if vouched:
                _remove(where)
            else:
                _move(where, self.replaced / path)
                kept.append(path)
        return kept

    def put_back(self, outputs: tuple[str, ...]) -> bool:
        """The task failed: its partial outputs go to failed/ (returns whether there
        were any), and the old outputs return where they were."""
        partial = False
        for path in outputs:
            if os.path.lexists(path):
                _move(path, self.failed / path)
                partial = True
            where = self._held.pop(path, None)
            if where is not None:
                os.replace(where, path)
        return partial

    def holding(self) -> bool:
        return bool(self._held)

    def where(self, folder: Path) -> str:
        """`folder` as the user sees it, relative to the project."""
        return str(folder.relative_to(self._project)) + os.sep

    def recover(
        self, is_good: Callable[[str], bool], is_output: Callable[[str], bool]
    ) -> list[str]:
        """Put back the backups a killed build left (`is_good(path)`: the file there
        now is its task's recorded output, so the backup is dropped instead; a folder
        that `is_output` is put back whole); returns the paths put back."""
        back = []
        for path, where in self._left_behind(is_output):
            if os.path.lexists(path) and is_good(path):
                _remove(where)
                continue
            if os.path.lexists(path):
                _move(path, self.failed / path)
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            os.replace(where, path)
            back.append(path)
        return back

    def _left_behind(self, is_output: Callable[[str], bool]) -> Iterator[tuple[str, str]]:
        if not self.backup.is_dir():
            return
        for folder, dirs, files in os.walk(self.backup):
            whole = [
                d for d in dirs if is_output(os.path.relpath(os.path.join(folder, d), self.backup))
            ]
            dirs[:] = [d for d in dirs if d not in whole]  # an output folder is one backup
            for name in (
                files + whole + [d for d in dirs if os.path.islink(os.path.join(folder, d))]
            ):
                where = os.path.join(folder, name)
                rel = os.path.relpath(where, self.backup)
                if rel.endswith(_SIBLING + ".marker"):
                    path = rel[: -len(_SIBLING + ".marker")]
                    sibling = _sibling_of(path)
                    if os.path.lexists(sibling):
                        yield path, sibling
                    os.unlink(where)
                else:
                    yield rel, where


def _sibling_of(path: str) -> str:
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}{_SIBLING}")


def _rename_aside(path: str, dest: Path) -> str:
    """Rename `path` to `dest`; on another filesystem, beside itself under a hidden
    name (with a marker in the backup folder so a killed build's is found again)."""
    try:
        _move(path, dest)
        return str(dest)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    sibling = _sibling_of(path)
    marker = Path(str(dest) + _SIBLING + ".marker")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    os.replace(path, sibling)
    return sibling


def _move(path: str | Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    os.replace(path, dest)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
