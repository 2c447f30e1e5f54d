"""Watch mode (watch.py), driven as a user would: a real `pytaskmake --watch` process,
real file edits, real watchdog (inotify) events, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import Project, runs
from test_interrupt import group_members


class Watching:
    def __init__(self, project: Project) -> None:
        self.log = project.root / "_watch.out"
        self.handle = open(self.log, "wb")  # noqa: SIM115 (closed by stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytaskmake", "--watch", "-j2"],
            cwd=project.root,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def builds(self) -> int:
        """How many times it came back to waiting (the first build included)."""
        return self.output().count("pytaskmake: watching")

    def wait_builds(self, n: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while self.builds() < n:
            assert self.proc.poll() is None, self.output()
            assert time.monotonic() < deadline, f"no build {n}:\n{self.output()}"
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(15)
        finally:
            self.handle.close()


@contextmanager
def watching(project: Project) -> Iterator[Watching]:
    w = Watching(project)
    try:
        w.wait_builds(1)
        yield w
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait(5)
        w.handle.close()


PIPELINE = """
task("up", "echo up >> runs.log; tr a-z A-Z < in.txt > up.txt", inputs=["in.txt"],
     outputs=["up.txt"])
task("count", "echo count >> runs.log; wc -c < up.txt > count.txt", inputs=["up.txt"],
     outputs=["count.txt"])
task("other", "echo other >> runs.log; cat other.txt > other.out", inputs=["other.txt"],
     outputs=["other.out"])
"""


@pytest.fixture
def pipeline(project: Project) -> Project:
    project.write("in.txt", "hello\n")
    project.write("other.txt", "o\n")
    project.taskfile(PIPELINE)
    return project


def test_an_edit_reruns_exactly_its_downstream_and_nothing_else_triggers(
    pipeline: Project,
) -> None:
    with watching(pipeline) as w:
        assert sorted(runs(pipeline)) == ["count", "other", "up"]
        pipeline.write("in.txt", "changed\n")
        w.wait_builds(2)
        assert runs(pipeline) == ["up", "count"]
        assert pipeline.read("up.txt") == "CHANGED\n" and pipeline.read("count.txt").strip() == "8"
        assert "changed: in.txt" in w.output()
        pipeline.write("notes.txt", "not an input\n")  # a neighbour of the outputs
        pipeline.write("up.txt.orig", "a copy\n")
        pipeline.write(".pytaskmake/scratch", "state folder\n")
        pipeline.write("in.txt.swp", "an editor's swap file\n")
        time.sleep(1.0)
        assert w.builds() == 2, w.output()  # none of those triggered a build
        assert w.stop() == 130


def test_a_burst_of_edits_gives_one_rebuild(pipeline: Project) -> None:
    with watching(pipeline) as w:
        runs(pipeline)
        for i in range(20):
            pipeline.write("in.txt", f"edit {i}\n")
        w.wait_builds(2)
        time.sleep(1.0)
        assert w.builds() == 2, w.output()
        assert runs(pipeline) == ["up", "count"]
        assert pipeline.read("up.txt") == "EDIT 19\n"
        w.stop()


def test_taskfile_edits_reload_and_a_broken_taskfile_keeps_the_watch(pipeline: Project) -> None:
    with watching(pipeline) as w:
        runs(pipeline)
        pipeline.taskfile(
            PIPELINE + 'task("new", "echo new >> runs.log; echo n > new.txt", '
            'outputs=["new.txt"])\n'
        )
        w.wait_builds(2)
        assert runs(pipeline) == ["new"]
        pipeline.taskfile(PIPELINE + "task(\n")  # a syntax error
        w.wait_builds(3)
        assert "syntax error" in w.output() and "keeping the last good Taskfile" in w.output()
        assert w.proc.poll() is None
        pipeline.write("in.txt", "still watched\n")  # with the last good graph
        w.wait_builds(4)
        assert runs(pipeline) == ["up", "count"]
        w.stop()


@pytest.mark.parametrize(
    "bad, said",
    [
        (  # a cycle: found only when the graph is built, after the load
            'task("a", "cat b.txt > a.txt", inputs=["b.txt"], outputs=["a.txt"])\n'
            'task("b", "cat a.txt > b.txt", inputs=["a.txt"], outputs=["b.txt"])\n',
            "dependency cycle: ",
        ),
        (  # two tasks writing one file
            'task("twin", "tr a-z A-Z < in.txt > up.txt", inputs=["in.txt"], outputs=["up.txt"])\n',
            "up.txt",
        ),
    ],
    ids=["cycle", "clash"],
)
def test_a_taskfile_whose_graph_is_wrong_keeps_the_last_good_one(
    pipeline: Project, bad: str, said: str
) -> None:
    """The load succeeds, the graph does not: the watch says so in one line and goes
    on with the last good declarations, as for a Taskfile that does not load."""
    with watching(pipeline) as w:
        runs(pipeline)
        pipeline.taskfile(PIPELINE + bad)
        w.wait_builds(2)
        assert said in w.output() and "keeping the last good Taskfile" in w.output()
        assert "Traceback" not in w.output()
        pipeline.write("in.txt", "still watched\n")  # with the last good graph
        w.wait_builds(3)
        assert runs(pipeline) == ["up", "count"]
        assert pipeline.read("up.txt") == "STILL WATCHED\n"
        pipeline.taskfile(
            PIPELINE + 'task("new", "echo new >> runs.log; echo n > new.txt", '
            'outputs=["new.txt"])\n'
        )
        w.wait_builds(4)
        assert runs(pipeline) == ["new"]
        assert w.stop() == 130


def test_a_new_file_in_a_globbed_folder_is_picked_up(project: Project) -> None:
    project.write("data/a.csv", "1\n")
    project.taskfile(
        """
        import glob, os
        for path in sorted(glob.glob("data/*.csv")):
            name = os.path.basename(path)
            task(f"conv {name}", f"echo {name} >> runs.log; cp {path} out/{name}",
                 inputs=[path], outputs=[f"out/{name}"])
        """
    )
    with watching(project) as w:
        assert runs(project) == ["a.csv"]
        project.write("data/b.csv", "2\n")
        w.wait_builds(2)
        assert runs(project) == ["b.csv"] and project.read("out/b.csv") == "2\n"
        w.stop()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stopping_the_watch_leaves_no_process_behind(pipeline: Project, sig: int) -> None:
    pipeline.taskfile(
        PIPELINE + 'task("slow", "echo $$ > slow.pid; sleep 30", inputs=["slow.in"])\n'
    )
    pipeline.write("slow.in", "1\n")
    w = Watching(pipeline)
    try:
        deadline = time.monotonic() + 20
        while not (pipeline.root / "slow.pid").exists():
            assert time.monotonic() < deadline, w.output()
            time.sleep(0.05)
        time.sleep(0.2)
        pid = int(pipeline.read("slow.pid"))
        w.proc.send_signal(sig)
        if sig == signal.SIGINT:  # the first Ctrl-C lets a running task finish: a second
            time.sleep(0.3)
            w.proc.send_signal(sig)
        code = w.proc.wait(15)
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
        w.handle.close()
    assert code == 128 + sig, w.output()
    deadline = time.monotonic() + 5
    while group_members(pid):
        assert time.monotonic() < deadline, f"task process group {pid} still running"
        time.sleep(0.05)
    assert "Traceback" not in w.output()


def test_a_second_pytaskmake_says_a_watch_is_running(pipeline: Project) -> None:
    with watching(pipeline) as w:
        other = pipeline.run()
        assert other.returncode == 2 and "another pytaskmake" in other.stderr
        w.stop()


def test_the_watch_needs_a_taskfile_that_loads(project: Project) -> None:
    project.write("Taskfile.py", "task(\n")
    result = project.run("--watch")
    assert result.returncode == 2 and "syntax error" in result.stderr
    assert isinstance(Path(project.root), Path)
