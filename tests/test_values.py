"""What the engine hands its callers can be kept, sent and compared.

Events, engine options, build results, resource limits and verdicts reach user
code (observers, `Engine.plan()`), which may pickle them (multiprocessing, a
joblib cache), deep-copy them or put verdicts in sets. A no-op's named tuples
default their mapping fields to one shared empty mapping, which must survive all
of that as a fresh dict per object did.
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest

from pytaskmake import events as ev
from pytaskmake.empty import EMPTY
from pytaskmake.engine import BuildResult, Engine, EngineOptions
from pytaskmake.resources import Limits
from pytaskmake.stale import UNCHANGED, Verdict
from pytaskmake.taskfile import Task

VALUES = [
    ev.BuildStarted(3, 2),
    ev.BuildStarted(1, 2, ("a",), {"a": 1.5}, {"a": 2}),
    ev.TaskDone("a", ev.RAN, "never run", 0.1, b"hi\n"),
    ev.BuildFinished({ev.RAN: 1}, 0.2),
    BuildResult(),
    EngineOptions(jobs=2),
    Limits(4),
    Verdict(True, "never-run", "never run"),
    UNCHANGED,
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_values_pickle_and_deep_copy_to_equal_values(value: object) -> None:
    assert pickle.loads(pickle.dumps(value)) == value
    assert copy.deepcopy(value) == value


def test_the_shared_empty_mapping_stays_one_read_only_empty_mapping() -> None:
    assert pickle.loads(pickle.dumps(EMPTY)) is EMPTY and copy.deepcopy(EMPTY) is EMPTY
    assert EMPTY == {} and len(EMPTY) == 0 and "a" not in EMPTY and dict(EMPTY) == {}
    with pytest.raises(TypeError):
        EMPTY["a"] = 1  # type: ignore[index]
    assert ev.BuildStarted(1, 1).expected.get("a") is None


def test_verdicts_hash_and_compare_without_their_file_maps(tmp_path: Path) -> None:
    clean = Verdict(False, "clean", "up to date", {"in": ((1, 2, 3, 4, 5), "h")})
    assert clean == UNCHANGED and hash(clean) == hash(UNCHANGED)
    (tmp_path / "a.txt").write_text("a\n")
    tasks = [Task("copy", "cp a.txt b.txt", ("a.txt",), ("b.txt",))]
    plan = Engine(tasks, tmp_path).plan()
    assert len(set(plan.values())) == 1 and pickle.loads(pickle.dumps(plan)) == plan
