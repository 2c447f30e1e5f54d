"""The rebuilder: must this task run, and why.

Every decision is a Verdict carrying its reason as data, so `--explain`, `-n` and
the tests read the same words the engine acted on (redo's habit). Inputs are
compared by content; a stat match is only a shortcut to "same content".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from . import fanin
from .digest import blake2b
from .fanin import Slice, SlicedInputs, is_fanin
from .fingerprint import FileCache, Fingerprint, Stat
from .state import CLEANED, StateDB, TaskRecord
from .taskfile import Task


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a task must run; `reason` is one line for humans, `code` for programs.

    A dataclass, unlike the events (see events.py): its file maps stay out of `==`
    and hash. This module is imported only when a build checks tasks one by one,
    never by a no-op answered by the snapshot.
    """

    stale: bool
    code: str
    reason: str
    inputs: Mapping[str, Fingerprint] = field(default_factory=dict, compare=False)
    outputs: dict[str, Fingerprint] = field(default_factory=dict, compare=False)
    refresh: bool = False  # clean, but stats moved (touch): re-record to keep no-ops fast
    restorable: bool = False  # stale, and the run cache holds its outputs (-n says so)
    traced: dict[str, Fingerprint] = field(default_factory=dict, compare=False)  # (refresh)


CLEAN = "clean"
FORCED = "forced"
NEVER_RUN = "never-run"
FAILED = "failed"
ACTION = "action"
INPUTS = "inputs"
INPUT = "input"
MISSING_INPUT = "missing-input"
MISSING_OUTPUT = "missing-output"
OUTPUT = "output"
UPSTREAM = "upstream"
TRACED = "traced-input"  # a file a trace found it reading changed (see tracing.py)
MISSING_SOURCE = "missing-source"  # reads a file that neither exists nor is produced
BLOCKED = "blocked"  # downstream of a task that cannot run


UNCHANGED = Verdict(False, CLEAN, "up to date")
RERUN = Verdict(True, FORCED, "forced (--rerun)")
ALWAYS = Verdict(True, FORCED, "runs on every build (always=True)")


def paths_key(action: str, paths: tuple[str, ...]) -> int:
    """A 64-bit digest of a task's action digest and file paths, stable across processes."""
    text = action + "\0\1" + "\0".join(paths)
    return int.from_bytes(blake2b(text.encode(), digest_size=8).digest(), "little")


def stamp_of(key: int, stats: list[Stat | None]) -> int:
    """Digest of a task's action and paths (`key`, from paths_key) and its files' stats.

    The paths count too: renaming an input keeps its inode, mtime and size; so does
    the action, so that a matching stamp alone says "nothing about this task moved".
    """
    return hash((key, *stats))


_FANIN_KEY = "\0slices"  # in a fan-in's stamp key, where no path can be


def record_stamp(
    action: str,
    inputs: Mapping[str, Fingerprint],
    outputs: Mapping[str, Fingerprint],
    traced: Mapping[str, Fingerprint] | None = None,
) -> int:
    """The stamp a record of these files gets (see stamp_of).

    With traced inputs it never matches the stamp unchanged() computes from the
    declarations alone (it holds more stats), so such a task is always looked at
    whole: the declarations do not name its traced inputs.
    """
    if isinstance(inputs, SlicedInputs) or is_fanin(len(inputs)):
        stamps = [s.stamp for s in SlicedInputs.of(inputs).slices]
        others = [fp[0] for fp in outputs.values()] + [fp[0] for fp in (traced or {}).values()]
        key = paths_key(action, (_FANIN_KEY, *outputs, *(traced or ())))
        return fanin.sliced_stamp(key, stamps, others)
    stats = [fp[0] for fp in inputs.values()] + [fp[0] for fp in outputs.values()]
    if traced:  # (its paths are in the key: a stamp of the declarations alone differs)
        stats += [fp[0] for fp in traced.values()]
    return stamp_of(paths_key(action, (*inputs, *outputs, *(traced or ()))), stats)


class Rebuilder:
    """The one place that decides, for one build, whether a task must run.

    Two questions, asked of the same stamps: `moved` (the cheap one, for the dirty
    set: did anything about this task move since its record?) and `verdict` (must
    it run, and why?). A fan-in found moved is remembered, so its stamp is not
    computed twice (a summary of 100,000 inputs stats them all).
    """

    def __init__(
        self,
        state: StateDB,
        files: FileCache,
        forced: bool = False,
        rerun: frozenset[str] = frozenset(),
    ) -> None:
        """`forced`: every task runs (-B); `rerun`: these tasks run (--rerun)."""
        self.state, self.files, self.forced, self.rerun = state, files, forced, rerun
        self._moved: set[str] = set()
        # a record with traced inputs was seen: the no-op snapshot, which knows only
        # the declared files, must not vouch for this build (see Build._save_snapshot)
        self.traced_seen = False

    def moved(self, task: Task, remember: bool = True) -> bool:
        """True unless the task succeeded with this action and no file's stat moved.

        `remember`: keep the answer for verdict(); not when asking about every task
        of a build (a full build of 200,000 never-run tasks kept a set of 200,000
        names: ~8 MB, for the cheap answer "no record"). Only a fan-in's is kept: its
        stamp stats 100,000 files, any other task's costs microseconds, and verdict()
        computes it again from the one row it reads (a parameter every simulation
        uses, edited, kept 100,000 names: 4 MiB).
        """
        if (
            self.forced
            or task.name in self.rerun
            or task.always
            or not unchanged(task, self.state.row(task.name), self.files)
        ):
            if remember and is_fanin(len(task.inputs)):
                self._moved.add(task.name)
            return True
        return False

    def verdict(self, task: Task) -> Verdict:
        """Must `task` run now, and why (its upstream is done)."""
        if self.forced:
            return Verdict(True, FORCED, "forced (-B)")
        if task.name in self.rerun:
            return RERUN
        if task.always:
            return ALWAYS
        record = self.state.record(task.name)  # (its row read once: files only if needed)
        # a fan-in found moved is not stamped again (100,000 stats); any other task's
        # stamp is check()'s fast path
        found = check(task, record, self.files, stamp_moved=task.name in self._moved)
        if found is not UNCHANGED and record is not None and record.ok and record.traced:
            self.traced_seen = True
        return found

    def current_inputs(self, task: Task) -> Mapping[str, Fingerprint]:
        """What the task's record will say of its inputs if it runs now."""
        return current_inputs(task, self.files, self.state.record(task.name))

    def current_traced(self, task: Task) -> dict[str, Fingerprint]:
        """Its traced inputs as they are now (those still there), for a run untraced."""
        return current_traced(self.files, self.state.record(task.name))


def check(
    task: Task,
    record: TaskRecord | None,
    files: FileCache,
    forced: bool = False,
    stamp_moved: bool = False,
) -> Verdict:
    """Decide whether `task` must run, given its last record and the files as they are now.

    `stamp_moved`: the caller found that the stamp does not match (unchanged() was
    False), so it is not computed again; the files are compared one by one all the same.
    """
    if forced:
        return Verdict(True, FORCED, "forced (-B)")
    if record is None:
        return Verdict(True, NEVER_RUN, "never run")
    if not record.ok:
        if record.action == CLEANED:
            return Verdict(True, FORCED, "cleaned (--clean): runs, never restored")
        return Verdict(True, FAILED, "failed last time")
    if record.action != task.action.digest:
        return Verdict(True, ACTION, "action changed")
    if not stamp_moved and unchanged(task, (1, record.action, record.stamp), files):
        return UNCHANGED
    return _check_files(task, record, files)


def unchanged(
    task: Task, row: tuple[int, str, int, float] | tuple[int, str, int] | None, files: FileCache
) -> bool:
    """The no-op fast path: it succeeded with this action and no file's stat moved.

    Answered from the state row (ok, action digest, stamp) alone, without decoding
    the file list: a no-op over 100,000 tasks asks this 100,000 times.
    """
    if row is None or not row[0]:
        return False
    if is_fanin(len(task.inputs)):
        return row[2] == _fanin_stamp(task, files)
    # the action is in the key: a new command never matches an old stamp
    key = paths_key(task.action.digest, task.inputs + task.outputs)
    stat = files.stat
    stats = [stat(p) for p in task.inputs]
    stats += [stat(p) for p in task.outputs]
    return row[2] == stamp_of(key, stats)


def _fanin_stamp(task: Task, files: FileCache) -> int | None:
    """A fan-in's stamp from its declarations and stats (None: an input is missing)."""
    stamps = []
    for part, packed, stamp in fanin.cut(task.inputs, files):
        if fanin.first_missing(part, packed) is not None:
            return None
        stamps.append(stamp)
    key = paths_key(task.action.digest, (_FANIN_KEY, *task.outputs))
    return fanin.sliced_stamp(key, stamps, [files.stat(p) for p in task.outputs])


def _check_files(task: Task, record: TaskRecord, files: FileCache) -> Verdict:
    if is_fanin(len(task.inputs)) and (stored := record.slices) is not None:
        return _check_sliced(task, record, stored, files)
    recorded = record.inputs
    if not record.ok:
        return Verdict(True, FAILED, "its state record is damaged")
    if len(recorded) != len(task.inputs) and recorded.keys() != set(task.inputs):
        return Verdict(True, INPUTS, _set_change("inputs", recorded, task.inputs))
    if any(p not in recorded for p in task.inputs):
        return Verdict(True, INPUTS, _set_change("inputs", recorded, task.inputs))
    outputs = _outputs_found(task, record, files)
    if isinstance(outputs, Verdict):
        return outputs
    current = _inputs_found(task, task.inputs, recorded, files)
    if isinstance(current, Verdict):
        return current
    if is_fanin(len(current)):  # recorded before slices: sliced once, here
        return _clean(task, record, files, SlicedInputs.of(current), outputs)
    return _clean(task, record, files, current, outputs)


def _check_sliced(
    task: Task, record: TaskRecord, stored: list[fanin.StoredSlice], files: FileCache
) -> Verdict:
    """_check_files for a fan-in recorded in slices: a slice whose stamp its record
    holds is as recorded; only the others are decoded and compared."""
    by_stamp = {s.stamp: s for s in stored}
    slices: list[Slice] = []
    for part, packed, stamp in fanin.cut(task.inputs, files):
        hit = by_stamp.pop(stamp, None) if fanin.first_missing(part, packed) is None else None
        seq = -1 if hit is None else hit.seq
        slices.append(Slice(part, packed, stamp, "" if hit is None else hit.digest, None, seq))
    seqs = [s.seq for s in by_stamp.values()]  # the slices moved, in record order
    moved = [p for s in slices if s.seq < 0 for p in s.paths]
    if not _same_paths(moved, fanin.recorded(record, seqs)):
        if not record.ok:
            return Verdict(True, FAILED, "its state record is damaged")
        change = _set_change("inputs", record.slice_files(seqs), tuple(moved))
        return Verdict(True, INPUTS, change)
    if not record.ok:
        return Verdict(True, FAILED, "its state record is damaged")
    outputs = _outputs_found(task, record, files)
    if isinstance(outputs, Verdict):
        return outputs
    recorded = fanin.recorded(record, seqs)  # (a window is read again: it dropped them)
    for i, s in enumerate(slices):
        if s.seq >= 0:
            continue
        found = _inputs_found(task, s.paths, recorded, files)
        if isinstance(found, Verdict):
            return found
        slices[i] = fanin.encoded(s, found)
    return _clean(task, record, files, SlicedInputs(slices, record), outputs)


def _same_paths(moved: list[str], recorded: dict[str, Fingerprint] | fanin.Recorded) -> bool:
    """The moved slices name exactly the files their records held."""
    if isinstance(recorded, dict):
        return len(moved) == len(recorded) and all(p in recorded for p in moved)
    return all(recorded.get(p) is not None for p in moved) and recorded.exhausted()


def _inputs_found(
    task: Task,
    paths: tuple[str, ...],
    recorded: Mapping[str, Fingerprint] | fanin.Recorded,
    files: FileCache,
) -> dict[str, Fingerprint] | Verdict:
    """These inputs as they are now (each recorded), or the verdict that one moved."""
    found: dict[str, Fingerprint] = {}
    for path in paths:
        known = recorded[path]
        now = files.fingerprint(path, known)
        if now is None:
            return Verdict(True, MISSING_INPUT, f"input {path} is missing")
        if now[1] != known[1]:
            kind = "implicit input" if path in task.implicit else "input"
            return Verdict(True, INPUT, f"{kind} {path} changed")
        found[path] = now
    return found


def _outputs_found(
    task: Task, record: TaskRecord, files: FileCache
) -> dict[str, Fingerprint] | Verdict:
    """The task's outputs as they are now, or the verdict that one moved."""
    outputs: dict[str, Fingerprint] = {}
    for path in task.outputs:
        known = record.outputs.get(path)
        now = files.fingerprint(path, known)
        if now is None:
            return Verdict(True, MISSING_OUTPUT, f"output {path} is missing")
        if known is None:
            return Verdict(True, OUTPUT, f"output {path} is newly declared")
        if now[1] != known[1]:
            return Verdict(True, OUTPUT, f"output {path} was modified outside the build")
        outputs[path] = now
    return outputs


def _clean(
    task: Task,
    record: TaskRecord,
    files: FileCache,
    current: Mapping[str, Fingerprint],
    outputs: dict[str, Fingerprint],
) -> Verdict:
    """Its declared files are as recorded: the verdict its traced inputs give."""
    traced: dict[str, Fingerprint] = {}
    for path, known in record.traced.items():
        files.forget(path)  # statted afresh: no watcher names them (see Engine._file_memo)
        now = files.fingerprint(path, known)
        if now is None:
            return Verdict(True, TRACED, f"traced input {path} disappeared")
        if now[1] != known[1]:
            return Verdict(True, TRACED, f"traced input {path} changed")
        traced[path] = now
    # reached when the stamp did not match: re-record so the next no-op is fast (a
    # record with traced inputs never matches: re-recorded only when a stat moved)
    refresh = not traced or record_stamp(record.action, current, outputs, traced) != record.stamp
    return Verdict(
        False,
        CLEAN,
        "up to date",
        current,
        outputs,
        refresh=refresh,
        traced=traced,
    )


def _set_change(what: str, recorded: dict[str, Fingerprint], now: tuple[str, ...]) -> str:
    """ "inputs changed (added X, removed Y)": the first of each, found in linear time
    (a summary of 100,000 inputs tested each against a tuple of 100,000: minutes)."""
    present = set(now)
    added = [p for p in now if p not in recorded]
    removed = [p for p in recorded if p not in present]
    parts = [f"added {added[0]}" if added else "", f"removed {removed[0]}" if removed else ""]
    return f"{what} changed (" + ", ".join(p for p in parts if p) + ")"


def current_inputs(
    task: Task, files: FileCache, record: TaskRecord | None = None
) -> Mapping[str, Fingerprint]:
    """Fingerprints of a task's inputs just before it runs: what its record will say.

    Inputs whose stat still matches the last record keep its hash unread, so
    rerunning a fan-in of 10,000 files after one edit hashes one file, not 10,000
    (and, in slices, decodes one slice of its record: fanin.py).
    """
    if is_fanin(len(task.inputs)):
        return fanin.current(task.inputs, files, record)
    known = record.inputs if record is not None and record.ok else {}
    found: dict[str, Fingerprint] = {}
    for path in task.inputs:
        fp = files.fingerprint(path, known.get(path))
        if fp is not None:
            found[path] = fp
    return found


def current_traced(files: FileCache, record: TaskRecord | None) -> dict[str, Fingerprint]:
    """Fingerprints of a record's traced inputs that still exist, as they are now."""
    if record is None or not record.ok:
        return {}
    found: dict[str, Fingerprint] = {}
    for path, known in record.traced.items():
        fp = files.fingerprint(path, known)
        if fp is not None:
            found[path] = fp
    return found
