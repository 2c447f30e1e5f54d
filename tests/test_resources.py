"""Resources (resources.py): what tasks declare and learn, and the limits a real build
keeps; the tasks log their own start and end, and the test replays the log."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import Project, build

from pytaskmake.errors import ResourceError
from pytaskmake.resources import (
    AUTO,
    Demand,
    Limits,
    Pool,
    learned,
    parse_limit,
    parse_mem,
    parse_named,
)

MiB = 1 << 20

# A task that logs "start NAME T", holds on for a while, then "end NAME T" (and the
# thread count it was given), appending to events.log: the test replays the log.
LOGGED = """
import os, time
from pytaskmake import task

def logged(name, seconds, **kw):
    log = "events.log"
    cmd = (f'echo "start {name} $(date +%s.%N) $OMP_NUM_THREADS" >> {log}; '
           f'{kw.pop("work", "")} sleep {seconds}; echo "end {name} $(date +%s.%N)" >> {log}; '
           f'touch out/{name}')
    return task(name, cmd, outputs=[f"out/{name}"], **kw)
"""


def events(project: Project) -> list[tuple[float, str, str, str]]:
    """(time, start|end, task, thread count) in time order, from events.log."""
    found = []
    for line in project.read("events.log").splitlines():
        kind, name, when, *rest = line.split()
        found.append((float(when), kind, name, rest[0] if rest else ""))
    return sorted(found, key=lambda e: (e[0], e[1] == "start"))  # an end first at a tie


def peak_use(project: Project, demand: dict[str, dict[str, float]]) -> dict[str, float]:
    """The most of each resource held at once, replaying the tasks' own log."""
    held: dict[str, float] = {}
    peak: dict[str, float] = {}
    for _, kind, name, _ in events(project):
        for resource, amount in demand[name].items():
            held[resource] = held.get(resource, 0) + (amount if kind == "start" else -amount)
            peak[resource] = max(peak.get(resource, 0), held[resource])
    return peak


# --- parsing and fitting, in memory --------------------------------------------------


def test_sizes_and_amounts_are_parsed_and_bad_ones_name_the_task() -> None:
    assert parse_mem("4G", "t") == 4 << 30
    assert parse_mem(1000, "t") == 1000
    assert parse_mem(None, "t") == parse_mem("auto", "t") == AUTO
    with pytest.raises(ValueError, match="'t': mem='lots' is not a size"):
        parse_mem("lots", "t")
    assert parse_named({"license": 1, "gpu": 0.5, "none": 0}, "t") == (
        ("gpu", 0.5),
        ("license", 1.0),
    )
    with pytest.raises(ValueError, match="'t': resource 'gpu'"):
        parse_named({"gpu": -1}, "t")
    assert parse_limit("gpu=2") == ("gpu", 2.0)
    with pytest.raises(ValueError, match="NAME=AMOUNT"):
        parse_limit("gpu")


def test_a_learned_peak_gets_a_margin_and_one_of_four_sizes_per_doubling() -> None:
    assert learned(0) == 0
    assert learned(100 * MiB) == 128 * MiB  # 125 MiB, rounded up to 1.0 x 128
    assert learned(200 * MiB) == 256 * MiB  # 250 -> 256
    assert learned(1000 * MiB) == 1280 * MiB  # 1250 -> 1.25 x 1024
    peaks = [learned(p * MiB) for p in range(50, 5000, 7)]
    assert all(learned(p * MiB) >= p * MiB * 1.25 for p in range(50, 5000, 7))
    assert len(set(peaks)) <= 4 * 7, "a sweep's learned peaks share a few sizes"


def test_the_pool_fits_a_demand_only_when_all_of_it_is_free() -> None:
    pool = Pool(Limits(4, 10 * MiB, {"gpu": 1.0}))
    big = Demand(2, 6 * MiB, (("gpu", 1.0),))
    assert pool.fits(big)
    pool.take(big)
    assert not pool.fits(Demand(1, 0, (("gpu", 1.0),)))
    assert not pool.fits(Demand(1, 5 * MiB))
    assert pool.fits(Demand(2, 4 * MiB))
    assert pool.in_use() == (2, 6 * MiB)
    pool.give(big)
    assert pool.in_use() == (0, 0)


def test_a_demand_past_the_whole_limit_names_task_resource_and_line() -> None:
    limits = Limits(2, 0, {})
    with pytest.raises(ResourceError) as raised:
        limits.check("sim 4", "Taskfile.py:7", Demand(cpus=4), declared_mem=False)
    message = str(raised.value)
    assert message.startswith("Taskfile.py:7: task 'sim 4' asks for cpus=4")
    assert "(-j)" in message


# --- real builds ---------------------------------------------------------------------


def test_limits_are_never_exceeded_and_threads_follow_cpus(project: Project) -> None:
    demand = {
        "wide1": {"cpus": 3},
        "wide2": {"cpus": 2, "mem": 300},
        "gpu1": {"cpus": 1, "gpu": 1},
        "gpu2": {"cpus": 1, "gpu": 1},
        "big": {"cpus": 1, "mem": 600},
    }
    for i in range(6):
        demand[f"small{i}"] = {"cpus": 1, "mem": 100}
    project.write(
        "Taskfile.py",
        LOGGED
        + """
logged("wide1", 0.3, cpus=3)
logged("wide2", 0.2, cpus=2, mem="300M")
logged("gpu1", 0.2, resources={"gpu": 1})
logged("gpu2", 0.2, resources={"gpu": 1}, priority=1)
logged("big", 0.3, mem="600M")
for i in range(6):
    logged(f"small{i}", 0.1, mem="100M")
""",
    )
    build(project, "-j", "4", "--mem", "800M", "--resource", "gpu=1")
    peak = peak_use(project, demand)
    assert peak["cpus"] <= 4 and peak["mem"] <= 800 and peak["gpu"] <= 1
    assert peak["cpus"] >= 3, "the slots were used"
    threads = {name: count for _, kind, name, count in events(project) if kind == "start"}
    assert threads["wide1"] == "3" and threads["wide2"] == "2" and threads["small0"] == "1"


def test_a_task_asking_more_than_any_limit_fails_before_anything_runs(project: Project) -> None:
    project.taskfile(
        """
        task("fine", "echo fine >> runs.log", outputs=[])
        task("wide", "echo wide >> runs.log", cpus=8)
        """
    )
    result = build(project, "-j", "2", code=2)
    assert result.stderr.strip().splitlines() == [
        "pytaskmake: error: Taskfile.py:4: task 'wide' asks for cpus=8, more than the whole "
        "limit 2 (-j); nothing was run"
    ]
    assert not project.exists("runs.log")
    project.taskfile('task("cuda", "echo cuda >> runs.log", resources={"gpu": 1})\n')
    result = build(project, code=2)
    assert "task 'cuda' asks for gpu=1, more than the whole limit 0 (--resource)" in result.stderr
    assert build(project, "--resource", "gpu=1").returncode == 0
    assert project.read("runs.log") == "cuda\n"


def test_bad_scheduling_arguments_are_taskfile_errors_with_their_line(project: Project) -> None:
    project.taskfile('task("t", "true", cpus=0)\n')
    result = build(project, code=2)
    assert "Taskfile.py:2: task 't': cpus must be a whole number >= 1" in result.stderr
    project.taskfile('task("t", "true", mem="lots")\n')
    assert "Taskfile.py:2: task 't': mem='lots' is not a size" in build(project, code=2).stderr
    assert "--mem: not a size" in build(project, "--mem", "x", code=2).stderr


def test_a_command_setting_its_thread_count_keeps_it(project: Project) -> None:
    project.taskfile(
        """
        import os
        def show(outputs):
            open(outputs[0], "w").write(os.environ["OMP_NUM_THREADS"])
        task("own", "OMP_NUM_THREADS=7 sh -c 'echo $OMP_NUM_THREADS' > own.txt",
             outputs=["own.txt"], cpus=2)
        task("callable", show, outputs=["callable.txt"], cpus=2)
        """
    )
    build(project, "-j", "2")
    assert project.read("own.txt") == "7\n"
    assert project.read("callable.txt") == "2"


def test_mem_auto_reserves_the_recorded_peak(project: Project) -> None:
    """Two tasks of ~200 MiB each: after a first build recorded their peaks, with
    300 MiB to share they never run at once, though -j2 has room for both."""
    project.write(
        "Taskfile.py",
        LOGGED
        + """
for name in ("hog1", "hog2"):
    logged(name, 0.4, work="python3 -c 'b = bytearray(200 << 20)';", mem="auto")
""",
    )
    build(project, "-j", "2", "--mem", "0")
    measured = project.run("-l").stdout
    assert "hog1  (up to date)  [last run" in measured
    peak = measured.split("hog1")[1].split("peak ")[1].split("]")[0]
    assert peak.endswith("MiB") and 200 <= float(peak.split()[0]) < 260, measured
    (project.root / "events.log").unlink()
    build(project, "-j", "2", "-B", "--mem", "300M")
    starts_and_ends = [kind for _, kind, _, _ in events(project)]
    assert starts_and_ends == ["start", "end", "start", "end"], "they never overlapped"


def test_each_run_is_measured_and_an_older_state_file_opens(project: Project) -> None:
    project.taskfile(
        """
        task("spin", "python3 -c 'sum(range(3_000_000))' && touch spin.txt",
             outputs=["spin.txt"])
        """
    )
    build(project)
    db = project.root / ".pytaskmake" / "state.db"
    with sqlite3.connect(db) as conn:
        runs, wall, cpu = conn.execute("SELECT runs, wall, cpu FROM usage").fetchone()
        conn.execute("DROP TABLE usage")  # as a state file of the previous release
    conn.close()
    assert runs == 1 and wall > 0 and 0 < cpu <= wall * 2
    assert build(project, "-l").stdout == "spin  (up to date)\n", "read-only: no table, no runs"
    build(project, "-B")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT runs FROM usage").fetchone() == (1,)
    conn.close()
