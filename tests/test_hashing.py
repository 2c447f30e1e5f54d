"""Big outputs are hashed beside the build loop (hashing.py): what waits on them
still waits, their records are right, and a missing one is still a failure."""

from __future__ import annotations

import blake3
from conftest import Project, build, runs

from pytaskmake.hashing import BIG
from pytaskmake.state import StateDB

BIG_TASKS = f"""
task("big", "echo big >> runs.log; head -c {BIG + 1} /dev/urandom > big.bin",
     inputs=["seed.txt"], outputs=["big.bin"])
task("use", "echo use >> runs.log; wc -c < big.bin > size.txt",
     inputs=["big.bin"], outputs=["size.txt"])
for i in range(6):
    task(f"tiny{{i}}", f"echo tiny{{i}} >> runs.log; echo {{i}} > t{{i}}.txt",
         outputs=[f"t{{i}}.txt"])
"""


def test_a_big_output_is_recorded_and_released_after_its_hash(project: Project) -> None:
    project.write("seed.txt", "1\n")
    project.taskfile(BIG_TASKS)
    build(project, "-j2")
    assert sorted(runs(project)) == sorted(["big", "use"] + [f"tiny{i}" for i in range(6)])
    assert project.read("size.txt").strip() == str(BIG + 1)  # ran after big was complete
    db = StateDB(project.root / ".pytaskmake", readonly=True)
    record = db.record("big")
    assert record is not None and record.ok
    data = (project.root / "big.bin").read_bytes()
    assert record.outputs["big.bin"][1] == blake3.blake3(data).hexdigest()
    db.close()
    build(project, "-j2")
    assert runs(project) == []  # the record vouches for a no-op
    (project.root / "big.bin").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    build(project, "-j2", "--no-cache")
    assert sorted(runs(project)) == ["big", "use"]  # the edit was seen through the hash


def test_a_big_task_missing_one_output_fails(project: Project) -> None:
    project.taskfile(
        f'task("big", "head -c {BIG + 1} /dev/zero > a.bin", outputs=["a.bin", "b.bin"])\n'
    )
    result = build(project, code=1)
    assert "did not produce declared output b.bin" in result.stdout
