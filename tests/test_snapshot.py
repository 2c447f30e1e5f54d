"""The no-op snapshot: it answers only when nothing changed, and never outlives a change.

Unit tests on real SQLite files and real stats, then the CLI: a snapshot must
never hide a failed task, a new cycle, a missing output or a killed build.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from conftest import Project, build, runs

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
            db.save_success("t", "digest", {}, {}, 1.0)
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
    raw.execute("DROP TABLE meta")
    raw.execute("UPDATE tasks SET stamp = stamp + 1")  # version 3 made stamps another way
    raw.execute("PRAGMA user_version=3")
    raw.commit()
    raw.close()


def test_a_version_3_database_is_upgraded_in_place(tmp_path: Path) -> None:
    db = StateDB(tmp_path)
    db.save_success("t", "digest", {}, {}, 1.0)
    db.close()
    downgrade_to_version_3(tmp_path / "state.db")
    readonly = StateDB(tmp_path, readonly=True)
    assert readonly.snapshot() is None and readonly.row("t") is not None  # read, not changed
    readonly.close()
    db = StateDB(tmp_path)
    assert db.warning is None and db.row("t") is not None  # the records survive
    db.save_snapshot(b"x" * 24)
    assert db.snapshot() == b"x" * 24
    db.close()
    raw = sqlite3.connect(tmp_path / "state.db")
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 4
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


def test_stats_digest_follows_each_file(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    Path("in.txt").write_text("1")
    Path("a.txt").write_text("2")
    tasks = [mk("a", ("in.txt",), ("a.txt",))]
    before = snapshot.stats_digest(tasks, FileCache())
    assert snapshot.stats_digest(tasks, FileCache()) == before
    os.utime("in.txt", ns=(1, 1))  # same bytes, other mtime: the snapshot is a stat check
    touched = snapshot.stats_digest(tasks, FileCache())
    assert touched != before
    Path("a.txt").unlink()
    assert snapshot.stats_digest(tasks, FileCache()) not in (before, touched)


def test_forked_workers_give_the_digest_of_one_process(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    for i in range(0, 20_000, 997):
        Path(f"f{i}").write_text(str(i))
    tasks = [mk(f"t{i}", (f"f{i}",), (f"o{i}",)) for i in range(20_000)]
    one = snapshot.stats_digest(tasks, FileCache(), workers=1)
    assert snapshot.stats_digest(tasks, FileCache(), workers=2) == one
    assert snapshot.stats_digest(tasks, FileCache(), workers=3) == one
    os.utime("f19940", ns=(5, 5))  # a file in the last chunk, which a child stats
    assert snapshot.stats_digest(tasks, FileCache(), workers=2) != one
    saved = snapshot.pack(snapshot.declarations_digest(tasks), one)
    assert not snapshot.matches(saved, tasks, FileCache(), workers=2)


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


def test_upgrading_from_version_3_reruns_nothing(project: Project) -> None:
    project.write("in.txt", "x\n")
    project.taskfile(SWEEP)
    build(project)
    runs(project)
    downgrade_to_version_3(project.root / ".pytaskmake" / "state.db")
    result = build(project)
    assert runs(project) == [] and "up to date 5" in result.stdout
    assert "state database" not in result.stdout + result.stderr  # no warning, nothing set aside
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
        + 'from pytaskmake.taskfile import _current\n_current.tasks["sim0"].depends_on(last)\n'
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
