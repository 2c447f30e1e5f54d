"""Traced inputs: reads a trace found, recorded as implicit inputs of their task.

In the state (tag "T" beside "I" and "O"), in the rebuilder (a traced input that
changed or disappeared makes its task stale, with that reason), and end to end
with trace=True and --trace-deps.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_stale import MemoryFiles

from pytaskmake import stale
from pytaskmake.action import make_action
from pytaskmake.fingerprint import Fingerprint
from pytaskmake.state import StateDB, decode_files, decode_record, encode_files
from pytaskmake.taskfile import Task

IN: dict[str, Fingerprint] = {"in.txt": ((1, 2, 3, 4, 0o100644), "ab" * 32)}
OUT: dict[str, Fingerprint] = {"out.txt": ((5, 6, 7, 8, 0o100644), "cd" * 32)}
TRACED: dict[str, Fingerprint] = {
    "helper.py": ((9, 10, 11, 12, 0o100644), "ef" * 32),
    "/opt/sim/bin/netsim": ((13, 14, 15, 16, 0o100755), "01" * 32 + "+x"),
}


# --- the state ------------------------------------------------------------------------


def test_traced_inputs_round_trip_beside_inputs_and_outputs() -> None:
    text = encode_files(IN, OUT, TRACED)
    assert decode_record(text) == (IN, OUT, TRACED)
    assert decode_files(text) == (IN, OUT)  # the declared files, as before
    assert decode_record(encode_files(IN, OUT)) == (IN, OUT, {})


def test_an_unknown_tag_is_damage_not_an_output() -> None:
    text = encode_files(IN, OUT).replace("O\0out.txt", "X\0out.txt")
    with pytest.raises(ValueError):
        decode_record(text)


def test_a_record_keeps_its_traced_inputs(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state")
    db.save_success("t", "sh:x", IN, OUT, 1.0, stamp=7, traced=TRACED)
    db.save_success("u", "sh:y", IN, OUT, 1.0, stamp=8)
    db.commit()
    db.close()
    again = StateDB(tmp_path / "state")
    record = again.record("t")
    assert record is not None and record.ok
    assert (record.inputs, record.outputs, record.traced) == (IN, OUT, TRACED)
    other = again.record("u")
    assert other is not None and other.traced == {}
    again.close()


# --- the rebuilder --------------------------------------------------------------------


def traced_task() -> Task:
    return Task("t", make_action("python3 tool.py", "t"), ("in1",), ("o",))


@pytest.fixture
def files() -> MemoryFiles:
    f = MemoryFiles()
    f.put("in1", b"one")
    f.put("o", b"result")
    f.put("helper.py", b"def f(): pass\n")
    return f


def record_of(tmp_path: Path, task: Task, files: MemoryFiles, traced: tuple[str, ...]):  # noqa: ANN201
    db = StateDB(tmp_path / "state")
    fps = {p: fp for p in (*task.inputs, *task.outputs, *traced) if (fp := files.fingerprint(p))}
    ins = {p: fps[p] for p in task.inputs}
    outs = {p: fps[p] for p in task.outputs}
    found = {p: fps[p] for p in traced if p in fps}
    stamp = stale.record_stamp(task.action.digest, ins, outs, found)
    db.save_success(task.name, task.action.digest, ins, outs, 1.0, stamp, traced=found)
    record = db.record(task.name)
    assert record is not None
    return db, record


def test_an_edited_traced_input_makes_its_task_stale(tmp_path: Path, files: MemoryFiles) -> None:
    task = traced_task()
    db, record = record_of(tmp_path, task, files, ("helper.py",))
    assert not stale.check(task, record, files).stale
    files.put("helper.py", b"def f(): return 1\n")
    verdict = stale.check(task, record, files)
    assert (verdict.stale, verdict.code) == (True, stale.TRACED)
    assert verdict.reason == "traced input helper.py changed"
    db.close()


def test_a_traced_input_that_disappeared_makes_its_task_stale(
    tmp_path: Path, files: MemoryFiles
) -> None:
    task = traced_task()
    db, record = record_of(tmp_path, task, files, ("helper.py",))
    files.remove("helper.py")
    verdict = stale.check(task, record, files)
    assert verdict.reason == "traced input helper.py disappeared"
    db.close()


def test_a_touched_traced_input_is_clean_and_refreshed(tmp_path: Path, files: MemoryFiles) -> None:
    task = traced_task()
    db, record = record_of(tmp_path, task, files, ("helper.py",))
    rebuilder = stale.Rebuilder(db, files)
    assert rebuilder.moved(task), "a record with traced inputs is always looked at"
    verdict = rebuilder.verdict(task)
    assert not verdict.stale and not verdict.refresh  # nothing moved: no rewrite
    files.touch("helper.py")
    verdict = stale.check(task, record, files)
    assert not verdict.stale and verdict.refresh
    assert verdict.traced["helper.py"][0] == files.stat("helper.py")
    assert rebuilder.traced_seen
    db.close()
