"""The state database (state.py): round trips, damage handling, and what builds record."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Project

from pytaskmake.fingerprint import Fingerprint
from pytaskmake.scheduler import positions
from pytaskmake.state import CLEANED, StateDB, TaskRecord, decode_files, encode_files

IN: dict[str, Fingerprint] = {
    "data/in put.csv": ((1_700_000_000_123_456_789, 42, 9_999_999, 3, 0o100644), "ab" * 32),
    "β/ünïcode.txt": ((1, 0, 2, -4, 0o100755), "cd" * 32 + "+x"),
}
OUT: dict[str, Fingerprint] = {"out/o.txt": ((5, 6, 7, 8, 0o40755), "ef" * 32)}


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / ".pytaskmake"


def reopen(directory: Path) -> StateDB:
    return StateDB(directory)


def test_encode_decode_round_trip() -> None:
    assert decode_files(encode_files(IN, OUT)) == (IN, OUT)
    assert decode_files(encode_files({}, {})) == ({}, {})
    assert decode_files(encode_files({}, OUT)) == ({}, OUT)


@pytest.mark.parametrize("count", [8191, 8192, 8193, 20_000])
def test_a_record_of_many_files_round_trips_across_slices(count: int) -> None:
    """Records are encoded and decoded 8,192 files at a time: every boundary holds."""
    ins = {
        f"in/{i}": ((i * 1_000_003 - 7, i, 2**64 - 1 - i, i, 0o100644), f"{i:064x}")
        for i in range(count)
    }
    outs = {f"out/{i}": ((-i, 0, i, -i, 0o100755), "0" * 64) for i in range(count // 4000)}
    text = encode_files(ins, outs)
    assert text.count("\0") == 8 * (count + len(outs)) - 1  # no empty slice joined in
    decoded = decode_files(text)
    assert decoded == (ins, outs)
    assert list(decoded[0]) == list(ins)  # in their recorded order


@pytest.mark.parametrize("inputs,outputs", [(8191, 1), (8192, 0), (8190, 2), (16383, 1)])
def test_a_record_of_exactly_a_multiple_of_a_slice_is_not_damaged(
    inputs: int, outputs: int, state_dir: Path
) -> None:
    """8,191 inputs + 1 output is 8,192 files, one whole slice: read back as written
    (it was taken for damage, so the task reran after every touch)."""
    ins = {f"in/{i}": ((i, i + 1, i + 2, i, 0o100644), f"{i:064x}") for i in range(inputs)}
    outs = {f"out/{i}": ((i, 0, i, i, 0o100644), "0" * 64) for i in range(outputs)}
    assert decode_files(encode_files(ins, outs)) == (ins, outs)
    db = StateDB(state_dir)
    db.save_success("summary", "sh:x", ins, outs, 1.0, stamp=0)
    db.commit()
    db.close()
    again = StateDB(state_dir)
    record = again.record("summary")
    assert record is not None
    assert (record.inputs, record.outputs) == (ins, outs)
    assert record.ok
    again.close()


@pytest.mark.parametrize("count", [1, 8192, 8193])
def test_a_record_with_a_trailing_nul_is_refused(count: int) -> None:
    text = encode_files({f"in/{i}": ((i, i, i, i, 0o100644), "ab" * 32) for i in range(count)}, {})
    with pytest.raises((ValueError, IndexError)):
        decode_files(text + "\0")


@pytest.mark.parametrize("cut", [1, 6 * 8192 * 10 + 3])
def test_a_damaged_record_of_many_files_is_refused(cut: int) -> None:
    ins = {f"in/{i}": ((i, i, i, i, 0o100644), "ab" * 32) for i in range(12_000)}
    text = encode_files(ins, {})
    cut_at = len(text) - cut
    with pytest.raises((ValueError, IndexError)):
        decode_files(text[:cut_at] + "\0x" + text[cut_at:])


def test_fresh_database_is_created_with_directory(state_dir: Path) -> None:
    db = StateDB(state_dir)
    try:
        assert db.path == state_dir / "state.db"
        assert db.path.exists()
        assert db.warning is None
        assert db.record("anything") is None
        assert durations(db, ["anything"]) == {}
    finally:
        db.close()


def test_success_record_round_trips_across_connections(state_dir: Path) -> None:
    db = StateDB(state_dir)
    db.save_success("t1", "sh:echo hi", IN, OUT, 1.5, stamp=0)
    db.save_success("t2", "argv:x", {}, {}, 0.25, stamp=0)
    db.close()
    db = reopen(state_dir)
    try:
        r = db.record("t1")
        assert r is not None
        assert (r.ok, r.action, r.duration) == (True, "sh:echo hi", 1.5)
        assert r.inputs == IN
        assert r.outputs == OUT
        r2 = db.record("t2")
        assert r2 is not None and r2.ok and r2.inputs == {} and r2.outputs == {}
        assert durations(db, ["t1", "t2", "t3"]) == {"t1": 1.5, "t2": 0.25}
        assert db.warning is None
    finally:
        db.close()


def test_failure_replaces_success_and_round_trips(state_dir: Path) -> None:
    db = StateDB(state_dir)
    db.save_success("t", "sh:a", IN, OUT, 1.0, stamp=0)
    assert db.record("t").ok  # type: ignore[union-attr]
    db.save_failure("t", "sh:b", 2.0)
    r = db.record("t")
    assert r is not None and not r.ok and r.action == "sh:b"
    db.close()
    db = reopen(state_dir)
    try:
        r = db.record("t")
        assert r is not None and not r.ok and r.action == "sh:b" and r.duration == 2.0
    finally:
        db.close()


def test_record_seen_before_write_is_updated(state_dir: Path) -> None:
    """Reading first loads every row; a later write must still be visible."""
    db = StateDB(state_dir)
    try:
        assert db.record("t") is None
        db.save_success("t", "sh:x", IN, {}, 3.0, stamp=0)
        r = db.record("t")
        assert r is not None and r.inputs == IN
        assert durations(db, ["t"]) == {"t": 3.0}
    finally:
        db.close()


def cleaned(record: TaskRecord | None) -> bool:
    return record is not None and not record.ok and record.action == CLEANED


def test_forget_marks_records_cleaned(state_dir: Path) -> None:
    """--clean: the task must run next time, and never be restored from the cache."""
    db = StateDB(state_dir)
    for name in ("a", "b", "c"):
        db.save_success(name, "sh:x", {}, OUT, 1.0, stamp=0)
    db.record("a")
    db.forget(["a", "c", "never-existed"])
    assert cleaned(db.record("a")) and cleaned(db.record("c"))
    assert db.record("b") is not None and db.record("b").ok  # type: ignore[union-attr]
    db.close()
    db = reopen(state_dir)
    try:
        assert cleaned(db.record("a")) and db.record("b").ok  # type: ignore[union-attr]
    finally:
        db.close()


def test_transaction_commits_and_rolls_back(state_dir: Path) -> None:
    db = StateDB(state_dir)
    with db.transaction():
        db.save_success("kept", "sh:x", {}, {}, 1.0, stamp=0)
    with pytest.raises(RuntimeError), db.transaction():
        db.save_success("dropped", "sh:x", {}, {}, 1.0, stamp=0)
        raise RuntimeError("boom")
    db.close()
    db = reopen(state_dir)
    try:
        assert db.record("kept") is not None
        assert db.record("dropped") is None
    finally:
        db.close()


def damaged_copies(state_dir: Path) -> list[Path]:
    return sorted(p for p in state_dir.iterdir() if p.name.startswith("state.db.damaged"))


def assert_set_aside(state_dir: Path, original: bytes | None) -> None:
    db = StateDB(state_dir)
    try:
        assert db.warning is not None
        assert "state" in db.warning
        assert db.record("t") is None
        db.save_success("t", "sh:x", IN, OUT, 1.0, stamp=0)  # the new database works
        assert db.record("t") is not None
    finally:
        db.close()
    aside = [p for p in damaged_copies(state_dir) if not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1
    if original is not None:
        assert aside[0].read_bytes() == original, "the damaged file is kept, not overwritten"
    again = StateDB(state_dir)
    try:
        assert again.warning is None
        assert again.record("t") is not None
    finally:
        again.close()


def test_garbage_file_is_moved_aside_with_a_warning(state_dir: Path) -> None:
    state_dir.mkdir()
    garbage = b"this is not sqlite at all\n" * 200
    (state_dir / "state.db").write_bytes(garbage)
    assert_set_aside(state_dir, garbage)


def make_foreign(state_dir: Path) -> Path:
    state_dir.mkdir()
    path = state_dir / "state.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE tasks (name TEXT, something_else BLOB)")
    other.execute("INSERT INTO tasks VALUES ('theirs', x'00')")
    other.commit()
    other.close()
    return path


def test_foreign_sqlite_database_is_moved_aside(state_dir: Path) -> None:
    make_foreign(state_dir)
    assert_set_aside(state_dir, None)
    (aside,) = [p for p in damaged_copies(state_dir) if p.name[-4:] not in ("-wal", "-shm")]
    con = sqlite3.connect(aside)
    try:
        assert con.execute("SELECT name FROM tasks").fetchall() == [("theirs",)]
    finally:
        con.close()


def test_foreign_sqlite_database_is_moved_aside_unaltered(state_dir: Path) -> None:
    path = make_foreign(state_dir)
    assert_set_aside(state_dir, path.read_bytes())


def test_other_schema_version_is_moved_aside(state_dir: Path) -> None:
    db = StateDB(state_dir)
    db.save_success("t", "sh:x", IN, OUT, 1.0, stamp=0)
    db.close()
    raw = sqlite3.connect(state_dir / "state.db")
    version = raw.execute("PRAGMA user_version").fetchone()[0]
    raw.execute(f"PRAGMA user_version={version + 100}")
    raw.commit()
    raw.close()
    assert_set_aside(state_dir, (state_dir / "state.db").read_bytes())


def test_truncated_database_is_moved_aside(state_dir: Path) -> None:
    db = StateDB(state_dir)
    for i in range(200):
        db.save_success(f"t{i}", "sh:x" * 50, IN, OUT, 1.0, stamp=0)
    db.close()
    path = state_dir / "state.db"
    half = path.read_bytes()[:1000]
    path.write_bytes(half)
    db = StateDB(state_dir)
    try:
        # either refused up front or read as empty: it must never yield a half record
        assert db.record("t150") is None
        assert db.warning is not None
    finally:
        db.close()


# --- what builds record ----------------------------------------------------------------


def test_build_records_successes_and_failures(project: Project) -> None:
    project.taskfile(
        """
        task("good", "cp in.txt out.txt", inputs=["in.txt"], outputs=["out.txt"])
        task("bad", "exit 3", outputs=["never.txt"])
        """
    )
    project.write("in.txt", "hello\n")
    result = project.run("-k")
    assert result.returncode == 1
    db = StateDB(project.root / ".pytaskmake")
    try:
        good = db.record("good")
        assert good is not None and good.ok
        assert list(good.inputs) == ["in.txt"]
        assert list(good.outputs) == ["out.txt"]
        assert good.inputs["in.txt"][1] == good.outputs["out.txt"][1]  # same bytes, same hash
        bad = db.record("bad")
        assert bad is not None and not bad.ok
    finally:
        db.close()


def test_damaged_state_warns_and_reruns_everything(project: Project) -> None:
    project.taskfile(
        """
        task("a", "echo a >> runs.log; echo a > a.txt", outputs=["a.txt"], cache=False)
        task("b", "echo b >> runs.log; cat a.txt > b.txt", inputs=["a.txt"], outputs=["b.txt"],
             cache=False)
        """
    )
    assert project.run().returncode == 0
    db_path = project.root / ".pytaskmake" / "state.db"
    for suffix in ("-wal", "-shm"):
        Path(str(db_path) + suffix).unlink(missing_ok=True)
    db_path.write_bytes(b"\x00garbage" * 512)
    result = project.run()
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert "state database" in output and "never run" in output
    assert project.read("runs.log").split() == ["a", "b", "a", "b"]
    assert damaged_copies(project.root / ".pytaskmake")
    again = project.run()
    assert again.returncode == 0 and "state database" not in again.stdout + again.stderr
    assert project.read("runs.log").split() == ["a", "b", "a", "b"]


def test_state_lives_in_dot_pytaskmake_beside_the_taskfile(project: Project) -> None:
    project.taskfile(
        """
        task("a", "echo a > a.txt", outputs=["a.txt"])
        """
    )
    result = project.run()
    assert result.returncode == 0
    assert (project.root / ".pytaskmake" / "state.db").is_file()
    con = sqlite3.connect(project.root / ".pytaskmake" / "state.db")
    try:
        names = [r[0] for r in con.execute("SELECT name FROM tasks")]
    finally:
        con.close()
    assert names == ["a"]


def test_damaged_record_is_treated_as_never_run(project: Project) -> None:
    project.taskfile(
        """
        task("a", "echo a >> runs.log; cat in.txt > a.txt", inputs=["in.txt"], outputs=["a.txt"],
             cache=False)
        """
    )
    project.write("in.txt", "1\n")
    assert project.run().returncode == 0
    path = project.root / ".pytaskmake" / "state.db"
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = bytearray(path.read_bytes())
    at = data.find(b"I\x00in.txt\x00") + len(b"I\x00in.txt\x00")
    assert at > len(b"I\x00in.txt\x00") and chr(data[at]).isdigit(), "record layout changed"
    data[at] = ord("x")  # one flipped byte inside the record's text: SQLite cannot notice
    path.write_bytes(bytes(data))
    project.write("in.txt", "2\n")  # make the rebuilder look at the record's files
    result = project.run()
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.read("runs.log").split() == ["a", "a"]
    assert project.read("a.txt") == "2\n"


def _many(count: int) -> dict[str, Fingerprint]:
    return {f"out/parse_{i}.csv": ((i, 23, i, i + 1, 0o100644), f"{i:064x}") for i in range(count)}


def _raw(state_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(state_dir / "state.db")


def test_a_record_of_many_files_is_written_in_parts_and_reads_back(state_dir: Path) -> None:
    """A record of 20,000 outputs: one 14 MB row cost sqlite three copies of it at
    once (bind, record, pages: the peak of a 100,000-point Taskfile edit); it goes
    in parts of 8,192 files, each its own row (a fan-in's inputs go in slices:
    test_fanin.py)."""
    outs = _many(20_000)
    db = StateDB(state_dir)
    db.save_success("summary", "sh:x", IN, outs, 1.0, stamp=7)
    db.commit()
    db.close()
    with _raw(state_dir) as raw:
        (head,) = raw.execute("SELECT files FROM tasks WHERE name = 'summary'").fetchone()
        parts = raw.execute("SELECT seq, length(files) FROM parts WHERE name = 'summary'")
        lengths = [n for _, n in sorted(parts)]
    assert len(head) < 100  # the row names its parts; it does not hold the files
    assert len(lengths) == 4  # the input, 3 slices of outputs (8,192 + 8,192 + 3,616)
    assert max(lengths) < 2_000_000
    again = StateDB(state_dir)
    record = again.record("summary")
    assert record is not None and record.ok and record.slices is None
    assert (record.inputs, record.outputs, record.stamp) == (IN, outs, 7)
    again.close()


def test_a_parted_record_replaced_forgotten_or_deleted_leaves_no_parts(state_dir: Path) -> None:
    db = StateDB(state_dir)
    for name in ("a", "b", "c"):
        db.save_success(name, "sh:x", _many(9_000), {}, 1.0, stamp=1)
    db.commit()
    db.save_success("a", "sh:y", IN, OUT, 1.0, stamp=2)  # smaller now: one row
    db.commit()
    db.save_success("d", "sh:x", _many(8_000), OUT, 1.0, stamp=1)  # under a slice: one row
    db.forget(["b"])
    db.delete(["c"])
    db.close()
    with _raw(state_dir) as raw:
        assert raw.execute("SELECT name, seq FROM parts").fetchall() == []
        assert raw.execute("SELECT name, seq FROM slices").fetchall() == []
    again = StateDB(state_dir)
    a, b = again.record("a"), again.record("b")
    assert a is not None and (a.inputs, a.outputs) == (IN, OUT)
    assert b is not None and b.action == CLEANED and b.inputs == {}
    assert again.record("c") is None
    again.close()


@pytest.mark.parametrize("table", ["parts", "slices"])
def test_a_record_missing_a_part_is_damaged_not_trusted(state_dir: Path, table: str) -> None:
    """Outputs of 20,000 files go in parts; a fan-in's 20,000 inputs in slices."""
    db = StateDB(state_dir)
    many = _many(20_000)
    ins, outs = (IN, many) if table == "parts" else (many, OUT)
    db.save_success("summary", "sh:x", ins, outs, 1.0, stamp=1)
    db.commit()
    db.close()
    with _raw(state_dir) as raw:
        assert raw.execute(f"DELETE FROM {table} WHERE name = 'summary' AND seq = 1").rowcount
    again = StateDB(state_dir)
    record = again.record("summary")
    assert record is not None
    if table == "slices":
        assert record.slices is None and not record.ok
    assert record.inputs == {}
    assert not record.ok  # damaged: the task runs again
    again.close()


def test_a_rolled_back_parted_write_leaves_the_parts_as_the_database_has_them(
    state_dir: Path,
) -> None:
    db = StateDB(state_dir)
    db.save_success("X", "sh:a", _many(9_000), {}, 1.0, stamp=7)
    db.commit()
    with pytest.raises(RuntimeError), db.transaction():
        db.save_failure("X", "sh:a", 1.0)  # drops X's parts, then undone
        raise RuntimeError
    db.save_success("X", "sh:b", _many(9_001), {}, 1.0, stamp=8)  # in parts again
    db.commit()
    record = db.record("X")
    assert record is not None and record.ok and record.inputs == _many(9_001)
    db.close()


def test_rows_written_after_a_load_are_read_back_and_others_are_absent(
    state_dir: Path,
) -> None:
    db = StateDB(state_dir)
    db.save_success("old", "sh:o", IN, OUT, 1.0, stamp=1)
    db.commit()
    db.load()  # (a full build: every record read; what it writes next is not kept)
    db.save_success("new", "sh:n", IN, OUT, 2.0, stamp=2)
    db.save_failure("old", "sh:o2", 3.0)
    assert db.row("new") == (1, "sh:n", 2, 2.0)
    assert db.row("old") == (0, "sh:o2", 0, 3.0)
    assert db.row("never") is None
    db.delete(["new"])
    assert db.row("new") is None
    db.close()


def test_a_look_at_a_state_without_the_slices_table_reads_every_record(
    state_dir: Path,
) -> None:
    """A read-only open (-n, --rerun-failed) of an older release's state, which has
    parts but no slices table, must not take the missing table for damage."""
    db = StateDB(state_dir)
    db.save_success("summary", "sh:x", IN, _many(9_000), 1.0, stamp=7)  # in parts
    db.save_failure("broken", "sh:y", 1.0)
    db.commit()
    db.close()
    with _raw(state_dir) as raw:
        raw.execute("DROP TABLE slices")
    look = StateDB(state_dir, readonly=True)
    assert look.failed() == ["broken"]
    assert look.warning is None
    record = look.record("summary")
    assert record is not None and record.ok and len(record.outputs) == 9_000
    look.close()


def test_rows_read_ahead_are_bounded_and_a_dropped_one_is_read_again(state_dir: Path) -> None:
    """A build reaching every task reads rows chunk by chunk: it keeps at most the
    last _AHEAD of them (all of them were 59 MiB at 100,000 points), and a dropped
    row, a missing one included, is read again when asked for."""
    from pytaskmake import state as st

    db = StateDB(state_dir)
    names = [f"t{i}" for i in range(st._AHEAD + 5_000)]
    for i, name in enumerate(names[:-10]):  # the last 10 have no record
        db.save_success(name, f"sh:{i}", {}, {}, float(i), stamp=i)
    db.commit()
    db.close()
    db = StateDB(state_dir)
    for start in range(0, len(names), 2_048):
        db.read_ahead(names[start : start + 2_048])
        assert len(db._ahead) <= st._AHEAD
    assert db.row("t3") == (1, "sh:3", 3, 3.0)  # dropped: read again
    assert db.row(names[-1]) is None and db.row(names[-11]) is not None
    db.read_ahead(names)  # more than it keeps at once: the first _AHEAD
    assert len(db._ahead) == st._AHEAD
    assert db.row(names[-3]) is None and db.row("t7") == (1, "sh:7", 7, 7.0)
    db.close()


def test_durations_of_many_tasks_do_not_load_every_row(state_dir: Path) -> None:
    db = StateDB(state_dir)
    for i in range(12_000):
        db.save_success(f"t{i}", "sh:x", {}, {}, i / 2, stamp=i)
    db.save_failure("failed", "sh:y", 9.5)
    db.commit()
    db.close()
    db = StateDB(state_dir)
    wanted = [f"t{i}" for i in range(0, 12_000, 1)] + ["failed", "never"]
    found = durations(db, wanted)
    assert db._rows is None  # (load() would hold every row for the whole build)
    assert len(found) == 12_000 and found["t3"] == 1.5 and found["failed"] == 9.5
    assert "never" not in found and "t0" not in found  # (0 s: unknown)
    db.close()


def durations(db: StateDB, names: list[str]) -> dict[str, float]:
    """db.durations by name, the unknown (0) left out."""
    found = db.durations(names, positions(names))
    assert len(found) == len(names)
    return {n: s for n, s in zip(names, found, strict=True) if s}


def test_the_snapshots_paths_are_kept_in_pieces_and_read_back_whole(state_dir: Path) -> None:
    """11 MB of paths at 100,000 points were one bound value: three copies of it in
    sqlite at once. Pieces of _PIECE come back as they went in; a piece missing reads
    as other paths (the head's digest refuses them); dropping takes the head; a save
    writes only the pieces that changed (a command edited among 20,000 tasks rewrote
    all 1.2 MB of them)."""
    from pytaskmake import state as st

    db = StateDB(state_dir)
    paths = bytes(range(256)) * (st._PIECE // 100)  # 2.56 pieces
    db.save_snapshot(b"head", paths)
    db.commit()
    with _raw(state_dir) as raw:
        keys = [k for (k,) in raw.execute("SELECT key FROM meta WHERE key LIKE 'snapshot%'")]
    assert sorted(keys) == ["snapshot", *[f"snapshot paths {k:06d}" for k in range(3)]]
    assert db.snapshot() == b"head" and db.snapshot_paths() == paths
    db.save_snapshot(b"head2", b"short")  # fewer pieces: none of the last left over
    assert db.snapshot_paths() == b"short"
    parts = [paths[k : k + 1000] for k in range(0, len(paths), 1000)]
    heads = iter([b"head3"])
    db.save_snapshot(lambda: next(heads), iter(parts))  # in parts: the same pieces
    assert db.snapshot() == b"head3" and db.snapshot_paths() == paths
    db.save_failure("t", "sh:x", 1.0)  # any record written drops its head: no snapshot
    assert db.snapshot() is None
    assert db.snapshot_paths() == paths  # (its pieces stay, vouched for by no head)
    # the next save writes only the pieces that changed, then its head
    before = db._db.total_changes
    db.save_snapshot(b"head4", paths)
    assert db._db.total_changes - before == 1  # the head alone
    edited = bytearray(paths)
    edited[st._PIECE + 7] ^= 1  # one byte of the second piece
    before = db._db.total_changes
    db.save_snapshot(b"head5", bytes(edited))
    assert db._db.total_changes - before == 2
    assert db.snapshot() == b"head5" and db.snapshot_paths() == edited
    db.close()


def test_a_snapshot_save_that_fails_midway_leaves_the_last_one_whole(state_dir: Path) -> None:
    """The pieces and the head are one transaction: a save stopped between them (an
    error, a disk full) keeps the last snapshot, head and pieces, never a mix."""
    from pytaskmake import state as st

    db = StateDB(state_dir)
    old = bytes(range(256)) * (st._PIECE // 100)
    db.save_snapshot(b"old head", old)

    def parts() -> Iterator[bytes]:
        yield b"n" * (st._PIECE + 10)  # a whole piece is written...
        raise OSError("disk full")  # ...then the save stops

    with pytest.raises(OSError):
        db.save_snapshot(lambda: b"new head", parts())
    assert db.snapshot() == b"old head" and db.snapshot_paths() == old
    db.close()
