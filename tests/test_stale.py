"""Staleness: the rebuilder's verdicts (stale.py), then the same rules end to end.

Unit tests feed stale.check a FileCache serving files from memory; the CLI tests
count which tasks really ran through a side-effect file each task appends to.
Tasks that would re-run with an (action, inputs) pair seen before say cache=False,
so the run cache cannot restore them instead of running them.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Project, build, ran, runs

from pytaskmake import stale
from pytaskmake.action import make_action
from pytaskmake.fingerprint import FileCache, Fingerprint, Stat, stat_of
from pytaskmake.state import StateDB, TaskRecord
from pytaskmake.taskfile import Task

# --- unit: stale.check over in-memory files ---------------------------------------------


class MemoryFiles(FileCache):
    """Files as (stat, bytes) in a dict; counts content reads."""

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, tuple[Stat, bytes]] = {}
        self.reads: list[str] = []
        self._clock = 1_000_000_000
        self._inode = 100

    def put(self, path: str, data: bytes, *, same_stat_as: str | None = None) -> None:
        """Write a file; a new mtime unless `same_stat_as` names a path to copy the stat of."""
        self.forget(path)
        if same_stat_as is not None:
            st = self.files[same_stat_as][0]
        else:
            self._clock += 1_000
            self._inode += 1
            st = (self._clock, len(data), self._inode, self._clock, 0o100644)
        self.files[path] = (st, data)

    def touch(self, path: str) -> None:
        self.forget(path)
        st, data = self.files[path]
        self._clock += 1_000
        self.files[path] = ((self._clock, st[1], st[2], self._clock, st[4]), data)

    def remove(self, path: str) -> None:
        self.forget(path)
        del self.files[path]

    def stat(self, path: str) -> Stat | None:
        entry = self.files.get(path)
        return entry[0] if entry else None

    def read_hash(self, path: str) -> str:
        self.reads.append(path)
        return hashlib.blake2b(self.files[path][1], digest_size=32).hexdigest()


def mk(
    command: str = "run",
    inputs: tuple[str, ...] = ("in1", "in2"),
    outputs: tuple[str, ...] = ("o",),
) -> Task:
    return Task("t", make_action(command, "t"), inputs, outputs)


class Records:
    """Task records made the way the build makes them: saved to and read from a StateDB."""

    def __init__(self, db: StateDB) -> None:
        self.db = db

    def success(self, task: Task, files: MemoryFiles) -> TaskRecord:
        """The record a successful run of `task` over `files` as they are now leaves."""
        fresh = MemoryFiles()
        fresh.files = dict(files.files)

        def fps(paths: tuple[str, ...]) -> dict[str, Fingerprint]:
            found = {p: fresh.fingerprint(p) for p in paths}
            return {p: fp for p, fp in found.items() if fp is not None}

        ins, outs = fps(task.inputs), fps(task.outputs)
        stamp = stale.record_stamp(task.action.digest, ins, outs)
        self.db.save_success(task.name, task.action.digest, ins, outs, 1.0, stamp)
        record = self.db.record(task.name)
        assert record is not None
        return record

    def failure(self, task: Task, action: str | None = None) -> TaskRecord:
        self.db.save_failure(task.name, action or task.action.digest, 1.0)
        record = self.db.record(task.name)
        assert record is not None
        return record


@pytest.fixture
def records(tmp_path: Path) -> Iterator[Records]:
    db = StateDB(tmp_path / "state")
    yield Records(db)
    db.close()


@pytest.fixture
def files() -> MemoryFiles:
    f = MemoryFiles()
    f.put("in1", b"one")
    f.put("in2", b"two")
    f.put("o", b"result")
    return f


def verdict(task: Task, record: TaskRecord | None, files: MemoryFiles) -> stale.Verdict:
    return stale.check(task, record, files, forced=False)


def test_clean_after_success_and_no_file_read_when_stats_match(
    records: Records, files: MemoryFiles
) -> None:
    t = mk()
    record = records.success(t, files)
    files.reads.clear()
    v = verdict(t, record, files)
    assert (v.stale, v.code) == (False, stale.CLEAN)
    assert v.refresh is False
    assert files.reads == [], "a stat match must spare reading the file"


def test_never_run(files: MemoryFiles) -> None:
    v = verdict(mk(), None, files)
    assert (v.stale, v.code) == (True, stale.NEVER_RUN)


def test_forced_beats_a_clean_record(records: Records, files: MemoryFiles) -> None:
    t = mk()
    v = stale.check(t, records.success(t, files), files, forced=True)
    assert (v.stale, v.code) == (True, stale.FORCED)


def test_failed_last_time(records: Records, files: MemoryFiles) -> None:
    t = mk()
    records.success(t, files)
    assert verdict(t, records.failure(t), files).code == stale.FAILED


def test_action_changed(records: Records, files: MemoryFiles) -> None:
    record = records.success(mk("run --fast"), files)
    v = verdict(mk("run --slow"), record, files)
    assert (v.stale, v.code) == (True, stale.ACTION)


def test_touch_alone_is_clean_but_asks_for_a_refresh(records: Records, files: MemoryFiles) -> None:
    t = mk()
    record = records.success(t, files)
    files.touch("in1")
    files.touch("o")
    v = verdict(t, record, files)
    assert (v.stale, v.code) == (False, stale.CLEAN)
    assert v.refresh is True
    assert v.inputs["in1"][0] == files.stat("in1"), "the refreshed record carries the new stat"


def test_input_content_changed(records: Records, files: MemoryFiles) -> None:
    t = mk()
    record = records.success(t, files)
    files.put("in2", b"TWO")
    v = verdict(t, record, files)
    assert (v.stale, v.code) == (True, stale.INPUT)
    assert "in2" in v.reason


def test_input_replaced_by_identical_content_is_clean(records: Records, files: MemoryFiles) -> None:
    t = mk()
    record = records.success(t, files)
    files.put("in1", b"one")  # new inode, new mtime, same bytes
    assert verdict(t, record, files).stale is False


def test_input_missing(records: Records, files: MemoryFiles) -> None:
    t = mk()
    record = records.success(t, files)
    files.remove("in1")
    v = verdict(t, record, files)
    assert (v.stale, v.code) == (True, stale.MISSING_INPUT)


def test_output_missing(records: Records, files: MemoryFiles) -> None:
    t = mk()
    record = records.success(t, files)
    files.remove("o")
    v = verdict(t, record, files)
    assert (v.stale, v.code) == (True, stale.MISSING_OUTPUT)
    assert "o" in v.reason


def test_output_modified_by_hand(records: Records, files: MemoryFiles) -> None:
    t = mk()
    record = records.success(t, files)
    files.put("o", b"edited")
    v = verdict(t, record, files)
    assert (v.stale, v.code) == (True, stale.OUTPUT)


def test_newly_declared_output(records: Records, files: MemoryFiles) -> None:
    record = records.success(mk(), files)
    files.put("o2", b"x")
    v = verdict(mk(outputs=("o", "o2")), record, files)
    assert (v.stale, v.code) == (True, stale.OUTPUT)


@pytest.mark.parametrize(
    "new_inputs, word",
    [(("in1",), "removed in2"), (("in1", "in2", "in3"), "added in3"), (("in1", "in3"), "in3")],
)
def test_changed_input_list(
    records: Records, files: MemoryFiles, new_inputs: tuple[str, ...], word: str
) -> None:
    files.put("in3", b"three")
    record = records.success(mk(), files)
    v = verdict(mk(inputs=new_inputs), record, files)
    assert (v.stale, v.code) == (True, stale.INPUTS)
    assert word in v.reason


def test_reordered_input_list_is_not_a_change(records: Records, files: MemoryFiles) -> None:
    record = records.success(mk(), files)
    assert verdict(mk(inputs=("in2", "in1")), record, files).stale is False


def test_priority_failed_over_action_over_files(records: Records, files: MemoryFiles) -> None:
    t = mk()
    files.remove("o")
    assert verdict(t, records.failure(t, "sh:other"), files).code == stale.FAILED
    assert verdict(t, records.success(mk("other"), files), files).code == stale.ACTION


def test_duplicate_input_is_clean_after_success(records: Records, files: MemoryFiles) -> None:
    t = mk(inputs=("in1", "in1"))
    assert verdict(t, records.success(t, files), files).stale is False


def test_current_inputs_fingerprints_existing_inputs(files: MemoryFiles) -> None:
    found = stale.current_inputs(mk(inputs=("in1", "gone")), files)
    assert list(found) == ["in1"]
    assert found["in1"][0] == files.stat("in1")


# --- end to end ------------------------------------------------------------------------


def future_mtime(project: Project, path: str) -> None:
    """`touch` with a clearly later mtime, content unchanged."""
    target = project.root / path
    later = time.time() + 10
    os.utime(target, (later, later))


PIPELINE = """
task("prep", "echo prep >> runs.log; tr a-z A-Z < raw.txt > data/prep.txt",
     inputs=["raw.txt"], outputs=["data/prep.txt"])
task("count", "echo count >> runs.log; wc -c < data/prep.txt > data/count.txt",
     inputs=["data/prep.txt"], outputs=["data/count.txt"])
task("head", "echo head >> runs.log; head -c 3 data/prep.txt > data/head.txt",
     inputs=["data/prep.txt"], outputs=["data/head.txt"])
task("report", "echo report >> runs.log; cat data/count.txt data/head.txt > report.txt",
     inputs=["data/count.txt", "data/head.txt"], outputs=["report.txt"])
task("other", "echo other >> runs.log; cat cfg.txt > other.txt",
     inputs=["cfg.txt"], outputs=["other.txt"])
"""


@pytest.fixture
def pipeline(project: Project) -> Project:
    project.taskfile(PIPELINE)
    project.write("raw.txt", "abcdef\n")
    project.write("cfg.txt", "x=1\n")
    result = build(project)
    assert sorted(runs(project)) == ["count", "head", "other", "prep", "report"]
    assert sorted(ran(result)) == ["count", "head", "other", "prep", "report"]
    assert project.read("report.txt") == "7\nABC"
    return project


def test_second_run_runs_nothing(pipeline: Project) -> None:
    result = build(pipeline)
    assert runs(pipeline) == []
    assert ran(result) == []
    assert "up to date 5" in result.stdout


def test_touch_alone_reruns_nothing(pipeline: Project) -> None:
    for path in ("raw.txt", "cfg.txt", "data/prep.txt", "report.txt"):
        future_mtime(pipeline, path)
    build(pipeline)
    assert runs(pipeline) == []
    build(pipeline)  # and the refreshed stats keep it that way
    assert runs(pipeline) == []


def test_editing_an_input_reruns_exactly_its_downstream(pipeline: Project) -> None:
    pipeline.write("raw.txt", "xyzxyzxyz\n")
    result = build(pipeline)
    order = runs(pipeline)
    assert sorted(order) == ["count", "head", "prep", "report"]
    assert order[0] == "prep" and order[-1] == "report"
    assert sorted(ran(result)) == sorted(order)
    assert pipeline.read("report.txt") == "10\nXYZ"
    pipeline.write("cfg.txt", "x=2\n")
    build(pipeline)
    assert runs(pipeline) == ["other"]


def test_early_cutoff_when_rerun_output_is_identical(pipeline: Project) -> None:
    # prep reruns but upper-cases to the very same bytes: nothing downstream reruns
    pipeline.write("raw.txt", "ABCdef\n")
    build(pipeline)
    assert runs(pipeline) == ["prep"]
    # prep's output changes; count and head rerun but produce identical bytes: report stays
    pipeline.write("raw.txt", "abcXYZ\n")
    build(pipeline)
    assert sorted(runs(pipeline)) == ["count", "head", "prep"]
    assert pipeline.read("report.txt") == "7\nABC"


def test_changing_a_command_reruns_that_task_only_when_output_is_identical(
    pipeline: Project,
) -> None:
    text = pipeline.read("Taskfile.py").replace("wc -c < data/prep.txt", "wc -c <data/prep.txt")
    pipeline.write("Taskfile.py", text)
    build(pipeline)
    assert runs(pipeline) == ["count"]


def test_changing_a_command_reruns_dependants_when_output_changes(pipeline: Project) -> None:
    text = pipeline.read("Taskfile.py").replace("head -c 3", "head -c 2")
    pipeline.write("Taskfile.py", text)
    build(pipeline)
    assert runs(pipeline) == ["head", "report"]
    assert pipeline.read("report.txt") == "7\nAB"


def test_forced_reruns_everything_selected(pipeline: Project) -> None:
    build(pipeline, "-B")
    assert sorted(runs(pipeline)) == ["count", "head", "other", "prep", "report"]
    build(pipeline, "-B", "head")
    assert runs(pipeline) == ["prep", "head"]


def test_dry_run_explains_why(pipeline: Project) -> None:
    pipeline.write("raw.txt", "new\n")
    result = build(pipeline, "-n")
    assert result.stdout.splitlines() == [
        "would run prep: input raw.txt changed",
        "may run count (if its inputs change): upstream prep will run",
        "may run head (if its inputs change): upstream prep will run",
        "may run report (if its inputs change): upstream count will run",
        "1 of 5 tasks would run, 3 more may run (if their inputs change)",
    ]
    assert runs(pipeline) == []


NOCACHE = """
task("make", "echo make >> runs.log; cat in.txt in.txt > out/made.txt",
     inputs=["in.txt"], outputs=["out/made.txt"], cache=False)
task("use", "echo use >> runs.log; wc -l < out/made.txt > used.txt",
     inputs=["out/made.txt"], outputs=["used.txt"], cache=False)
"""


@pytest.fixture
def small(project: Project) -> Project:
    project.taskfile(NOCACHE)
    project.write("in.txt", "1\n")
    build(project)
    assert runs(project) == ["make", "use"]
    return project


def test_deleted_output_reruns_its_task_only(small: Project) -> None:
    (small.root / "out/made.txt").unlink()
    result = build(small, "-l")
    assert "make  (stale: output out/made.txt is missing)" in result.stdout
    build(small)
    assert runs(small) == ["make"]
    assert small.read("out/made.txt") == "1\n1\n"


def test_output_modified_by_hand_reruns_its_task(small: Project) -> None:
    small.write("out/made.txt", "tampered\n")
    assert "make  (stale:" in build(small, "-l").stdout
    build(small)
    assert runs(small) == ["make"]  # its output is restored byte for byte: use is clean
    assert small.read("out/made.txt") == "1\n1\n"


def test_reverting_an_input_reruns(small: Project) -> None:
    small.write("in.txt", "1\n2\n")
    build(small)
    assert runs(small) == ["make", "use"]
    small.write("in.txt", "1\n")
    build(small)
    assert runs(small) == ["make", "use"]
    assert small.read("used.txt").strip() == "2"


def test_changing_the_input_list_makes_it_stale(small: Project) -> None:
    small.write("extra.txt", "e\n")
    small.write(
        "Taskfile.py", small.read("Taskfile.py").replace('["in.txt"]', '["in.txt", "extra.txt"]')
    )
    assert "make  (stale: inputs changed (added extra.txt))" in build(small, "-l").stdout
    build(small)
    assert runs(small) == ["make"]
    small.write("Taskfile.py", small.read("Taskfile.py").replace(', "extra.txt"]', "]"))
    build(small)
    assert runs(small) == ["make"]


def test_failing_task_is_recorded_failed_and_stays_stale(project: Project) -> None:
    project.taskfile(
        """
        task("flaky", "echo flaky >> runs.log; echo partial > f.txt; test -e ok",
             outputs=["f.txt"])
        task("after", "echo after >> runs.log; cp f.txt g.txt", inputs=["f.txt"],
             outputs=["g.txt"])
        """
    )
    for _ in range(2):
        result = build(project, code=1)
        assert "FAILED flaky" in result.stdout
        assert runs(project) == ["flaky"]
        assert not project.exists("f.txt"), "a failed task's output must not pass for good"
    assert "flaky  (stale: failed last time)" in build(project, "-l").stdout
    project.write("ok", "")
    build(project)
    assert runs(project) == ["flaky", "after"]
    build(project)
    assert runs(project) == []


def test_task_not_producing_a_declared_output_fails_and_stays_stale(project: Project) -> None:
    project.taskfile(
        """
        task("lazy", "echo lazy >> runs.log; echo a > a.txt", outputs=["a.txt", "b.txt"])
        """
    )
    result = build(project, code=1)
    assert "b.txt" in result.stdout
    assert runs(project) == ["lazy"]
    build(project, code=1)
    assert runs(project) == ["lazy"]


def test_stale_output_from_an_earlier_run_cannot_hide_a_missing_output(project: Project) -> None:
    project.taskfile(
        """
        task("gen", "echo gen >> runs.log; test -e skip || echo v > v.txt", outputs=["v.txt"],
             inputs=["src"], cache=False)
        """
    )
    project.write("src", "1")
    build(project)
    project.write("src", "2")
    project.write("skip", "")
    build(project, code=1)  # the old v.txt must not count as this run's output
    assert runs(project) == ["gen", "gen"]


def test_cli_duplicate_input_runs_once(project: Project) -> None:
    project.taskfile(
        """
        task("dup", "echo dup >> runs.log; cat a a > b", inputs=["a", "./a"], outputs=["b"],
             cache=False)
        """
    )
    project.write("a", "x\n")
    build(project)
    assert "dup  (up to date)" in build(project, "-l").stdout
    build(project)
    assert runs(project) == ["dup"]


def test_renaming_an_input_in_the_list_makes_it_stale(project: Project) -> None:
    # a callable gets its inputs as arguments, so the command text does not change
    project.taskfile(
        """
        def concat(inputs, outputs):
            with open("runs.log", "a") as log:
                log.write("concat\\n")
            with open(outputs[0], "w") as out:
                out.write(inputs[0])
        task("concat", concat, inputs=["a.txt"], outputs=["o.txt"], cache=False)
        """
    )
    project.write("a.txt", "x\n")
    build(project)
    assert project.read("o.txt") == "a.txt"
    os.rename(project.root / "a.txt", project.root / "b.txt")  # same inode, mtime, size
    project.write("Taskfile.py", project.read("Taskfile.py").replace("a.txt", "b.txt"))
    assert "concat  (stale: inputs changed" in build(project, "-l").stdout
    build(project)
    assert runs(project) == ["concat", "concat"]
    assert project.read("o.txt") == "b.txt"


def test_a_later_process_takes_the_no_op_fast_path(project: Project) -> None:
    """The stamp written by one build must match in the next process (no hash seeds)."""
    project.taskfile(
        """
        for i in range(3):
            task(f"t{i}", f"cat src.txt > out/{i}.txt", inputs=["src.txt"],
                 outputs=[f"out/{i}.txt"])
        """
    )
    project.write("src.txt", "x\n")
    build(project)
    probe = (
        "from pathlib import Path\n"
        "from pytaskmake.taskfile import load_taskfile\n"
        "from pytaskmake.state import StateDB\n"
        "from pytaskmake.fingerprint import FileCache\n"
        "from pytaskmake.stale import unchanged\n"
        "reg = load_taskfile(Path('Taskfile.py'))\n"
        "db, files = StateDB(Path('.pytaskmake')), FileCache()\n"
        "print(all(unchanged(t, db.row(n), files) for n, t in reg.tasks.items()))\n"
    )
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=project.root,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == "True", out.stderr


# --- folders as inputs and outputs ---------------------------------------------------------


def test_a_folder_input_is_its_whole_tree(project: Project) -> None:
    project.write("data/a.csv", "1\n")
    project.write("data/sub/b.csv", "2\n")
    project.taskfile(
        """
        task("agg", "echo agg >> runs.log; cat data/*.csv data/sub/*.csv > agg.txt",
             inputs=["data/"], outputs=["agg.txt"])
        """
    )
    build(project)
    assert runs(project) == ["agg"]
    build(project)
    assert runs(project) == []
    os.utime(project.root / "data" / "a.csv", ns=(10**18, 10**18))  # touched only
    build(project)
    assert runs(project) == []
    project.write("data/sub/b.csv", "22\n")  # edited deep inside
    assert "input data changed" in build(project, "-n").stdout
    build(project)
    assert runs(project) == ["agg"] and project.read("agg.txt") == "1\n22\n"
    project.write("data/c.csv", "3\n")  # a file added
    build(project)
    assert runs(project) == ["agg"]
    (project.root / "data" / "c.csv").unlink()  # and removed: the tree of two builds ago
    result = build(project)
    assert runs(project) == [] and "restored agg" in result.stdout  # from the run cache
    assert project.read("agg.txt") == "1\n22\n"


def test_a_folder_output_is_recorded_set_aside_and_put_back_whole(project: Project) -> None:
    project.write("in.txt", "1\n")
    project.taskfile(
        """
        task("sim", "echo sim >> runs.log; mkdir -p runs/a && cp in.txt runs/a/x.dat && "
             "cp in.txt runs/a/y.dat && grep -qv bad in.txt", inputs=["in.txt"],
             outputs=["runs/a/"])
        """
    )
    build(project)
    assert runs(project) == ["sim"] and project.read("runs/a/y.dat") == "1\n"
    build(project)
    assert runs(project) == []
    (project.root / "runs" / "a" / "x.dat").unlink()  # a file of the output removed
    assert "output runs/a was modified outside the build" in build(project, "-n").stdout
    build(project)
    assert runs(project) == ["sim"] and project.exists("runs/a/x.dat")
    project.write("in.txt", "bad\n")  # a failing rerun: the last good tree comes back
    build(project, code=1)
    assert project.read("runs/a/x.dat") == "1\n" and project.read("runs/a/y.dat") == "1\n"
    assert project.read(".pytaskmake/failed/runs/a/x.dat") == "bad\n"


# --- issue 18: the stat shortcut cannot hide an edit -------------------------------------


def test_cp_p_onto_an_input_is_an_edit(project: Project) -> None:
    """`cp -p b.dat cfg.dat` gives cfg.dat b's size and mtime and keeps its inode."""
    project.write("cfg.dat", "alpha\n")
    project.write("b.dat", "bravo\n")
    st = os.stat(project.root / "b.dat")
    os.utime(project.root / "cfg.dat", ns=(st.st_atime_ns, st.st_mtime_ns))
    project.taskfile(
        'task("sim", "echo sim >> runs.log; cat cfg.dat > out.txt", '
        'inputs=["cfg.dat"], outputs=["out.txt"])\n'
    )
    build(project)
    assert runs(project) == ["sim"]
    time.sleep(0.01)
    subprocess.run(["cp", "-p", "b.dat", "cfg.dat"], cwd=project.root, check=True)
    assert "input cfg.dat changed" in build(project, "--explain").stdout
    build(project)
    assert runs(project) == ["sim"]
    assert project.read("out.txt") == "bravo\n"


def test_chmod_of_an_output_outside_the_build_is_seen(project: Project) -> None:
    project.write("src.txt", "1\n")
    project.taskfile(
        """
        task("link", "echo link >> runs.log; printf '#!/bin/sh\\\\necho hi\\\\n' > prog; "
             "chmod 755 prog", inputs=["src.txt"], outputs=["prog"], cache=False)
        """
    )
    build(project)
    assert runs(project) == ["link"]
    os.chmod(project.root / "prog", 0o644)
    assert "output prog was modified outside the build" in build(project, "--explain").stdout
    build(project)
    assert runs(project) == ["link"]
    assert os.stat(project.root / "prog").st_mode & 0o111


def test_records_hold_the_stats_the_outputs_have_after_caching(project: Project) -> None:
    """Storing in the run cache hard-links each output (moving its ctime): the record
    must say the stat the file has afterwards, or every no-op would hash it again."""
    project.write("in.txt", "x\n")
    project.taskfile(
        'task("sim", "cat in.txt > out.txt", inputs=["in.txt"], outputs=["out.txt"])\n'
    )
    build(project)
    db = StateDB(project.root / ".pytaskmake", readonly=True)
    record = db.record("sim")
    assert record is not None
    assert record.outputs["out.txt"][0] == stat_of(str(project.root / "out.txt"))
    db.close()
