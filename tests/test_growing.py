"""Growing a sweep: a Taskfile edit reruns exactly what it must and checks little else.

One sweep of 4,000 points (8,001 tasks) is built once; each test then edits the
Taskfile as a researcher does (more points, one command, a parameter, fewer
points) and checks which tasks ran, and that the records of tasks far from the
edit were never even read (their stamps are spoiled on purpose: a task whose
record is read and found clean is re-recorded, which would show).
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import Project, build, runs

from pytaskmake import snapshot
from pytaskmake.taskfile import Task

POINTS = 4000

TASKFILE = """
from pytaskmake import task
N, EXTRA, REVISED = {points}, {extra!r}, {revised}
csvs = []
for i in range(1, N + 1):
    cmd = f"echo sim_{{i}} >> runs.log; echo {{i}}{{EXTRA}} > out/sim_{{i}}.dat"
    if i == REVISED:
        cmd += " # revised"
    task(f"sim_{{i}}", cmd, outputs=[f"out/sim_{{i}}.dat"])
    task(f"parse_{{i}}", f"echo parse_{{i}} >> runs.log; cat out/sim_{{i}}.dat > out/p_{{i}}.csv",
         inputs=[f"out/sim_{{i}}.dat"], outputs=[f"out/p_{{i}}.csv"])
    csvs.append(f"out/p_{{i}}.csv")
task("summary", "echo summary >> runs.log; ls out | grep -c csv > summary.txt",
     inputs=csvs, outputs=["summary.txt"])
"""


def write(project: Project, points: int = POINTS, extra: str = "", revised: int = 0) -> None:
    project.write("Taskfile.py", TASKFILE.format(points=points, extra=extra, revised=revised))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sweep built once (about 8,000 processes); each test works on a copy."""
    root = tmp_path_factory.mktemp("sweep")
    project = Project(root)
    (root / "out").mkdir()
    write(project)
    build(project, "-j2", "--no-cache")
    runs(project)
    return root


@pytest.fixture
def sweep(built: Path, tmp_path: Path) -> Project:
    root = tmp_path / "sweep"
    shutil.copytree(built, root, symlinks=True)
    project = Project(root)
    build(project, "--no-cache")  # new inodes: every file is checked, found clean, re-recorded
    assert runs(project) == []
    return project


def spoil_stamps(root: Path, names: set[str]) -> None:
    """Make the records of `names` match no file: a build that reads one re-records it."""
    db = sqlite3.connect(root / ".pytaskmake" / "state.db")
    db.executemany("UPDATE tasks SET stamp = 7 WHERE name = ?", [(n,) for n in names])
    db.commit()
    db.close()


def spoiled(root: Path) -> set[str]:
    """Tasks whose records were not read (nor rewritten) since spoil_stamps."""
    db = sqlite3.connect(root / ".pytaskmake" / "state.db")
    try:
        return {name for (name,) in db.execute("SELECT name FROM tasks WHERE stamp = 7")}
    finally:
        db.close()


def names(points: int) -> list[str]:
    found = [n for i in range(1, points + 1) for n in (f"sim_{i}", f"parse_{i}")]
    return [*found, "summary"]


def far_from(points: int, touched: set[str]) -> set[str]:
    """The tasks in chunks (of the declarations of `points` points) holding no task of
    `touched`: a build after the edit must not read their records."""
    declared = names(points)
    bounds = snapshot.chunk_bounds([Task(n, "true", (), ()) for n in declared])
    chunks = [declared[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    far = {n for chunk in chunks if not touched & set(chunk) for n in chunk}
    assert len(far) > len(declared) // 3, "the test needs more than one chunk far away"
    return far


def test_adding_points_runs_the_new_points_and_the_summary_only(sweep: Project) -> None:
    new = {f"sim_{i}" for i in range(POINTS + 1, POINTS + 11)}
    new |= {f"parse_{i}" for i in range(POINTS + 1, POINTS + 11)}
    far = far_from(POINTS + 10, new | {"summary"})
    spoil_stamps(sweep.root, far)
    write(sweep, points=POINTS + 10)
    result = build(sweep, "--no-cache")
    assert sorted(runs(sweep)) == sorted(new | {"summary"})
    assert "up to date 8000" in result.stdout
    assert sweep.read("summary.txt").strip() == str(POINTS + 10)
    assert spoiled(sweep.root) == far, "a Taskfile edit read records far from it"
    explained = sweep.run("--explain").stdout
    assert "nothing to do" in explained or "0 of" in explained  # and it stays up to date


def test_the_summary_says_which_inputs_were_added(sweep: Project) -> None:
    write(sweep, points=POINTS + 10)
    result = sweep.run("-n")
    assert f"would run summary: inputs changed (added out/p_{POINTS + 1}.csv)" in result.stdout, (
        result.stdout
    )


def test_editing_one_command_reruns_that_task_only(sweep: Project) -> None:
    far = far_from(POINTS, {"sim_1234", "parse_1234", "summary"})
    spoil_stamps(sweep.root, far)
    write(sweep, revised=1234)  # a comment: the same output, so parse_1234 is cut off
    build(sweep, "--no-cache")
    assert runs(sweep) == ["sim_1234"]
    assert spoiled(sweep.root) == far


def test_changing_a_parameter_every_simulation_uses_reruns_everything(sweep: Project) -> None:
    write(sweep, extra=" b=2")
    result = sweep.run("-n")
    said = f"{POINTS} of {2 * POINTS + 1} tasks would run, {POINTS + 1} more may run"
    assert said in result.stdout
    assert "would run sim_17: action changed" in result.stdout


def test_removing_points_reruns_the_summary_only(sweep: Project) -> None:
    far = far_from(POINTS - 10, {"summary"})
    spoil_stamps(sweep.root, far)
    write(sweep, points=POINTS - 10)
    result = build(sweep, "--no-cache")
    assert runs(sweep) == ["summary"]
    assert "up to date 7980" in result.stdout
    assert spoiled(sweep.root) == far
