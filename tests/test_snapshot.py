"""The no-op snapshot: it answers only when nothing changed, and never outlives a change.

Unit tests on real SQLite files and real stats, then the CLI: a snapshot must
never hide a failed task, a new cycle, a missing output or a killed build.
"""

from __future__ import annotations

import marshal
import os
import sqlite3
import time
from pathlib import Path

import pytest
from conftest import Project, build, old_files_text, runs

from pytaskmake import snapshot
from pytaskmake.action import ShellAction
from pytaskmake.fingerprint import FileCache
from pytaskmake.state import StateDB
from pytaskmake.taskfile import Task


def mk(name: str, ins: tuple[str, ...] = (), outs: tuple[str, ...] = (), **kw: object) -> Task:
    return Task(name, ShellAction(kw.pop("cmd", f"make {name}")), ins, outs, **kw)  # type: ignore[arg-type]


# --- the state database keeps it only while no record changed ---------------------------


def test_any_record_written_drops_the_snapshot(tmp_path: Path) -> None:
    for write in ("success", "failure", "forget"):
        db = StateDB(tmp_path / write)
        db.save_snapshot(b"s" * 24)
        assert db.snapshot() == b"s" * 24
        if write == "success":
            db.save_success("t", "digest", {}, {}, 1.0, stamp=0)
        elif write == "failure":
            db.save_failure("t", "digest", 1.0)
        else:
            db.forget(["t"])
        assert db.snapshot() is None, write
        db.close()
        again = StateDB(tmp_path / write)  # and it is gone from the file, not just the object
        assert again.snapshot() is None
        again.close()


def downgrade_to_version_3(path: Path) -> None:
    """Make a state database look like one written before the snapshot existed."""
    raw = sqlite3.connect(path)
    for name, text in raw.execute("SELECT name, files FROM tasks").fetchall():
        old = old_files_text(path.parent.parent, text)
        raw.execute("UPDATE tasks SET files = ? WHERE name = ?", (old, name))
    raw.execute("DROP TABLE meta")
    raw.execute("UPDATE tasks SET stamp = stamp + 1")  # version 3 made stamps another way
    raw.execute("PRAGMA user_version=3")
    raw.commit()
    raw.close()


def test_a_version_3_database_is_upgraded_in_place(tmp_path: Path) -> None:
    db = StateDB(tmp_path)
    db.save_success("t", "digest", {}, {}, 1.0, stamp=0)
    db.close()
    downgrade_to_version_3(tmp_path / "state.db")
    readonly = StateDB(tmp_path, readonly=True)
    assert readonly.snapshot() is None and readonly.row("t") is not None  # read, not changed
    readonly.close()
    db = StateDB(tmp_path)
    assert db.warning is not None and "upgraded" in db.warning
    assert db.row("t") is not None  # the records survive
    db.save_snapshot(b"x" * 24)
    assert db.snapshot() == b"x" * 24
    db.close()
    raw = sqlite3.connect(tmp_path / "state.db")
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 5
    raw.close()


# --- what the digests notice --------------------------------------------------------------


def test_declarations_digest_notices_every_field_the_graph_reads() -> None:
    base = [mk("a", ("in.txt",), ("a.txt",)), mk("b", ("a.txt",), ("b.txt",))]
    digest = snapshot.declarations_digest(base)
    assert snapshot.declarations_digest(list(base)) == digest
    variants = [
        [mk("a", ("in.txt",), ("a.txt",), cmd="other"), base[1]],
        [mk("a", ("in.txt", "x"), ("a.txt",)), base[1]],
        [mk("a", ("in.txt",), ("a.txt", "x")), base[1]],
        [base[0], mk("b", ("a.txt",), ("b.txt",), deps=("a",))],
        [base[0], mk("b", ("a.txt",), ("b.txt",), log="b.log")],
        [mk("A", ("in.txt",), ("a.txt",)), base[1]],
        [base[1], base[0]],
        # the same strings, cut differently between inputs and outputs
        [mk("a", ("in.txt", "a.txt"), ()), base[1]],
    ]
    seen = {snapshot.declarations_digest(v) for v in variants}
    assert digest not in seen and len(seen) == len(variants)


def test_declarations_digest_cannot_be_fooled_by_separators() -> None:
    from pytaskmake.action import ArgvAction

    argv_holds_a_path = Task("t", ArgvAction(("cc", "1", "in.txt")), (), ())
    path_after_argv = Task("t", ArgvAction(("cc",)), ("in.txt",), ())
    assert snapshot.declarations_digest([argv_holds_a_path]) != snapshot.declarations_digest(
        [path_after_argv]
    )
    dep_then_log = mk("t", deps=("a",), log="b")
    two_deps = mk("t", deps=("a", "b"))
    assert snapshot.declarations_digest([dep_then_log]) != snapshot.declarations_digest([two_deps])


def compare(tasks: list[Task], saved: snapshot.Saved, workers: int = 1) -> snapshot.Comparison:
    found = snapshot.compare(saved, snapshot.Chunks(tasks), workers)
    assert found is not None
    return found


def test_chunk_digests_follow_each_file(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    Path("in.txt").write_text("1")
    Path("a.txt").write_text("2")
    tasks = [mk("a", ("in.txt",), ("a.txt",))]
    saved = snapshot.fresh(tasks, FileCache().stat)
    assert saved.paths_of(0) == ["in.txt", "a.txt"]
    assert compare(tasks, saved).nothing_changed
    os.utime("in.txt", ns=(1, 1))  # same bytes, other mtime: the snapshot is a stat check
    touched = compare(tasks, saved)
    assert touched.changed == [0]
    Path("a.txt").unlink()
    gone = compare(tasks, saved)
    assert gone.digests[0] not in (saved.digests[0], touched.digests[0])


def test_chunk_boundaries_move_only_near_an_insertion() -> None:
    """Chunks are cut where the names say, so ten tasks added in the middle of 20,000
    change the declarations of one or two chunks, not of every chunk after them."""
    tasks = [mk(f"sim_{i}", (f"in_{i}",), (f"out_{i}",)) for i in range(20_000)]
    before = snapshot.Chunks(tasks)
    assert 4 <= len(before) <= 20  # about 2,048 tasks each
    assert max(b - a for a, b in zip(before.bounds, before.bounds[1:], strict=False)) <= 8 * 2048
    grown = tasks[:9_000] + [mk(f"new_{i}", (f"in_{i}",), (f"n_{i}",)) for i in range(10)]
    after = snapshot.Chunks(grown + tasks[9_000:])
    differ = set(after.declarations) - set(before.declarations)
    assert 1 <= len(differ) <= 2
    assert len(set(before.declarations) - set(after.declarations)) <= 2


def test_forked_workers_give_the_digests_of_one_process(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    for i in range(0, 20_000, 997):
        Path(f"f{i}").write_text(str(i))
    tasks = [mk(f"t{i}", (f"f{i}",), (f"o{i}",)) for i in range(20_000)]
    saved = snapshot.fresh(tasks, FileCache().stat)
    assert len(saved.digests) >= 5
    for workers in (1, 2, 3):
        now = compare(tasks, saved, workers)
        assert now.digests == list(saved.digests) and now.nothing_changed
    os.utime("f19940", ns=(5, 5))  # a file in the last chunk, which a child stats
    now = compare(tasks, saved, workers=2)
    assert now.changed == [len(saved.digests) - 1]


def test_saved_snapshot_round_trips_and_refuses_garbage(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    tasks = [mk(f"t{i}", ("in.txt", f"x{i}"), (f"o{i}",)) for i in range(10_000)]
    saved = snapshot.fresh(tasks, FileCache().stat)
    back = snapshot.Saved.parse(saved.pack())
    chunks = snapshot.Chunks(tasks)
    assert back is not None and back.declarations == chunks.declarations
    assert list(back.digests) == list(saved.digests)
    second = chunks.bounds[1]
    assert back.paths_of(1) == snapshot.paths_of_tasks(chunks.tasks_of(1))
    assert back.paths_of(1)[:3] == ["in.txt", f"x{second}", f"o{second}"]  # each file once
    old_format = b"(" + b"\xff" * 23  # session-2 snapshots: 24 raw bytes, never unmarshalled
    for bad in (b"", b"garbage", saved.pack()[:-7], b"\x00" * 40, old_format):
        assert snapshot.Saved.parse(bad) is None


def test_the_head_is_read_alone_and_takes_only_its_own_paths(tmp_path: Path) -> None:
    """A no-op reads the head only (7 MB of paths at 100,000 points are not read); the
    paths read later must be the head's own, never another snapshot's."""
    os.chdir(tmp_path)
    tasks = [mk(f"t{i}", ("in.txt", f"x{i}"), (f"o{i}",)) for i in range(5_000)]
    value = snapshot.fresh(tasks, FileCache().stat).pack()
    head, paths = snapshot.fresh(tasks, FileCache().stat).packed()
    assert head + paths == value
    assert len(head) < 2_000 < len(paths)
    alone = snapshot.Saved.parse(head)
    assert alone is not None and not alone.has_paths
    assert snapshot.value_digest(head) == snapshot.value_digest(value)
    edited = [*tasks[:-1], mk("t4999", ("in.txt", "y"), ("o4999",))]
    other = snapshot.fresh(edited, FileCache().stat)
    _, other_paths = other.packed()
    assert not alone.take_paths(other_paths) and not alone.take_paths(paths[:-1])
    assert not alone.take_paths(None) and not alone.has_paths
    assert alone.take_paths(paths) and alone.paths_of(0)[:2] == ["in.txt", "x0"]


def test_a_snapshot_saved_in_parts_is_the_one_packed_whole(tmp_path: Path) -> None:
    """The end of a build saves the snapshot a chunk at a time, letting go of each
    chunk's file list (at 100,000 points the lists and their packed copy were 18 MiB
    at once): the value is marshal's, byte for byte, and the lists are read again."""
    os.chdir(tmp_path)
    tasks = [mk(f"t{i}", ("in.txt", f"x{i}"), (f"o{i}",)) for i in range(5_000)]
    whole = snapshot.fresh(tasks, FileCache().stat)
    head, paths = whole.packed()
    lists = tuple(whole.joined_paths(j) for j in range(len(whole.digests)))
    assert paths == marshal.dumps((lists, whole._tasks, whole._files), 2)
    parted = snapshot.fresh(tasks, FileCache().stat)
    assert b"".join(parted.released()) == paths and parted.head() == head
    assert not parted.has_paths
    assert parted.take_paths(paths) and parted.joined_paths(1) == lists[1]


# --- through the CLI ----------------------------------------------------------------------


def stamps(root: Path) -> dict[str, int]:
    db = sqlite3.connect(root / ".pytaskmake" / "state.db")
    try:
        return dict(db.execute("SELECT name, stamp FROM tasks"))
    finally:
        db.close()


def set_stamps(root: Path, value: int) -> None:
    db = sqlite3.connect(root / ".pytaskmake" / "state.db")
    try:
        db.execute("UPDATE tasks SET stamp = ?", (value,))
        db.commit()
    finally:
        db.close()


SWEEP = """
for i in range(4):
    task(f"sim{i}", f"echo sim{i} >> runs.log; echo {i} > out/sim{i}.txt",
         inputs=["in.txt"], outputs=[f"out/sim{i}.txt"])
task("all", "echo all >> runs.log; cat out/sim*.txt > all.txt",
     inputs=[f"out/sim{i}.txt" for i in range(4)], outputs=["all.txt"])
"""


def test_a_no_op_is_answered_without_reading_the_records(project: Project) -> None:
    project.write("in.txt", "x\n")
    project.taskfile(SWEEP)
    build(project)
    assert len(runs(project)) == 5
    set_stamps(project.root, 7)  # records no longer match any file: only the snapshot can
    result = build(project)
    assert "up to date 5" in result.stdout and runs(project) == []
    assert set(stamps(project.root).values()) == {7}, "a no-op wrote records"
    project.write("in.txt", "y\n")  # now the records are needed, and consulted
    build(project)
    assert sorted(runs(project)) == ["sim0", "sim1", "sim2", "sim3"]  # same bytes: no "all"
    assert 7 not in stamps(project.root).values()  # "all" was checked and re-recorded


def test_damaged_snapshot_paths_are_never_trusted(project: Project) -> None:
    project.write("in.txt", "x\n")
    project.taskfile(SWEEP)
    build(project)
    runs(project)
    set_stamps(project.root, 7)
    db = sqlite3.connect(project.root / ".pytaskmake" / "state.db")
    with db:
        db.execute("UPDATE meta SET value = X'00ff' WHERE key LIKE 'snapshot paths %'")
        assert db.total_changes == 1
    db.close()
    result = build(project)  # the stat children need the paths: damaged, so every record
    assert "up to date 5" in result.stdout and runs(project) == []
    assert 7 not in stamps(project.root).values()  # (consulted, and refreshed)
    project.write("in.txt", "y\n")
    build(project)
    assert sorted(runs(project)) == ["sim0", "sim1", "sim2", "sim3"]
    assert 7 not in stamps(project.root).values()
    result = build(project)
    assert "up to date 5" in result.stdout and runs(project) == []


def test_upgrading_from_version_3_reruns_nothing(project: Project) -> None:
    project.write("in.txt", "x\n")
    project.taskfile(SWEEP)
    build(project)
    runs(project)
    downgrade_to_version_3(project.root / ".pytaskmake" / "state.db")
    result = build(project)
    assert runs(project) == [] and "up to date 5" in result.stdout
    assert "upgraded the state" in result.stdout  # said once, nothing set aside
    assert not list((project.root / ".pytaskmake").glob("state.db.damaged*"))


def test_a_failed_task_without_outputs_runs_again(project: Project) -> None:
    project.taskfile('task("check", "echo check >> runs.log; test -f ok.flag")\n')
    build(project, code=1)
    build(project, code=1)
    assert runs(project) == ["check", "check"]
    project.write("ok.flag", "")
    build(project)
    build(project)
    assert runs(project) == ["check"]


def test_a_cycle_made_with_deps_alone_is_still_refused(project: Project) -> None:
    project.write("in.txt", "x\n")
    project.taskfile(SWEEP)
    build(project)
    project.taskfile(SWEEP.replace('task("all"', 'last = task("all"') + "\n")
    build(project)
    project.taskfile(
        SWEEP.replace('task("all"', 'last = task("all"')
        + "from pytaskmake.taskfile import _loading\n"
        + '_loading.get().tasks["sim0"].depends_on(last)\n'
    )
    result = build(project, code=2)
    assert "dependency cycle" in result.stderr


def test_a_partial_build_then_a_deleted_output(project: Project) -> None:
    project.write("in.txt", "x\n")
    project.taskfile(SWEEP)
    build(project, "--no-cache", "sim1")
    assert runs(project) == ["sim1"]
    build(project, "--no-cache")
    assert sorted(runs(project)) == ["all", "sim0", "sim2", "sim3"]
    (project.root / "out" / "sim2.txt").unlink()
    build(project, "--no-cache")
    assert runs(project) == ["sim2"]  # its bytes are the same: "all" is cut off
    build(project, "--no-cache")
    assert runs(project) == []


def test_a_touched_input_checks_only_the_chunks_it_reaches(project: Project) -> None:
    """Past a snapshot miss only the tasks whose files moved are read, and those reached."""
    names = ["t0"] + [f"t{i}" for i in range(1, 4001)] + ["last"]
    names += [f"t{i}" for i in range(4001, 8000)]
    bounds = snapshot.Chunks([Task(n, "true", (), ()) for n in names]).bounds
    assert bounds[:4] == [0, 3042, 4724, 6051]  # the layout this test is written for:
    # chunk 0 reads a.txt (t0 writes out0.txt), chunk 1 holds "last" (reads out0.txt),
    # chunk 3 (t6051 on) is reached by nothing
    project.write("a.txt", "a\n")
    project.write("b.txt", "b\n")
    lines = [
        'task("t0", "echo t0 >> runs.log; cat a.txt > out0.txt", inputs=["a.txt"],'
        ' outputs=["out0.txt"])',
        "for i in range(1, 8000):",
        '    task(f"t{i}", "true", inputs=["a.txt" if i < 3042 else "b.txt"])',
        "    if i == 4000:",
        '        task("last", "echo last >> runs.log; cat out0.txt > last.txt",'
        ' inputs=["out0.txt"], outputs=["last.txt"])',
    ]
    project.taskfile("\n".join(lines) + "\n")
    build(project, "--no-cache")
    assert runs(project) == ["t0", "last"]
    set_stamps(project.root, 7)  # no record matches now: a task whose record is read says so
    os.utime(project.root / "a.txt", ns=(10**18, 10**18))  # the first chunk's files moved
    result = build(project, "--no-cache")
    assert runs(project) == [] and "up to date 8001" in result.stdout
    now = stamps(project.root)
    assert now["t5"] != 7 and now["t0"] != 7  # checked, found clean, re-recorded
    assert now["last"] != 7  # reached
    assert now["t4500"] == 7  # in the chunk reached, but its files did not move: not read
    assert now["t3041"] != 7 and now["t3042"] == 7  # a.txt moved, b.txt did not
    assert now["t7000"] == 7  # a chunk nothing reached was never read
    assert "up to date 8001" in build(project, "--no-cache").stdout  # the snapshot again
    project.write("a.txt", "A\n")
    build(project, "--no-cache")
    assert runs(project) == ["t0", "last"]  # reached across chunks through out0.txt
    assert project.read("last.txt") == "A\n"


def test_a_file_edited_during_a_build_is_seen_by_the_next(project: Project) -> None:
    """A file of a chunk the build reached, edited while it ran, must not pass unchecked."""
    project.write("a.txt", "a\n")
    project.write("c.in", "c\n")
    lines = [
        'task("A", "echo A >> runs.log; cat a.txt > a.out; "'
        '"if grep -q new a.txt; then sleep 0.2; cat a.txt > c.in; fi",'  # edits c.in, once
        ' inputs=["a.txt"], outputs=["a.out"])',
        "for i in range(1, 2048):",
        '    task(f"pad{i}", "true")',
        'task("B", "echo B >> runs.log; cat a.out > b.out", inputs=["a.out"], outputs=["b.out"])',
        'task("C", "echo C >> runs.log; cat c.in > c.out", inputs=["c.in"], outputs=["c.out"])',
    ]
    project.taskfile("\n".join(lines) + "\n")
    build(project, "--no-cache")
    assert sorted(runs(project)) == ["A", "B", "C"]
    project.write("a.txt", "new\n")
    build(project, "--no-cache")
    assert sorted(runs(project)) == ["A", "B"]  # C was checked before A edited c.in
    build(project, "--no-cache")
    assert runs(project) == ["C"] and project.read("c.out") == "new\n"


def test_reordered_declarations_rerun_nothing(project: Project) -> None:
    project.write("in.txt", "x\n")
    project.taskfile(SWEEP)
    build(project)
    runs(project)
    lines = SWEEP.strip().splitlines()
    project.taskfile("\n".join(lines[3:] + lines[:3]) + "\n")  # "all" declared first
    build(project)
    build(project)
    assert runs(project) == []


# --- a Taskfile that writes files while loading ---------------------------------------


def test_an_input_the_taskfile_rewrites_while_loading_is_seen(project: Project) -> None:
    """Stats are taken after the Taskfile ran, so its own writes are seen."""
    project.write("setting.cfg", "1\n")
    project.taskfile(
        "import pathlib, time\n"
        "time.sleep(0.5)  # the stat workers are done by now\n"
        'pathlib.Path("in.txt").write_text(pathlib.Path("setting.cfg").read_text())\n'
        'task("use", "echo use >> runs.log; cat in.txt > out.txt", inputs=["in.txt"],'
        ' outputs=["out.txt"])\n'
    )
    build(project, "--no-cache")
    assert runs(project) == ["use"]
    project.write("setting.cfg", "2\n")
    build(project, "--no-cache")
    assert runs(project) == ["use"] and project.read("out.txt") == "2\n"


# --- stats taken while the Taskfile loads -------------------------------------------------


def chunk_of(chunks: snapshot.Chunks, name: str) -> int:
    position = [t.name for t in chunks.tasks].index(name)
    return max(j for j, start in enumerate(chunks.bounds[:-1]) if start <= position)


def test_prefetched_digests_are_those_of_a_comparison_after_the_load(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    for i in range(0, 20_000, 997):
        Path(f"f{i}").write_text(str(i))
    tasks = [mk(f"t{i}", (f"f{i}",), (f"o{i}",)) for i in range(20_000)]
    value = snapshot.fresh(tasks, FileCache().stat).pack()
    for workers in (1, 2):
        early = snapshot.Prefetch.start(value, workers)
        assert early is not None and early.digests(value) == list(Saved(value).digests)
    os.utime("f4985", ns=(5, 5))
    early = snapshot.Prefetch.start(value, 2)
    assert early is not None
    found = early.digests(value)
    saved = Saved(value)
    chunks = snapshot.Chunks(tasks)
    comparison = snapshot.compare(saved, chunks, taken=found)
    assert comparison is not None and comparison.changed == [chunk_of(chunks, "t4985")]
    assert comparison.changed == compare(tasks, saved).changed  # as if taken after the load


def test_prefetched_digests_are_void_after_a_write_or_another_snapshot(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    tasks = [mk(f"t{i}", (f"f{i}",)) for i in range(100)]
    value = snapshot.fresh(tasks, FileCache().stat).pack()
    spoiled = snapshot.Prefetch.start(value, 1)
    assert spoiled is not None
    spoiled.spoil()
    assert spoiled.digests(value) is None
    other = snapshot.Prefetch.start(value, 1)
    assert other is not None and other.digests(value + b"") is not None
    changed = snapshot.Prefetch.start(value, 1)
    assert changed is not None and changed.digests(None) is None  # dropped by another build
    assert snapshot.Prefetch.start(None, 1) is None
    assert snapshot.Prefetch.start(b"garbage", 1) is None


def Saved(value: bytes) -> snapshot.Saved:  # noqa: N802 (reads as the class it returns)
    found = snapshot.Saved.parse(value)
    assert found is not None
    return found


WRITERS = {
    "open for writing": 'open("made.txt", "w").close()',
    "Path.write_text": 'import pathlib; pathlib.Path("made.txt").write_text("x")',
    "os.replace": 'open("a", "w").close(); import os; os.replace("a", "b")',
    "a process": 'import subprocess; subprocess.run(["true"])',
    "os.system": 'import os; os.system("true")',
    "os.utime": 'import os; os.utime("Taskfile.py")',
}
READERS = {
    "reading a file": 'open("Taskfile.py").read()',
    "listing a folder": 'import os, glob; os.listdir("."); glob.glob("*.py")',
    "importing": "import json, csv",
}


def test_the_taskfile_writing_a_file_is_noticed(tmp_path: Path) -> None:
    from pytaskmake.taskfile import load_taskfile

    noticed: list[str] = []
    for what, code in {**WRITERS, **READERS}.items():
        text = f"from pytaskmake import task\n{code}\ntask('t', 'true')\n"
        (tmp_path / "Taskfile.py").write_text(text)
        noticed.clear()
        load_taskfile(tmp_path / "Taskfile.py", on_write=lambda: noticed.append("write"))
        assert bool(noticed) == (what in WRITERS), what
        load_taskfile(tmp_path / "Taskfile.py")  # and nothing is called without on_write


def test_no_prefetch_while_another_build_may_hold_the_lock(project: Project) -> None:
    from pytaskmake.engine import start_prefetch

    project.write("in.txt", "x\n")
    project.taskfile(SWEEP)
    build(project)
    lock = project.root / ".pytaskmake" / "lock"
    lock.write_text("999999999\n")  # left by a build that is gone
    early = start_prefetch(project.root / "Taskfile.py")
    assert early is not None and early.lock_seen == (lock.stat().st_mtime_ns, "999999999")
    early.close()
    lock.write_text(f"{os.getpid()}\n")  # a live process: it may be building now
    assert start_prefetch(project.root / "Taskfile.py") is None


def test_a_command_edited_everywhere_seeds_the_stats_under_the_tasks_own_paths(
    tmp_path: Path,
) -> None:
    """Every chunk's declarations changed but its files did not (a parameter every
    simulation uses): each chunk takes the children's stats of the saved chunk at its
    own position, keyed by the very path strings its tasks hold (new strings for
    300,000 paths were ~19 MiB at 100,000 points), and the stats are the files'."""
    os.chdir(tmp_path)
    for i in range(0, 6_000, 7):
        Path(f"f{i}").write_text(str(i))
    old = [mk(f"t{i}", (f"f{i}",), (f"o{i}",)) for i in range(6_000)]
    value = snapshot.fresh(old, FileCache().stat).pack()
    # the same names and files, but built anew (other string objects) with new commands
    tasks = [mk(f"t{i}", ("f" + str(i),), ("o" + str(i),), cmd=f"new {i}") for i in range(6_000)]
    prefetch = snapshot.Prefetch.start(value, 2)
    assert prefetch is not None
    saved = Saved(value)
    found = prefetch.digests(value)
    chunks = snapshot.chunks_like(saved, tasks)
    comparison = snapshot.compare(saved, chunks, taken=found)
    assert comparison is not None and len(chunks) > 1
    assert comparison.changed == list(range(len(chunks)))  # no declarations repeated
    comparison.prefetch = prefetch
    files = FileCache()
    try:
        for j in range(len(chunks)):
            comparison.seed(j, files)
    finally:
        comparison.let_go()
    keys = {id(k) for k in files._known}
    assert all(id(p) in keys for t in tasks for p in (*t.inputs, *t.outputs))
    assert len(files._known) == 12_000
    assert files.stat("f7") == FileCache().stat("f7") and files.stat("o7") is None


def test_a_checked_comparison_holds_only_the_saved_chunks_it_repeats(tmp_path: Path) -> None:
    """Once the suspects are found, the saved file lists no current chunk repeats are
    let go of (a parameter every point uses, edited: 12 MiB at 100,000 points, held
    for the whole build); the snapshot saved at the end is the one made from scratch,
    and the saved one, partly let go of, can no longer be asked or saved."""
    os.chdir(tmp_path)
    for i in range(0, 8_000, 5):
        Path(f"f{i}").write_text(str(i))
    old = [mk(f"t{i}", (f"f{i}",), (f"o{i}",)) for i in range(8_000)]
    saved = Saved(snapshot.fresh(old, FileCache().stat).pack())
    tasks = [mk(t.name, t.inputs, t.outputs, cmd=f"new {i}") if i < 3_000 else t
             for i, t in enumerate(old)]  # fmt: skip
    chunks = snapshot.chunks_like(saved, tasks)
    comparison = snapshot.compare(saved, chunks)
    assert comparison is not None
    repeated = {i for i in comparison.matched if i >= 0}
    dropped = set(range(len(saved.digests))) - repeated
    assert repeated and dropped
    comparison.checked()
    for i in repeated:
        assert saved.paths_of(i) == snapshot.paths_of_tasks(chunks.tasks_of(i))
    for i in dropped:
        with pytest.raises(RuntimeError, match="let go of"):
            saved.joined_paths(i)
        with pytest.raises(RuntimeError, match="let go of"):
            saved.file_digests(i)
    with pytest.raises(RuntimeError, match="let go of"):
        saved.packed()
    stat = FileCache().stat
    assert comparison.updated(stat, set()).pack() == snapshot.fresh(tasks, stat, chunks).pack()


def test_redeclared_tasks_are_the_new_and_edited_ones_not_their_chunks(tmp_path: Path) -> None:
    """The tasks whose declarations no saved chunk held: a command edited names that
    task, points added name the new tasks (and a reader whose inputs grew), never
    the other tasks of their chunks; past _MOST_SUSPECTED, every task of them."""
    os.chdir(tmp_path)
    old = [mk(f"t{i}", (f"f{i}",), (f"o{i}",)) for i in range(8_000)]
    old.append(mk("all", tuple(f"o{i}" for i in range(8_000)), ("all.txt",)))
    saved = Saved(snapshot.fresh(old, FileCache().stat).pack())
    edited = [mk("t4321", ("f4321",), ("o4321",), cmd="new") if t.name == "t4321" else t
              for t in old]  # fmt: skip
    grown = [*old[:-1], mk("t8000", ("f8000",), ("o8000",))]
    grown.append(mk("all", tuple(f"o{i}" for i in range(8_001)), ("all.txt",)))
    for tasks, expected in ((edited, ["t4321"]), (grown, ["t8000", "all"])):
        comparison = snapshot.compare(saved, snapshot.chunks_like(saved, tasks))
        assert comparison is not None
        assert [t.name for t in comparison.redeclared()] == expected
    every = [mk(t.name, t.inputs, t.outputs, cmd="v2") for t in old]
    comparison = snapshot.compare(saved, snapshot.chunks_like(saved, every))
    assert comparison is not None and len(comparison.redeclared()) == len(every)


def test_chunks_like_cuts_where_the_names_say_whatever_was_edited(tmp_path: Path) -> None:
    """An edited command keeps the saved cuts (digested once); an added task moves
    them: either way the chunks are those the names give."""
    os.chdir(tmp_path)
    tasks = [mk(f"t{i}", (f"f{i}",), (f"o{i}",)) for i in range(9_000)]
    saved = snapshot.fresh(tasks, FileCache().stat)
    edited = [*tasks[:50], mk("t50", ("f50",), ("o50",), cmd="new"), *tasks[51:]]
    grown = [*tasks, mk("t9000", ("f9000",), ("o9000",))]
    for now in (tasks, edited, grown):
        found, fresh = snapshot.chunks_like(saved, now), snapshot.Chunks(now)
        assert (found.bounds, found.declarations) == (fresh.bounds, fresh.declarations)
    assert snapshot.chunks_like(saved, edited).declarations != saved.declarations


EDITED = """
for i in range(3000):
    cmd = "echo t{i} >> runs.log; cat in{k}.txt > out/t{i}.txt" + ("  # v2" if i == 1234 else "")
    task(f"t{i}", cmd.format(i=i, k=i % 3), inputs=[f"in{i % 3}.txt"], outputs=[f"out/t{i}.txt"])
"""


def test_a_command_edited_reads_that_task_and_those_whose_files_moved(project: Project) -> None:
    """One command edited among 3,000 tasks (one chunk or two): the edited task runs;
    of the others only those whose files moved since the snapshot are read (an input
    edited at the same time reruns its readers), never every task of the chunk."""
    for k in range(3):
        project.write(f"in{k}.txt", f"{k}\n")
    (project.root / "out").mkdir()
    project.taskfile(EDITED.replace('+ ("  # v2" if i == 1234 else "")', ""))
    build(project, "-j2")
    assert len(runs(project)) == 3000
    set_stamps(project.root, 7)  # a task whose record is read is re-recorded
    project.taskfile(EDITED)
    project.write("in2.txt", "two\n")  # the readers of in2.txt: i % 3 == 2
    build(project, "-j2")
    assert sorted(runs(project)) == sorted(
        {f"t{i}" for i in range(3000) if i % 3 == 2} | {"t1234"}
    )
    now = stamps(project.root)
    assert now["t1234"] != 7 and now["t2"] != 7  # ran
    assert now["t0"] == 7 and now["t1"] == 7 and now["t1233"] == 7  # never read
    assert project.read("out/t5.txt") == "two\n"
    result = build(project)
    assert runs(project) == [] and "up to date 3000" in result.stdout


RACED = """
import os, time
from pytaskmake import task
NEW = {new}
for i in range(6000):
    if NEW and i == 5001:
        task("new1", "cat in/s.txt > out/new1.txt; echo new1 >> runs.log",
             inputs=["in/s.txt"], outputs=["out/new1.txt"])
    src = "in/s.txt" if i == 100 else f"in/{{i % 300}}.txt"
    mark = "x" if i in {edited} else ""
    task(f"t{{i}}", f"cat {{src}} > out/{{i}}.txt; echo t{{i}}{{mark}} >> runs.log",
         inputs=[src], outputs=[f"out/{{i}}.txt"])
while os.path.exists("hold.flag") and not os.path.exists("go.flag"):  # (a slow load)
    time.sleep(0.05)
"""


def test_a_file_edited_while_the_build_starts_is_seen_by_a_later_edit(project: Project) -> None:
    """in/s.txt is edited while a build loads its Taskfile (after the stat processes saw
    it): that build may miss it, but the snapshot it saves must not hide it from the
    next (found by a helper breaking the per-task suspects: the saved chunks then held
    two stats of in/s.txt, and t100 was compared with the later one)."""
    for k in range(300):
        project.write(f"in/{k}.txt", f"{k}\n")
    project.write("in/s.txt", "v1\n")
    (project.root / "out").mkdir()
    project.taskfile(RACED.format(new=False, edited=()))
    build(project, "-j2", "--no-cache")
    runs(project)
    project.taskfile(RACED.format(new=True, edited=()))
    project.write("hold.flag", "")
    racing = project.popen("-j2", "--no-cache")
    time.sleep(2)  # the stat processes have seen in/s.txt as it was
    project.write("in/s.txt", "v2\n")
    project.write("go.flag", "")
    out, err = racing.communicate(timeout=120)
    assert racing.returncode == 0, out + err
    (project.root / "hold.flag").unlink()
    (project.root / "go.flag").unlink()
    runs(project)
    project.taskfile(RACED.format(new=True, edited=(150, 4950)))
    build(project, "-j2", "--no-cache")
    ran = runs(project)
    assert {"t150x", "t4950x"} <= set(ran)
    if project.read("out/100.txt") != "v2\n" or "t100" in ran:  # (else the race was lost)
        assert "t100" in ran and project.read("out/100.txt") == "v2\n"
    assert project.read("out/new1.txt") == "v2\n"
    build(project, "--no-cache")
    assert runs(project) == []
