"""A Chrome/Perfetto trace of a build: one slice per task, one row per worker slot
(and one row of its own for the tasks restored from the run cache, which hold none).

Open the file in ui.perfetto.dev or chrome://tracing to see where the time went.
"""

from __future__ import annotations

import json
import os

from . import events as ev

RESTORED_ROW = -1  # the row of tasks restored from the run cache


def _row_name(row: int) -> str:
    return "restored from cache" if row == RESTORED_ROW else f"slot {row}"


class TraceWriter:
    """Collects finished tasks and writes the trace-event JSON when the build ends."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self._events: list[dict[str, object]] = []
        self._origin: float | None = None

    def handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.TaskDone) and event.outcome in (ev.RAN, ev.FAILED, ev.RESTORED):
            if event.started and (self._origin is None or event.started < self._origin):
                self._origin = event.started
            self._events.append(self._slice(event))
        elif isinstance(event, ev.BuildFinished):
            self._write()

    def _slice(self, e: ev.TaskDone) -> dict[str, object]:
        return {
            "name": e.name,
            "cat": e.outcome,
            "ph": "X",
            "ts": e.started * 1e6,
            "dur": e.duration * 1e6,
            "pid": 1,
            "tid": RESTORED_ROW if e.outcome == ev.RESTORED else e.slot,
            "args": {"outcome": e.outcome, "reason": e.reason, "command": e.command},
        }

    def _write(self) -> None:
        origin = (self._origin or 0.0) * 1e6
        for item in self._events:
            item["ts"] = round(float(item["ts"]) - origin, 1)  # type: ignore[arg-type]
            item["dur"] = round(float(item["dur"]), 1)  # type: ignore[arg-type]
        slots = sorted({int(item["tid"]) for item in self._events})  # type: ignore[call-overload]
        meta = [
            {"name": "thread_name", "ph": "M", "pid": 1, "tid": s, "args": {"name": _row_name(s)}}
            for s in slots
        ]
        with open(self.path, "w", encoding="utf-8") as f:
            json.dump({"traceEvents": meta + self._events, "displayTimeUnit": "ms"}, f)
