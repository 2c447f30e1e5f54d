"""The same Taskfile on a Dask cluster (executors/dask.py, executors/dask_worker.py).

A real LocalCluster (2 worker processes on 127.0.0.1, default scheduler settings)
is shared by the tests; pytaskmake runs as a user runs it, through its command line,
against that scheduler.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, build, ran

from pytaskmake.action import make_action
from pytaskmake.errors import ExecutorError
from pytaskmake.executors.base import Job

distributed = pytest.importorskip(
    "distributed", reason="Dask is not installed (pip install 'pytaskmake[dask]')"
)
from pytaskmake.executors.dask import DaskCluster  # noqa: E402

SWEEP = Path(__file__).resolve().parent.parent / "examples" / "sweep"


@dataclass
class Cluster:
    address: str
    scheduler_file: Path
    client: Any

    def worker_pids(self) -> set[int]:
        return set(self.client.run(os.getpid).values())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    scheduler_file = tmp_path_factory.mktemp("dask") / "scheduler.json"
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"scheduler_file": str(scheduler_file)},
            env={"NETSIM_SLEEP": "0"},  # (the example's simulator: no pretend work)
        ) as local,
        distributed.Client(local, set_as_default=False) as client,
    ):
        yield Cluster(local.scheduler_address, scheduler_file, client)
    _stop_dask_threads()


def _stop_dask_threads() -> None:
    """Dask keeps two thread pools for the rest of a process (future callbacks and
    offloading); the tests that follow fork, which pytaskmake does only in a process
    without other threads (snapshot.Prefetch)."""
    from distributed import utils

    for owner, name in ((distributed.Future, "_cb_executor"), (utils, "_offload_executor")):
        pool = getattr(owner, name, None)
        if pool is not None:
            pool.shutdown(wait=True)
    distributed.Future._cb_executor = None


def _alive(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_for(path: Path, seconds: float = 30) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


def _wait_for_journal(project: Project, pgid: int, seconds: float = 30) -> None:
    """Until the worker has journaled the action's process group (just after starting
    it: the action may have written its files first)."""
    folder = project.root / ".pytaskmake" / "dask" / "running"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for journal in folder.glob("*"):
            if any(line.split(" ")[0] == str(pgid) for line in journal.read_text().split("\n")):
                return
        time.sleep(0.02)
    raise AssertionError(f"process group {pgid} never journaled")


def test_the_example_sweep_builds_on_the_cluster_as_it_does_locally(
    cluster: Cluster, tmp_path: Path
) -> None:
    here, there = Project(tmp_path / "local"), Project(tmp_path / "dask")
    for project in (here, there):
        shutil.copytree(SWEEP, project.root, ignore=shutil.ignore_patterns("sims", ".pytaskmake"))
    assert here.run("-j", "2", NETSIM_SLEEP="0").returncode == 0
    first = build(there, "--scheduler-file", str(cluster.scheduler_file))
    assert len(ran(first)) == 28  # 12 simulations, 12 parses, 3 graphs, the report
    made = [p.relative_to(there.root) for p in (there.root / "sims").rglob("*") if p.is_file()]
    assert len(made) == 12 * 3 + 3 * 2 + 1
    for path in made:
        assert (there.root / path).read_bytes() == (here.root / path).read_bytes(), path
    again = build(there, "--scheduler", cluster.address)
    assert ran(again) == [] and "up to date 28" in again.stdout
    # the records (outputs hashed by the workers) are those of a local build: the local
    # executor finds nothing to do
    assert "0 of 28 tasks would run" in build(there, "-n").stdout


def test_a_failing_task_fails_as_locally(cluster: Cluster, project: Project) -> None:
    project.taskfile(
        """
        task("make", 'echo made-$(cat src.txt) > a.txt; echo $PPID > ppid.txt; '
             'test "$(cat src.txt)" = good || { echo "error: bad source"; exit 3; }',
             inputs=["src.txt"], outputs=["a.txt"])
        task("use", "cp a.txt b.txt", inputs=["a.txt"], outputs=["b.txt"])
        task("other", "echo other > c.txt", outputs=["c.txt"])
        """
    )
    # (a callable that cannot be sent to a worker, one holding a lock, is refused when
    # the Taskfile loads: its value has no stable hash either; see test_codeprint.py)
    project.write("src.txt", "good\n")
    build(project, "-k", "--scheduler", cluster.address)
    assert int(project.read("ppid.txt")) in cluster.worker_pids()  # run by a worker
    project.write("src.txt", "bad\n")
    second = build(project, "-k", "--scheduler", cluster.address, code=1)
    assert "error: bad source" in second.stdout and "exit code 3" in second.stdout
    assert "use" in second.stdout and "needs make, which failed" in second.stdout
    assert project.read("a.txt") == "made-good\n"  # the last good output is put back
    failed = list((project.root / ".pytaskmake" / "failed").rglob("a.txt"))
    assert [p.read_text() for p in failed] == ["made-bad\n"]
    plan = build(project, "-n").stdout
    assert "would run make: failed last time" in plan and "would run other" not in plan


KILLABLE = """
task("victim",
     "echo $PPID > worker.pid; echo $$ > action.pid; echo started >> starts.log; "
     "[ -e fast ] || sleep 60; echo done > out.txt",
     outputs=["out.txt"])
"""


def _kill_worker_mid_task(
    project: Project, *args: str, taskfile: str = KILLABLE, before: str = ""
) -> tuple[subprocess.CompletedProcess[str], int]:
    """Start a build of `taskfile`, SIGKILL the worker running its task (after writing
    the file `before`, if given), let the build end; returns it and the action's pid."""
    project.taskfile(taskfile)
    process = project.popen(*args)
    try:
        worker = int(_wait_for(project.root / "worker.pid"))
        action = int(_wait_for(project.root / "action.pid"))
        _wait_for_journal(project, action)
        if before:
            project.write(before, "")
        os.kill(worker, signal.SIGKILL)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in err
    assert not _alive(action)  # what the dead worker left running is stopped
    return subprocess.CompletedProcess(args, process.returncode, out, err), action


def _failed_once(result: subprocess.CompletedProcess[str], project: Project) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "victim" in result.stdout and "its worker died while it ran" in result.stdout
    assert project.read("starts.log") == "started\n"  # never run a second time
    assert not project.exists("out.txt")


def test_a_worker_killed_mid_task_fails_it_once_and_the_next_build_reruns_it(
    cluster: Cluster, project: Project
) -> None:
    # a scheduler with default settings would run it again on the other worker
    _failed_once(_kill_worker_mid_task(project, "--scheduler", cluster.address)[0], project)
    cluster.client.wait_for_workers(2, timeout=30)  # (its nanny restarts the worker)
    project.write("fast", "")
    assert ran(build(project, "--scheduler", cluster.address)) == ["victim"]
    assert project.read("starts.log") == "started\nstarted\n"
    assert project.read("out.txt") == "done\n"


def test_executor_dask_starts_its_own_cluster_where_a_lost_worker_fails_the_task(
    project: Project,
) -> None:
    _failed_once(_kill_worker_mid_task(project, "--executor", "dask", "-j", "2")[0], project)


def test_a_task_whose_worker_died_is_retried_with_retries(
    cluster: Cluster, project: Project
) -> None:
    retried = KILLABLE.replace('outputs=["out.txt"])', 'outputs=["out.txt"], retries=1)')
    result, _ = _kill_worker_mid_task(
        project, "--scheduler", cluster.address, taskfile=retried, before="fast"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "its worker died while it ran" in result.stdout  # said as the retry's reason
    assert project.read("starts.log") == "started\nstarted\n"
    assert project.read("out.txt") == "done\n"


def test_resources_are_honoured_and_one_no_worker_has_is_an_error_before_running(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu = subprocess.Popen(
        [sys.executable, "-m", "dask", "worker", cluster.address, "--nthreads", "1",
         "--resources", "gpu=1", "--no-dashboard", "--host", "127.0.0.1"],
        env={**os.environ, "MARK": "gpu-worker"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    monkeypatch.chdir(tmp_path)
    dask = DaskCluster(scheduler=cluster.address)
    try:
        cluster.client.wait_for_workers(3, timeout=30)
        executor = dask.executor(2, tmp_path / ".pytaskmake")

        def job(name: str, **kw: Any) -> Job:
            command = f"echo ${{MARK:-plain}} > {name}.txt"
            return Job(name, make_action(command, name), (), (f"{name}.txt",), **kw)

        gpus = [job(f"g{i}", resources=(("gpu", 1.0),)) for i in range(3)]
        plain = [job(f"p{i}") for i in range(3)]
        executor.check(gpus + plain)
        with pytest.raises(ExecutorError, match=r"task 'big' needs gpu=2, which no Dask worker"):
            executor.check(iter([*gpus, job("big", resources=(("gpu", 2.0),)), job("never")]))
        with pytest.raises(ExecutorError, match=r"task 'wide' needs cpus=4"):
            executor.check([job("wide", cpus=4)])
        # these workers count no memory: a task's memory (often a peak learned from
        # history) is not a Dask resource then (the head's --mem limit still holds)
        executor.check([job("huge", mem=10**15)])
        assert not list(tmp_path.glob("*.txt"))  # checking runs nothing
        done = []
        for j in gpus + plain:
            while executor.running() >= executor.jobs:
                done += executor.wait(None)
            executor.submit(j)
        while executor.running():
            done += executor.wait(None)
        executor.close()
        assert sorted(c.name for c in done if c.returncode == 0) == sorted(j.name for j in done)
        for j in gpus:
            assert (tmp_path / f"{j.name}.txt").read_text() == "gpu-worker\n"
        fingerprints = {c.name: c.fingerprints for c in done}
        assert set(fingerprints["g0"] or ()) == {"g0.txt"}  # hashed on the worker
    finally:
        dask.close()
        gpu.terminate()
        gpu.wait(30)


def test_sigterm_stops_the_actions_on_the_workers(cluster: Cluster, project: Project) -> None:
    project.taskfile(
        """
        task("long", "echo $$ > action.pid; sleep 60; echo done > out.txt", outputs=["out.txt"])
        """
    )
    process = project.popen("--scheduler", cluster.address)
    try:
        action = int(_wait_for(project.root / "action.pid"))
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, out + err
    assert "interrupted" in out
    assert not _alive(action) and not project.exists("out.txt")
    assert "would run long: failed last time" in build(project, "-n").stdout


def test_output_tails_logs_and_a_trace_row_per_worker_thread(
    cluster: Cluster, project: Project
) -> None:
    project.taskfile(
        """
        for i in range(4):
            task(f"t{i}", f"echo line-{i}; sleep 0.3; echo x > o{i}.txt",
                 outputs=[f"o{i}.txt"], log=f"logs/t{i}.log" if i % 2 else None)
        task("bad", "for i in $(seq 40); do echo noise $i; done; echo 'fatal: it broke'; "
             "seq 30; exit 2", outputs=["never.txt"])
        """
    )
    result = build(
        project, "-k", "-j", "4", "--trace", "trace.json", "--scheduler", cluster.address, code=1
    )
    assert "line-0" in result.stdout and "line-1" not in result.stdout
    assert project.read("logs/t1.log") == "line-1\n"
    assert "fatal: it broke" in result.stdout and "noise 12" not in result.stdout
    assert "exit code 2" in result.stdout
    rows = [e for e in json.loads(project.read("trace.json"))["traceEvents"] if e["ph"] == "X"]
    assert len(rows) == 5
    assert {e["tid"] for e in rows} == {0, 1}  # 4 submitted at once, 2 worker threads


def test_cluster_options_are_checked(project: Project) -> None:
    project.taskfile('task("a", "true")')
    missing = build(project, "--scheduler-file", "nowhere.json", code=2)
    assert "no scheduler file" in missing.stderr and "nowhere.json" in missing.stderr
    both = build(project, "--scheduler", "tcp://x:1", "--scheduler-file", "f", code=2)
    assert "give one" in both.stderr
    local = build(project, "--executor", "local", "--scheduler", "tcp://x:1", code=2)
    assert "--executor local and --scheduler" in local.stderr
    assert "--watch" in build(project, "--watch", "--executor", "dask", code=2).stderr
    result = project.run(
        "--scheduler", "tcp://127.0.0.1:9", DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="1s"
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot use the Dask scheduler at tcp://127.0.0.1:9" in result.stderr
