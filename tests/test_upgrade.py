"""Upgrading a format-4 state (BLAKE2b hashes, 3-field stats) in place: nothing reruns
for it, and what changed since still does."""

from __future__ import annotations

import os
import sqlite3

from conftest import Project, build, old_files_text, runs


def downgrade_to_format_4(project: Project) -> int:
    """Rewrite the state as pytaskmake 0.1 (format 4) wrote it; returns the rows."""
    db = sqlite3.connect(project.root / ".pytaskmake" / "state.db")
    rows = db.execute("SELECT name, files FROM tasks").fetchall()
    for name, text in rows:
        old = old_files_text(project.root, text)
        db.execute("UPDATE tasks SET files = ?, stamp = 12345 WHERE name = ?", (old, name))
    db.execute("DELETE FROM meta")
    db.execute("PRAGMA user_version=4")
    db.commit()
    db.close()
    return len(rows)


SWEEP = """
for p in "abc":
    task(f"sim_{p}", f"echo sim_{p} >> runs.log; cat in_{p}.txt > out_{p}.txt",
         inputs=[f"in_{p}.txt"], outputs=[f"out_{p}.txt"])
task("all", "echo all >> runs.log; cat out_a.txt out_b.txt out_c.txt > all.txt",
     inputs=["out_a.txt", "out_b.txt", "out_c.txt"], outputs=["all.txt"])
"""


def test_an_upgraded_state_reruns_only_what_changed(project: Project) -> None:
    for p in "abc":
        project.write(f"in_{p}.txt", f"{p}\n")
    project.taskfile(SWEEP)
    build(project)
    assert sorted(runs(project)) == ["all", "sim_a", "sim_b", "sim_c"]
    assert downgrade_to_format_4(project) == 4
    os.utime(project.root / "in_a.txt", ns=(10**18, 10**18))  # touched: same bytes
    project.write("in_b.txt", "B, edited\n")  # edited
    result = build(project)
    assert "upgraded the state" in result.stdout + result.stderr
    assert sorted(runs(project)) == ["all", "sim_b"]  # not sim_a, not sim_c
    build(project)
    assert runs(project) == []  # and the upgraded records vouch for a no-op


def test_a_dry_run_reads_an_older_state_without_changing_it(project: Project) -> None:
    project.write("in_a.txt", "a\n")
    project.taskfile(
        'task("sim_a", "echo sim_a >> runs.log; cat in_a.txt > out_a.txt", '
        'inputs=["in_a.txt"], outputs=["out_a.txt"])\n'
    )
    build(project)
    runs(project)
    downgrade_to_format_4(project)
    state = project.root / ".pytaskmake" / "state.db"
    before = state.read_bytes()
    result = build(project, "-n")
    assert "sim_a" not in result.stdout.replace("up to date", "")  # nothing would run
    assert state.read_bytes() == before
    db = sqlite3.connect(state)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 4
    db.close()
