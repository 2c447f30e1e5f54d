"""Watch mode (watch.py), driven as a user would: a real `pytaskmake --watch` process,
real file edits, real watchdog (inotify) events, real signals."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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


def test_a_stop_asked_while_the_taskfile_reloads_starts_nothing(project: Project) -> None:
    """SIGTERM from a batch system while a slow Taskfile reloads: the watch ends
    then, without starting the rebuild (the SIGKILL that follows would land mid-task)."""
    project.taskfile(
        """
        import os, time
        if os.path.exists("slow"):
            time.sleep(3)
        V = 1
        task("long", f"echo long >> runs.log; sleep {30 * (V - 1)}; echo {V} > long.txt",
             outputs=["long.txt"])
        """
    )
    with watching(project) as w:
        assert runs(project) == ["long"]
        project.write("slow", "")
        text = (project.root / "Taskfile.py").read_text().replace("V = 1", "V = 2")
        (project.root / "Taskfile.py").write_text(text)
        deadline = time.monotonic() + 10
        while "changed: Taskfile.py" not in w.output():
            assert time.monotonic() < deadline, w.output()
            time.sleep(0.05)
        time.sleep(0.5)  # (inside the 3 s load)
        started = time.monotonic()
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(15) == 143
        assert time.monotonic() - started < 6, w.output()
        assert runs(project) == [], w.output()


def test_writes_in_a_globbed_folder_by_the_build_do_not_reload_it(project: Project) -> None:
    """A folder the Taskfile globs also holds a task's log and outputs: writing them
    is no new point, and must not reload the Taskfile (each build's log would
    trigger the next: a loop)."""
    project.write("data/a.csv", "1\n")
    project.taskfile(
        """
        import glob
        for c in sorted(glob.glob("data/*.csv")):
            task(c, "cp {inputs} {outputs}", inputs=[c], outputs=[c + ".out"])
        task("check", "echo check >> runs.log", always=True, log="data/check.log")
        """
    )
    with watching(project) as w:
        time.sleep(2.0)
        assert w.builds() == 1, w.output()
        project.write("data/b.csv", "2\n")  # a new point: one reload
        w.wait_builds(2)
        assert project.read("data/b.csv.out") == "2\n"
        time.sleep(2.0)
        assert w.builds() == 2, w.output()
        w.stop()


def test_an_input_folder_removed_and_made_again_is_watched_again(project: Project) -> None:
    project.write("inp/a.txt", "a\n")
    project.taskfile(
        'task("A", "cp {inputs} {outputs}", inputs=["inp/a.txt"], outputs=["out/a.txt"])'
    )
    with watching(project) as w:
        shutil.rmtree(project.root / "inp")
        w.wait_builds(2)  # (the task fails: its input is missing)
        project.write("inp/a.txt", "a3\n")
        w.wait_builds(3)
        assert project.read("out/a.txt") == "a3\n", w.output()
        time.sleep(0.3)
        project.write("inp/a.txt", "a4\n")  # the new folder is watched
        w.wait_builds(4)
        assert project.read("out/a.txt") == "a4\n", w.output()
        w.stop()


def test_an_input_whose_folder_appears_later_is_built(project: Project) -> None:
    project.write("inp/a.txt", "a\n")
    project.taskfile(
        """
        task("A", "cp {inputs} {outputs}", inputs=["inp/a.txt"], outputs=["out/a.txt"])
        task("B", "cp {inputs} {outputs}", inputs=["later/deep/b.txt"], outputs=["out/b.txt"])
        """
    )
    log = project.root / "_watch.out"
    with watching(project) as w:
        assert "missing input later/deep/b.txt" in log.read_text()
        project.write("later/deep/b.txt", "b\n")
        w.wait_builds(2)
        deadline = time.monotonic() + 10
        while not project.exists("out/b.txt"):
            assert time.monotonic() < deadline, w.output()
            time.sleep(0.05)
        assert project.read("out/b.txt") == "b\n"
        project.write("inp/a.txt", "a2\n")  # another input's build: b.txt is not missing
        n = w.builds()
        w.wait_builds(n + 1)
        assert w.output().count("missing input") == 1, w.output()
        w.stop()


def test_a_module_a_failed_reload_imported_first_is_watched(project: Project) -> None:
    project.taskfile("")
    with watching(project) as w:
        project.write("h2.py", "X = (\n")  # a syntax error
        project.taskfile('import h2\ntask("h", "echo %s > {outputs}" % h2.X, outputs=["h.txt"])\n')
        w.wait_builds(2)
        assert "keeping the last good Taskfile" in w.output()
        project.write("h2.py", "X = 42\n")  # fixing the module alone reloads
        w.wait_builds(3)
        assert project.read("h.txt") == "42\n", w.output()
        w.stop()


def test_while_the_taskfile_is_broken_input_edits_build_with_the_last_good_one(
    project: Project,
) -> None:
    project.write("data/a.csv", "1\n")
    good = """
        import glob
        for c in sorted(glob.glob("data/*.csv")):
            task(c, "cp {inputs} {outputs}", inputs=[c], outputs=[c.replace("data", "out")])
        """
    project.taskfile(good)
    with watching(project) as w:
        project.taskfile(good + "task(\n")
        w.wait_builds(2)
        project.write("data/a.csv", "2\n")  # in the globbed folder: a reload is tried too
        w.wait_builds(3)
        assert project.read("out/a.csv") == "2\n", w.output()
        w.stop()


def test_an_input_named_like_an_editors_temporary_file_triggers(project: Project) -> None:
    project.write("model.part", "1\n")
    project.taskfile('task("m", "cp {inputs} {outputs}", inputs=["model.part"], outputs=["m.out"])')
    with watching(project) as w:
        project.write("model.part", "2\n")
        w.wait_builds(2)
        assert project.read("m.out") == "2\n"
        w.stop()


def test_a_module_a_callable_imports_when_it_runs_is_watched(project: Project) -> None:
    project.write("physics.py", "def f(x):\n    return x + 1\n")
    project.taskfile(
        """
        def make(outputs):
            import physics
            open(outputs[0], "w").write(str(physics.f(1)))
        task("make", make, outputs=["out.txt"])
        """
    )
    with watching(project) as w:
        assert project.read("out.txt") == "2"
        project.write("physics.py", "def f(x):\n    return x + 5\n")
        w.wait_builds(2)
        assert project.read("out.txt") == "6", w.output()
        w.stop()


def test_a_file_the_taskfile_reads_to_declare_its_points_reloads_it(project: Project) -> None:
    """The sweep's points come from points.txt: a point added there is a task added."""
    project.write("points.txt", "1\n")
    project.taskfile(
        """
        with open("points.txt") as f:
            points = f.read().split()
        for p in points:
            task(f"p{p}", f"echo {p} > {{outputs}}", outputs=[f"out/{p}.txt"])
        task("all", "cat {inputs} > {outputs}", inputs=[f"out/{p}.txt" for p in points],
             outputs=["all.txt"])
        """
    )
    with watching(project) as w:
        project.write("points.txt", "1\n2\n")
        w.wait_builds(2)
        assert project.read("all.txt") == "1\n2\n", w.output()
        time.sleep(1.0)
        assert w.builds() == 2, w.output()  # (all.txt, written by the build, is no trigger)
        w.stop()


def _until(check: Callable[[], bool], w: Watching, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, w.output()
        time.sleep(0.05)


def test_a_folder_input_removed_and_made_again_is_watched(project: Project) -> None:
    project.write("data/a.txt", "1\n")
    project.taskfile('task("s", "cat data/* > {outputs}", inputs=["data/"], outputs=["s.txt"])')
    with watching(project) as w:
        shutil.rmtree(project.root / "data")
        time.sleep(0.5)
        project.write("data/a.txt", "2\n")
        _until(lambda: project.exists("s.txt") and project.read("s.txt") == "2\n", w)
        time.sleep(0.3)
        project.write("data/a.txt", "3\n")  # the new folder is watched, recursively
        _until(lambda: project.read("s.txt") == "3\n", w)
        w.stop()


def test_a_folder_input_made_later_is_watched(project: Project) -> None:
    project.taskfile('task("l", "cat later/* > {outputs}", inputs=["later/"], outputs=["l.txt"])')
    with watching(project) as w:
        project.write("later/x.txt", "x\n")
        _until(lambda: project.exists("l.txt") and project.read("l.txt") == "x\n", w)
        time.sleep(0.3)
        project.write("later/x.txt", "y\n")
        _until(lambda: project.read("l.txt") == "y\n", w)
        w.stop()


def test_a_folder_replaced_in_the_burst_that_reloads_the_taskfile_stays_watched(
    project: Project,
) -> None:
    project.write("data/a.txt", "1\n")
    project.taskfile(
        'task("t", "cat {inputs} > {outputs}", inputs=["data/a.txt"], outputs=["t.out"])'
    )
    with watching(project) as w:
        shutil.rmtree(project.root / "data")
        project.write("data/a.txt", "1\n")
        project.taskfile(
            'task("t", "cat {inputs} > {outputs}", inputs=["data/a.txt"], outputs=["t.out"])\n'
            "# edited\n"
        )
        w.wait_builds(2)
        time.sleep(0.3)
        project.write("data/a.txt", "2\n")
        _until(lambda: project.read("t.out") == "2\n", w)
        w.stop()


def test_a_symlinked_input_folder_is_watched_through_its_link(
    project: Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    real = tmp_path_factory.mktemp("real")
    (real / "a.txt").write_text("1\n")
    (project.root / "data").symlink_to(real)
    project.taskfile('task("s", "cat data/a.txt > {outputs}", inputs=["data/"], outputs=["s.txt"])')
    with watching(project) as w:
        (real / "a.txt").write_text("2\n")
        _until(lambda: project.read("s.txt") == "2\n", w)
        w.stop()


def test_a_temporary_file_a_task_makes_in_a_globbed_folder_reloads_nothing(
    project: Project,
) -> None:
    """The summary is written through a temporary file beside it, then renamed: the
    folder's names are the same after, so no reload (always=True looped on it)."""
    project.write("data/a.csv", "1\n")
    project.taskfile(
        """
        import glob
        task("s", "echo s >> runs.log; t=$(mktemp data/.s.XXXX); cat {inputs} > $t; "
             "mv $t {outputs}", inputs=sorted(glob.glob("data/*.csv")),
             outputs=["data/summary.txt"], always=True)
        """
    )
    with watching(project) as w:
        time.sleep(2.5)
        assert w.builds() == 1 and "changed:" not in w.output(), w.output()
        project.write("data/b.csv", "2\n")  # a new point: one reload
        _until(lambda: project.read("data/summary.txt") == "1\n2\n", w)
        time.sleep(2.0)
        assert w.builds() == 2, w.output()
        w.stop()


def test_an_edit_inside_a_folder_input_leaves_nothing_stale(project: Project) -> None:
    """data/y.txt is named on the command line (an implicit input) of the task reading
    the folder data/: each edit reruns it and leaves it up to date."""
    project.write("data/y.txt", "1\n")
    project.taskfile('task("t", "cat data/y.txt > {outputs}", inputs=["data/"], outputs=["t.out"])')
    with watching(project) as w:
        for n, value in enumerate(("2\n", "3\n"), start=2):
            project.write("data/y.txt", value)
            w.wait_builds(n)
            assert project.read("t.out") == value
        w.stop()
    assert "changed while it ran" not in w.output()
    assert "0 of 1 tasks would run" in project.run("-n").stdout


def test_an_editors_file_inside_a_folder_input_triggers_as_its_digest_moves(
    project: Project,
) -> None:
    project.write("models/net.txt", "1\n")
    project.taskfile('task("t", "ls models > {outputs}", inputs=["models/"], outputs=["t.out"])')
    with watching(project) as w:
        project.write("models/net.part", "partial\n")
        _until(lambda: "net.part" in project.read("t.out"), w)
        w.stop()
    assert "0 of 1 tasks would run" in project.run("-n").stdout
