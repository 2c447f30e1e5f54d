"""A task's output, kept whole on disk and bounded in memory.

A simulator that prints 300 MB must not push pytaskmake to gigabytes, and a
failure must not lose the first error among thousands of lines. Output is kept
in memory while small; once it passes SPILL bytes it streams to a file under
`.pytaskmake/logs/`, and only its head and tail stay in memory for the console.
A task that printed anything has its whole output in that file in the end.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..digest import blake2b

SPILL = 256 * 1024  # bytes kept in memory before the output goes to its file
HEAD = TAIL = 64 * 1024  # bytes of a spilled output kept for the console
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def log_path(logs_dir: Path, task: str) -> Path:
    """Where a task's captured output goes: its name made a file name (with a short
    digest when that changed it, so that two names never share a file)."""
    safe = _UNSAFE.sub("_", task)[:100]
    if safe != task:
        safe += "-" + blake2b(task.encode(), digest_size=4).hexdigest()
    return logs_dir / f"{safe}.log"


class Capture:
    """The output of one attempt of `task`, spilled under `logs_dir` (None: nowhere to
    spill, kept in memory). The log's path is made when it is written: most tasks of a
    sweep print nothing, and making it cost ~30 us of the build loop per task."""

    __slots__ = ("_logs", "_task", "_chunks", "_size", "_file", "_head", "_tail", "attempt")

    def __init__(self, logs_dir: Path | None, task: str, attempt: int = 1) -> None:
        self._logs, self._task = logs_dir, task
        self._chunks: list[bytes] = []
        self._size = 0
        self._file: int | None = None
        self._head = b""
        self._tail = bytearray()
        self.attempt = attempt

    def read_from(self, pipe: int) -> bytes | None:
        """One read of a task's non-blocking output pipe, kept: the bytes read, b"" at
        its end, None when it held nothing yet."""
        try:
            chunk = os.read(pipe, 1 << 16)
        except BlockingIOError:
            return None
        if chunk:
            self.add(chunk)
        return chunk

    def add(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._file is None:
            self._chunks.append(chunk)
            if self._size > SPILL and self._logs is not None:
                try:
                    self._spill()
                except OSError:  # no room for the log: keep it in memory, as before
                    self._chunks, self._logs = [b"".join(self._chunks)], None
            return
        os.write(self._file, chunk)
        self._tail += chunk
        if len(self._tail) > 2 * TAIL:
            del self._tail[:-TAIL]

    def _spill(self) -> None:
        data = b"".join(self._chunks)
        self._chunks = []
        self._file = self._open()
        os.write(self._file, data)
        self._head, self._tail = data[:HEAD], bytearray(data[-TAIL:])

    @property
    def _path(self) -> Path:
        assert self._logs is not None
        return log_path(self._logs, self._task)

    def _open(self) -> int:
        self._logs.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if self.attempt == 1 else os.O_APPEND)
        return os.open(self._path, flags, 0o644)

    def finish(self) -> tuple[bytes, str | None]:
        """What to show (all of it, or its head and tail) and the file holding all of
        it (None when the task printed nothing or there is no logs folder)."""
        if self._file is None:
            data = b"".join(self._chunks)
            if not data or self._logs is None:
                return data, None
            try:
                fd = self._open()
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
            except OSError:  # an unwritable logs folder must not fail the task
                return data, None
            return data, str(self._path)
        os.close(self._file)
        self._file = None
        skipped = self._size - len(self._head) - len(self._tail[-TAIL:])
        cut = self._tail[-TAIL:]
        newline = cut.find(b"\n")  # start the tail on a whole line
        tail = bytes(cut[newline + 1 :] if 0 <= newline < len(cut) - 1 else cut)
        head = self._head[: self._head.rfind(b"\n") + 1] or self._head
        marker = f"\n[... {skipped:,} bytes not shown; the whole output is in {self._path} ...]\n"
        return head + marker.encode() + tail, str(self._path)
