"""Fault injection: SIGKILL pytaskmake at random points of a 60-task sweep, then rerun.

"Never lose work": whatever instant the build dies at, the rerun must (1) finish with
outputs byte-equal to a clean build's, (2) never redo a task the state DB recorded as
completed, and (3) redo every task that had not completed. Half the seeds kill a build
from scratch, half an incremental rebuild (some parameters edited, some outputs
deleted). The tasks orphaned by the kill are, by seed, SIGKILLed too (partial outputs
left behind), let finish on their own, or left running for the rerun to deal with.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Project, build, ran

pytestmark = pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs /proc")

N = 20  # sims; as many parses and group summaries: 60 tasks
SEEDS = range(22)

TASKFILE = """
import zlib

N = 20

def step(name, work):
    pause = 0.01 * (1 + zlib.crc32(name.encode()) % 5)  # 0.01-0.05 s, fixed per task
    return f"echo {name} $PPID >> runs.log; sleep {pause:.2f}; {work}"

for i in range(N):
    name = f"sim{i:02d}"
    task(name, step(name, f"{{ echo {name}; cat params/{i:02d}.txt; }} > sims/{i:02d}.txt"),
         inputs=[f"params/{i:02d}.txt"], outputs=[f"sims/{i:02d}.txt"])

for i in range(N):
    name = f"parse{i:02d}"
    task(name, step(name, f"tr a-z A-Z < sims/{i:02d}.txt > parsed/{i:02d}.txt"),
         inputs=[f"sims/{i:02d}.txt"], outputs=[f"parsed/{i:02d}.txt"])

for g in range(N):
    name = f"sum{g:02d}"
    inputs = [f"parsed/{m:02d}.txt" for m in sorted({g, (g + 1) % N, (g + 7) % N})]
    task(name, step(name, f"cat {' '.join(inputs)} > summaries/{g:02d}.txt"),
         inputs=inputs, outputs=[f"summaries/{g:02d}.txt"])
"""


def members(g: int) -> list[int]:
    return sorted({g, (g + 1) % N, (g + 7) % N})


def output_of(name: str) -> str:
    kind, number = name.rstrip("0123456789"), name[-2:]
    folder = {"sim": "sims", "parse": "parsed", "sum": "summaries"}[kind]
    return f"{folder}/{number}.txt"


ALL_TASKS = [f"{kind}{i:02d}" for kind in ("sim", "parse", "sum") for i in range(N)]


def params_text(i: int, value: int) -> str:
    return f"param {i} value {value} seed-dependent\n"


def expected_outputs(values: dict[int, int]) -> dict[str, bytes]:
    """The sweep's outputs computed in Python: what any correct build must leave."""
    sims = {i: f"sim{i:02d}\n{params_text(i, values[i])}" for i in range(N)}
    parsed = {i: text.upper() for i, text in sims.items()}
    out = {output_of(f"sim{i:02d}"): sims[i].encode() for i in range(N)}
    out |= {output_of(f"parse{i:02d}"): parsed[i].encode() for i in range(N)}
    for g in range(N):
        out[output_of(f"sum{g:02d}")] = "".join(parsed[m] for m in members(g)).encode()
    return out


def read_outputs(root: Path) -> dict[str, bytes]:
    """The declared outputs that exist, by path."""
    paths = [output_of(name) for name in ALL_TASKS]
    return {p: (root / p).read_bytes() for p in paths if (root / p).exists()}


def write_project(root: Path, values: dict[int, int]) -> Project:
    project = Project(root)
    project.taskfile(TASKFILE)
    for i, value in values.items():
        project.write(f"params/{i:02d}.txt", params_text(i, value))
    return project


def take_runs(root: Path) -> list[tuple[str, int]]:
    """(task, pid of the pytaskmake that started it) per task run; empties runs.log."""
    path = root / "runs.log"
    lines = path.read_text().splitlines() if path.exists() else []
    path.write_text("")
    return [(name, int(ppid)) for name, ppid in (line.split() for line in lines)]


def take_names(root: Path) -> list[str]:
    return [name for name, _ in take_runs(root)]


def records(root: Path) -> dict[str, tuple[int, float]]:
    """name -> (ok, finished) from the state DB, read as a separate process would."""
    path = root / ".pytaskmake" / "state.db"
    if not path.exists():
        return {}  # killed before it was created
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT name, ok, finished FROM tasks").fetchall()
    except sqlite3.OperationalError:
        return {}  # killed before the table was created
    finally:
        db.close()
    return {n: (ok, f) for n, ok, f in rows}


def processes_in(root: Path) -> list[int]:
    """Live processes whose working directory is `root`: the tasks a dead build left."""
    found = []
    where = os.path.realpath(root)
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if os.readlink(f"/proc/{entry}/cwd") == where:
                found.append(int(entry))
        except OSError:
            continue  # gone, a zombie, or not ours
    return found


def clear_orphans(root: Path, kill: bool) -> None:
    """Kill the dead build's task process groups, or wait for them to end on their own."""
    deadline = time.monotonic() + 10
    while pids := processes_in(root):
        if kill:
            for pid in pids:
                try:
                    group = os.getpgid(pid)
                    if group != os.getpgrp():  # tasks lead their own groups; never ours
                        os.killpg(group, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        assert time.monotonic() < deadline, f"orphaned tasks did not end: {pids}"
        time.sleep(0.01)


def restored_in(stdout: str) -> set[str]:
    """Tasks the run cache restored instead of running (they leave no runs.log line)."""
    return set(re.findall(r"\] restored (\S+)", stdout))


@dataclass
class Reference:
    outputs: dict[str, bytes]
    base: Path  # a fully built project to copy for incremental seeds
    full_seconds: float
    noop_seconds: float


BASE_VALUES = {i: 7 * i for i in range(N)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    clean = write_project(tmp_path_factory.mktemp("reference"), BASE_VALUES)
    start = time.monotonic()
    result = clean.run("-j2", timeout=120)
    full = time.monotonic() - start
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(take_names(clean.root)) == sorted(ALL_TASKS)
    outputs = read_outputs(clean.root)
    assert outputs == expected_outputs(BASE_VALUES)  # the Python model is the clean build
    start = time.monotonic()
    assert clean.run("-j2").returncode == 0
    noop = time.monotonic() - start
    assert take_names(clean.root) == []
    return Reference(outputs, clean.root, full, noop)


def stale_after(edited: set[int], deleted: set[str]) -> set[str]:
    """Tasks an incremental build must run: content changes propagate, deletions do not."""
    stale = {f"sim{i:02d}" for i in edited} | {f"parse{i:02d}" for i in edited}
    stale |= {f"sum{g:02d}" for g in range(N) if edited & set(members(g))}
    return stale | deleted


def kill_mid_build(project: Project, rng: random.Random, expect: float, total: int) -> float:
    """Start a build, SIGKILL it at a seed-chosen point; returns when it started."""
    root = project.root
    started = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytaskmake", "-j2"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        if rng.random() < 0.25:  # anywhere, startup and Taskfile loading included
            time.sleep(rng.uniform(0.0, expect))
        else:  # after the k-th task started, plus a jitter of up to one task's length
            k = rng.randint(1, total)
            deadline = time.monotonic() + 30
            log = root / "runs.log"
            while proc.poll() is None and time.monotonic() < deadline:
                if log.exists() and len(log.read_text().splitlines()) >= k:
                    break
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.05))
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(10)
    return started


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_then_rerun_loses_nothing_and_redoes_nothing(
    seed: int, reference: Reference, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    root = tmp_path / "sweep"
    from_scratch = seed % 2 == 0
    if from_scratch:
        values = dict(BASE_VALUES)
        project = write_project(root, values)
        stale = set(ALL_TASKS)
    else:
        shutil.copytree(reference.base, root)
        project = Project(root)
        take_runs(root)
        edited = set(rng.sample(range(N), rng.randint(1, N // 2)))
        values = {i: (1000 * (seed + 1) + i if i in edited else v) for i, v in BASE_VALUES.items()}
        for i in edited:
            project.write(f"params/{i:02d}.txt", params_text(i, values[i]))
        deleted = set(rng.sample(ALL_TASKS, rng.randint(0, 3)))
        for name in deleted:
            (root / output_of(name)).unlink()
        stale = stale_after(edited, deleted)
    expect = reference.noop_seconds + (
        (reference.full_seconds - reference.noop_seconds) * len(stale) / len(ALL_TASKS)
    )

    had = {name for name in ALL_TASKS if (root / output_of(name)).exists()}
    killed_at = kill_mid_build(project, rng, expect, len(stale))
    orphans = ("kill", "wait", "leave")[seed % 3]
    if orphans != "leave":
        clear_orphans(root, kill=orphans == "kill")
        for name in had:  # a rerun over an existing output: the old one is kept somewhere
            path = output_of(name)
            kept = (root / path).exists() or (root / ".pytaskmake" / "backup" / path).exists()
            assert kept, f"seed {seed}: {path} is neither in place nor set aside"
    before = records(root)
    completed = {n for n, (ok, when) in before.items() if ok and when >= killed_at}
    completed |= set(ALL_TASKS) - stale  # up to date before the killed build started

    rerun = project.popen("-j2")
    try:
        stdout, stderr = rerun.communicate(timeout=120)
    finally:
        rerun.kill()
    assert rerun.returncode == 0, stdout + stderr
    assert not processes_in(root), f"seed {seed}: tasks still running after the rerun"
    # a task orphaned by the kill may log itself late: tell the two builds apart by PID
    runs = take_runs(root)
    started = {name for name, pid in runs if pid != rerun.pid}
    assert started <= stale, f"seed {seed}: ran tasks that were up to date: {started - stale}"
    reran = [name for name, pid in runs if pid == rerun.pid]
    assert len(reran) == len(set(reran)), f"seed {seed}: a task ran twice: {reran}"
    redone = set(reran) & completed
    assert not redone, f"seed {seed}: recorded-complete tasks ran again: {sorted(redone)}"
    unfinished = stale - completed
    caught_up = set(reran) | restored_in(stdout)
    assert caught_up == unfinished, (
        f"seed {seed}: missing {sorted(unfinished - caught_up)}, "
        f"extra {sorted(caught_up - unfinished)}"
    )
    if from_scratch:
        assert read_outputs(root) == reference.outputs
    assert read_outputs(root) == expected_outputs(values)
    final = records(root)
    assert set(final) == set(ALL_TASKS) and all(ok for ok, _ in final.values())
    backup = root / ".pytaskmake" / "backup"
    assert not [p for p in backup.rglob("*") if p.is_file()], f"seed {seed}: backups left"

    if seed % 4 == 0:  # and the next build has nothing left to do
        again = project.run("-j2")
        assert again.returncode == 0 and take_runs(root) == [], again.stdout


def test_an_input_removed_while_the_build_runs_fails_its_task_without_a_traceback(
    project: Project,
) -> None:
    """b.txt existed when the build looked, and is gone when b's turn comes (-j1: b
    waits for a): b fails, a's work is kept, and no traceback."""
    project.write("a.txt", "1\n")
    project.write("b.txt", "1\n")
    project.taskfile(
        """
        task("a", "touch started; sleep 1; cp {inputs} {outputs}", inputs=["a.txt"],
             outputs=["a.out"])
        task("b", "cp {inputs} {outputs}", inputs=["b.txt"], outputs=["b.out"])
        """
    )
    proc = project.popen("-j1")
    deadline = time.monotonic() + 10
    while not project.exists("started"):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    (project.root / "b.txt").unlink()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert "Traceback" not in err and "FAILED b" in out, out + err
    assert project.read("a.out") == "1\n"
    project.write("b.txt", "2\n")
    result = build(project)
    assert ran(result) == ["b"] and project.read("b.out") == "2\n"
