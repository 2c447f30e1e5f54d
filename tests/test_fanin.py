"""A fan-in (more than fanin.THRESHOLD inputs) is recorded, checked and keyed in slices.

A summary of 12,000 source files is built once by the real CLI; each test then
does what a researcher does (edits one input, touches one, goes back to an old
input, drops points from the Taskfile) and checks what ran and which slices of
its record were written again, read from the state file by a second connection.
"""

from __future__ import annotations

import os
import pickle
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import Project, build, ran, runs

from pytaskmake import fanin
from pytaskmake.cache import cache_key
from pytaskmake.engine import Engine
from pytaskmake.fingerprint import FileCache
from pytaskmake.stale import MISSING_INPUT, check, current_inputs, record_stamp
from pytaskmake.state import StateDB
from pytaskmake.taskfile import Task, make_action

POINTS = 12_000

TASKFILE = """
from pytaskmake import task
DROPPED = {dropped!r}
files = [f"data/d_{{i}}.txt" for i in range({points}) if i not in DROPPED]
task("summary", "echo summary >> runs.log; cat data/*.txt | cksum > summary.txt",
     inputs=files, outputs=["summary.txt"])
"""


def write(project: Project, dropped: tuple[int, ...] = ()) -> None:
    project.write("Taskfile.py", TASKFILE.format(points=POINTS, dropped=set(dropped)))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fanin")
    project = Project(root)
    (root / "data").mkdir()
    for i in range(POINTS):
        (root / "data" / f"d_{i}.txt").write_text(f"{i}\n")
    write(project)
    build(project)
    assert runs(project) == ["summary"]
    return root


@pytest.fixture
def sweep(built: Path, tmp_path: Path) -> Project:
    root = tmp_path / "fanin"
    shutil.copytree(built, root, symlinks=True)
    project = Project(root)
    build(project)  # the copies have new inodes: found clean, re-recorded
    assert runs(project) == []
    return project


def slices(project: Project) -> list[tuple[int, int, str]]:
    """The summary's input slices as recorded: (row, stamp, digest), in order (a slice
    kept from one record to the next keeps its row)."""
    with sqlite3.connect(project.root / ".pytaskmake" / "state.db") as db:
        (head,) = db.execute("SELECT files FROM tasks WHERE name = 'summary'").fetchone()
        assert head.startswith("S\0")  # kept in slices, not in one row or in parts
        rows = {
            seq: (stamp, digest)
            for seq, stamp, digest in db.execute(
                "SELECT seq, stamp, digest FROM slices WHERE name = 'summary'"
            )
        }
    order = [int(q) for q in head[2:].split(",")]
    assert sorted(order) == sorted(rows)  # no row left over, none missing
    return [(q, *rows[q]) for q in order if rows[q][0] is not None]


def test_one_input_edited_writes_one_slice_of_the_record_again(sweep: Project) -> None:
    before = slices(sweep)
    assert len(before) >= 2
    sweep.write("data/d_77.txt", "seventy-seven\n")
    assert "summary: input data/d_77.txt changed" in build(sweep, "--explain").stdout
    assert ran(build(sweep)) == ["summary"] and runs(sweep) == ["summary"]
    after = slices(sweep)
    assert len(after) == len(before)
    assert sum(a != b for a, b in zip(before, after, strict=True)) == 1
    assert ran(build(sweep)) == [] and runs(sweep) == []


def test_going_back_to_an_old_input_restores_the_outputs(sweep: Project) -> None:
    first = sweep.read("summary.txt")
    sweep.write("data/d_9000.txt", "edited\n")
    build(sweep)
    assert runs(sweep) == ["summary"] and sweep.read("summary.txt") != first
    sweep.write("data/d_9000.txt", "9000\n")
    result = build(sweep)
    assert runs(sweep) == []  # its key, made of slice digests, is the first run's
    assert "restored" in result.stdout
    assert sweep.read("summary.txt") == first


def test_touching_an_input_runs_nothing_and_records_its_new_stat(sweep: Project) -> None:
    before = slices(sweep)
    path = sweep.root / "data" / "d_4000.txt"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert ran(build(sweep)) == [] and runs(sweep) == []
    after = slices(sweep)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert len(changed) == 1  # its stamp moved with the stat...
    assert before[changed[0]][2] == after[changed[0]][2]  # ...its contents did not


def test_dropping_points_from_the_taskfile_keeps_the_slices_far_from_them(
    sweep: Project,
) -> None:
    before = slices(sweep)
    write(sweep, dropped=tuple(range(5000, 5010)))
    result = build(sweep, "--explain")
    assert "summary: inputs changed (removed data/d_5000.txt)" in result.stdout
    build(sweep)
    assert runs(sweep) == ["summary"]
    after = slices(sweep)
    kept = set(before) & set(after)
    assert len(kept) >= len(before) - 2  # the cuts near the dropped points only
    assert len(after) - len(kept) <= 2


def test_a_fan_in_recorded_in_parts_by_the_last_release_is_not_rerun(sweep: Project) -> None:
    """The last release kept a fan-in's record in parts (tasks.files "P\\0<count>",
    another stamp): it is read whole once, found clean, and written in slices."""
    db = sqlite3.connect(sweep.root / ".pytaskmake" / "state.db")
    with db:
        (head,) = db.execute("SELECT files FROM tasks WHERE name = 'summary'").fetchone()
        order = [int(q) for q in head[2:].split(",")]
        for k, q in enumerate(order):
            db.execute(
                "INSERT INTO parts SELECT name, ?, files FROM slices WHERE name = ? AND seq = ?",
                (k, "summary", q),
            )
        db.execute("DELETE FROM slices")
        old = (f"P\0{len(order)}",)
        db.execute("UPDATE tasks SET files = ?, stamp = 12345 WHERE name = 'summary'", old)
        db.execute("DELETE FROM meta")  # the snapshot would answer without reading it
    db.close()
    assert ran(build(sweep)) == [] and runs(sweep) == []
    assert len(slices(sweep)) >= 2
    with sqlite3.connect(sweep.root / ".pytaskmake" / "state.db") as db:
        assert db.execute("SELECT count(*) FROM parts").fetchone()[0] == 0


def _fan_in(root: Path, count: int) -> Task:
    (root / "data").mkdir()
    for i in range(count):
        (root / "data" / f"{i}.txt").write_text(f"{i}\n")
    (root / "out.txt").write_text("total\n")
    paths = tuple(str(root / "data" / f"{i}.txt") for i in range(count))
    return Task("summary", make_action("cat data/*", "summary"), paths, (str(root / "out.txt"),))


def test_a_missing_input_of_a_recorded_fan_in_is_named(tmp_path: Path) -> None:
    task = _fan_in(tmp_path, 9000)
    state = StateDB(tmp_path / "state")
    files = FileCache()
    inputs = current_inputs(task, files)
    assert isinstance(inputs, fanin.SlicedInputs) and len(inputs) == 9000
    outputs = {p: fp for p in task.outputs if (fp := files.fingerprint(p)) is not None}
    stamp = record_stamp(task.action.digest, inputs, outputs)
    state.save_success(task.name, task.action.digest, inputs, outputs, 1.0, stamp)
    state.commit()
    clean = check(task, state.record(task.name), FileCache())
    assert not clean.stale
    os.unlink(task.inputs[4321])
    verdict = check(task, state.record(task.name), FileCache())
    assert (verdict.stale, verdict.code) == (True, MISSING_INPUT)
    assert verdict.reason == f"input {task.inputs[4321]} is missing"
    state.close()


def test_a_fan_ins_key_is_the_same_whatever_holds_its_inputs(tmp_path: Path) -> None:
    task = _fan_in(tmp_path, 9000)
    files = FileCache()
    sliced = current_inputs(task, files)
    plain = {p: fp for p in task.inputs if (fp := files.fingerprint(p)) is not None}
    assert not isinstance(plain, fanin.SlicedInputs)
    assert cache_key("s", ("o",), sliced) == cache_key("s", ("o",), plain)
    plain[task.inputs[10]] = (plain[task.inputs[10]][0], "00" * 32)
    assert cache_key("s", ("o",), sliced) != cache_key("s", ("o",), plain)


def test_a_small_tasks_key_is_the_one_earlier_releases_made() -> None:
    """Run caches are shared between releases and machines: below a fan-in, the key
    of the same files must not move (the values were made by the last release)."""
    ins = {
        "data/a.txt": ((1, 2, 3, 4, 0o100644), "ab" * 32),
        "data/b.txt": ((5, 6, 7, 8, 0o100755), "cd" * 32 + "+x"),
    }
    traced = {"traced.h": ((9, 9, 9, 9, 0o100644), "ef" * 32)}
    sig, outs = "sh:cat data/*", ("out.txt",)
    assert cache_key(sig, outs, ins) == "42733fdb584cc7998ede4c18906ffe5298087e40"
    assert cache_key(sig, outs, ins, traced) == "2ebe8fc45e3ac775e804c06789532a4ea4a24205"


def test_a_planned_fan_in_verdict_outlives_the_state_and_pickles(sweep: Project) -> None:
    """-n over a touched input: the summary is up to date, and its verdict (with
    every input's fingerprint) is read after the state is closed, and pickled."""
    path = sweep.root / "data" / "d_11.txt"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    verdicts = Engine.from_taskfile(sweep.root / "Taskfile.py").plan()
    summary = verdicts["summary"]
    assert not summary.stale and summary.refresh
    again = pickle.loads(pickle.dumps(summary))
    assert len(again.inputs) == len(summary.inputs) == POINTS
    assert again.inputs["data/d_11.txt"] == summary.inputs["data/d_11.txt"]
    assert again.inputs["data/d_11.txt"][0][0] == path.stat().st_mtime_ns


@pytest.mark.parametrize("at_once", [10**6, 0])  # whole, or a slice at a time
def test_every_slice_moved_is_read_a_slice_at_a_time_with_the_same_verdicts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at_once: int
) -> None:
    """A parameter every point reads moves every slice of a summary: the record is read
    slice by slice (fanin.Recorded) instead of whole, and says the same as read whole
    (AT_ONCE = 0 reads them all so; 10**6, all at once)."""
    monkeypatch.setattr(fanin, "AT_ONCE", at_once)
    monkeypatch.chdir(tmp_path)  # (relative paths: the same cuts in every run)
    absolute = _fan_in(tmp_path, 20_000)
    task = Task(
        "summary", absolute.action, tuple(f"data/{i}.txt" for i in range(20_000)), ("out.txt",)
    )
    state = StateDB(tmp_path / "state")
    files = FileCache()
    inputs = current_inputs(task, files)
    assert isinstance(inputs, fanin.SlicedInputs) and len(inputs.slices) > 4
    outputs = {p: fp for p in task.outputs if (fp := files.fingerprint(p)) is not None}
    state.save_success(task.name, task.action.digest, inputs, outputs, 1.0, 0)
    state.commit()
    for path in task.inputs:  # every stat moves, no content does
        st = os.stat(path)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    touched = check(task, state.record(task.name), FileCache())
    assert not touched.stale and touched.refresh
    fewer = Task(task.name, task.action, task.inputs[:7] + task.inputs[8:], task.outputs)
    dropped = check(fewer, state.record(task.name), FileCache())
    assert dropped.stale and dropped.reason == f"inputs changed (removed {task.inputs[7]})"
    for i, path in enumerate(task.inputs):
        if i % 3 == 2:
            Path(path).write_text(f"{i} again\n")
    edited = check(task, state.record(task.name), FileCache())
    assert edited.stale and edited.reason == f"input {task.inputs[2]} changed"
    files = FileCache()
    now = current_inputs(task, files, state.record(task.name))
    plain = {p: files.fingerprint(p) for p in task.inputs}
    assert cache_key("s", ("o",), now) == cache_key("s", ("o",), plain)  # type: ignore[arg-type]
    state.close()
