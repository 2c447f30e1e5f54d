"""--trace FILE: a Chrome/Perfetto trace-event JSON, one slice per task that ran."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytaskmake import events as ev
from pytaskmake.trace import TraceWriter

if TYPE_CHECKING:
    from conftest import Project

US = 1e6  # trace timestamps are microseconds
SLACK_US = 1000.0  # wall-clock start vs monotonic duration: allow 1 ms of skew


def load(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The trace's ("X" slices, "M" metadata events); fails unless the JSON is well formed."""
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    events = data["traceEvents"]
    assert isinstance(events, list)
    slices = [e for e in events if e["ph"] == "X"]
    meta = [e for e in events if e["ph"] == "M"]
    assert len(slices) + len(meta) == len(events)
    return slices, meta


def assert_no_overlap_per_slot(slices: list[dict[str, Any]]) -> None:
    by_slot: dict[int, list[dict[str, Any]]] = {}
    for s in slices:
        by_slot.setdefault(s["tid"], []).append(s)
    for slot, items in by_slot.items():
        items.sort(key=lambda s: s["ts"])
        for before, after in zip(items, items[1:], strict=False):
            end = before["ts"] + before["dur"]
            assert after["ts"] >= end - SLACK_US, (slot, before, after)


PARALLEL = """
for i in range(4):
    task(f"sleep{i}", f"sleep 0.3; echo {i} > out{i}.txt", outputs=[f"out{i}.txt"])
"""


def test_parallel_trace_uses_both_slots_without_overlap(project: Project) -> None:
    project.taskfile(PARALLEL)
    r = project.run("-j2", "--trace", "trace.json")
    assert r.returncode == 0, r.stderr
    slices, meta = load(project.root / "trace.json")

    assert sorted(s["name"] for s in slices) == [f"sleep{i}" for i in range(4)]
    for s in slices:
        assert s["pid"] == 1
        assert s["cat"] == "ran"
        assert s["args"]["outcome"] == "ran"
        assert s["args"]["command"].startswith("sleep 0.3; echo ")
        assert 0.25 * US <= s["dur"] < 10 * US
        assert s["ts"] >= 0
    assert min(s["ts"] for s in slices) == 0  # times are relative to the first start
    assert {s["tid"] for s in slices} == {0, 1}  # slot < -j, both used
    assert_no_overlap_per_slot(slices)
    # two at a time: two rounds, not one, and the slots really ran side by side
    end = max(s["ts"] + s["dur"] for s in slices)
    assert end >= 0.55 * US
    zero = [s for s in slices if s["tid"] == 0]
    one = [s for s in slices if s["tid"] == 1]
    assert any(
        a["ts"] < b["ts"] + b["dur"] and b["ts"] < a["ts"] + a["dur"] for a in zero for b in one
    )

    assert sorted((m["tid"], m["name"], m["args"]["name"]) for m in meta) == [
        (0, "thread_name", "slot 0"),
        (1, "thread_name", "slot 1"),
    ]
    assert all(m["pid"] == 1 for m in meta)


def test_only_tasks_that_ran_get_a_slice(project: Project) -> None:
    project.taskfile(
        """
        task("a", "cat in.txt > a.txt", inputs=["in.txt"], outputs=["a.txt"])
        task("b", "echo b > b.txt", outputs=["b.txt"])
        """
    )
    project.write("in.txt", "1\n")
    assert project.run("-j1").returncode == 0
    project.write("in.txt", "2\n")
    r = project.run("-j1", "--no-cache", "--trace", "t.json")
    assert r.returncode == 0, r.stderr
    slices, meta = load(project.root / "t.json")
    assert [s["name"] for s in slices] == ["a"]
    assert [s["args"]["reason"] for s in slices] == [""]
    assert slices[0]["tid"] == 0 and slices[0]["ts"] == 0
    assert [m["tid"] for m in meta] == [0]


def test_noop_build_writes_an_empty_trace(project: Project) -> None:
    project.taskfile(PARALLEL.replace("sleep 0.3", "true"))
    assert project.run("-j2").returncode == 0
    r = project.run("-j2", "--trace", "noop.json")
    assert r.returncode == 0, r.stderr
    assert load(project.root / "noop.json") == ([], [])


def test_failed_task_is_traced_and_skipped_ones_are_not(project: Project) -> None:
    project.taskfile(
        """
        task("bad", "sleep 0.1; exit 3", outputs=["b.txt"])
        task("after", "cp b.txt c.txt", inputs=["b.txt"], outputs=["c.txt"])
        task("ok", "sleep 0.1")
        """
    )
    r = project.run("-j2", "-k", "--trace", "t.json")
    assert r.returncode == 1
    slices, _ = load(project.root / "t.json")
    by_name = {s["name"]: s for s in slices}
    assert sorted(by_name) == ["bad", "ok"]
    assert by_name["bad"]["cat"] == "failed"
    assert by_name["bad"]["args"]["reason"] == "exit code 3"
    assert by_name["ok"]["cat"] == "ran"
    assert {s["tid"] for s in slices} == {0, 1}  # they ran side by side


def test_trace_writer_directly(tmp_path: Path) -> None:
    path = tmp_path / "direct.json"
    writer = TraceWriter(str(path))
    writer.handle(ev.BuildStarted(4, 2, ("a", "b", "c", "d")))
    writer.handle(ev.TaskDone("b", ev.RAN, "", 0.5, b"", 0, "cmd b", None, 1, 1000.25))
    writer.handle(ev.TaskDone("a", ev.RAN, "", 2.0, b"", 0, "cmd a", None, 0, 1000.0))
    writer.handle(ev.TaskDone("c", ev.UP_TO_DATE, "up to date"))
    writer.handle(ev.TaskDone("d", ev.SKIPPED, "needs a, which failed"))
    assert not path.exists()  # written once, when the build ends
    writer.handle(ev.BuildFinished({}, 3.0))
    slices, meta = load(path)
    assert sorted((s["name"], s["tid"], s["ts"], s["dur"]) for s in slices) == [
        ("a", 0, 0.0, 2.0 * US),
        ("b", 1, 0.25 * US, 0.5 * US),
    ]
    assert [m["args"]["name"] for m in sorted(meta, key=lambda m: m["tid"])] == [
        "slot 0",
        "slot 1",
    ]


def test_restored_task_slice_is_not_before_the_build(project: Project) -> None:
    project.taskfile(
        """
        task("a", "echo a > a.txt", outputs=["a.txt"])
        task("b", "sleep 0.1; cat src.txt > b.txt", inputs=["src.txt"], outputs=["b.txt"])
        """
    )
    project.write("src.txt", "1\n")
    assert project.run("-j1").returncode == 0
    (project.root / "a.txt").unlink()  # a comes back from the cache
    project.write("src.txt", "2\n")  # b must run
    r = project.run("-j1", "--trace", "t.json")
    assert r.returncode == 0, r.stderr
    assert "restored a" in r.stdout and "ran b" in r.stdout
    slices, _ = load(project.root / "t.json")
    for s in slices:
        assert 0 <= s["ts"] < 60 * US, s
