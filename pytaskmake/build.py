"""One build: walk the selected graph, run what is stale, record what succeeded.

This is the loop that composes the scheduler (order), the rebuilder (stale.check),
an executor (where jobs run) and the state DB (traces), and reports each step as
an event. A task is checked only once everything it needs is done, so a rerun
upstream whose output bytes did not change leaves its dependants alone (early
cutoff).
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from . import collector, snapshot
from . import events as ev
from .action import CallableAction, ShellAction
from .cache import CorruptEntry, RunCache, cache_key, outputs_of
from .dirty import dirty_everywhere, dirty_past_snapshot
from .discovery import Discovery
from .executors.base import Completion, Executor, Job
from .executors.job import RETURNED_FALSE
from .fanin import stats_of
from .fingerprint import FileCache, Fingerprint, stat_of
from .graph import BuildGraph
from .hashing import BIG, BackgroundHasher, Hashed
from .outputs import OutputKeeper
from .resources import Limits, available_memory
from .scheduler import Scheduler, positions
from .stale import FORCED, Rebuilder, Verdict, record_stamp
from .state import StateDB
from .taskfile import Task

_HASH_POLL = 0.005  # seconds between looks at the hashing thread while it works
# Tasks found clean after their files' stats moved are re-recorded this many at a
# time: a whole sweep whose files were all touched (a copy without -p, a restore)
# kept 200,000 verdicts and their fingerprint dicts until the end (738 MiB at
# 100,000 points; 473 MiB with batches).
_REFRESH_BATCH = 1000


@dataclass
class BuildOptions:
    """How one build behaves; how many jobs run at once is the executor's to say."""

    keep_going: bool = False
    always: bool = False
    cache: RunCache | None = None
    rerun: frozenset[str] = frozenset()  # tasks forced to run (--rerun)
    stream: bool = False  # show task output as it comes (--stream)
    discovery: Discovery | None = None  # trace=True, --trace-deps, depfiles
    mem: int | None = None  # bytes tasks may hold at once; None: available now; 0: no limit
    resources: tuple[tuple[str, float], ...] = ()  # limits of named resources (gpu=2)


class Build:
    """Runs the stale part of `names` (a selection of `graph`) and reports events."""

    def __init__(
        self,
        graph: BuildGraph,
        names: list[str],
        state: StateDB,
        executor: Executor,
        observer: ev.Observer,
        options: BuildOptions,
        state_dir: Path,
        files: FileCache | None = None,
        known: snapshot.Comparison | None = None,
    ) -> None:
        """`known`: the declarations and files compared with the last complete build's
        snapshot; then only the tasks of its changed chunks can have a moved stamp."""
        self.graph, self.names, self.state = graph, names, state
        self.known = known
        self.executor, self.observer, self.options = executor, observer, options
        self.state_dir = state_dir
        self.files = files or FileCache()
        self.rebuilder = Rebuilder(state, self.files, options.always, options.rerun)
        self.counts = {o: 0 for o in (ev.RAN, ev.RESTORED, ev.UP_TO_DATE, ev.FAILED, ev.SKIPPED)}
        self._inputs: dict[str, Mapping[str, Fingerprint]] = {}  # of stale tasks, until done
        self._keys: dict[str, str] = {}  # their run-cache keys, from those inputs
        self._traced: dict[str, dict[str, Fingerprint]] = {}  # ... and traced inputs
        self._traced_kept = False  # a record with traced inputs was written
        self._attempts: dict[str, int] = {}
        self._refresh: list[tuple[Task, Verdict]] = []
        self._made_dirs: set[str] = {""}
        self.outputs = OutputKeeper(state_dir)
        self._vouched: dict[str, bool] = {}  # running tasks: a record vouches for their outputs
        self._to_drop: list[Task] = []  # succeeded: old outputs dropped once committed
        self._stopping = False
        self._warned = False
        self._checked_chunks: set[int] = set()  # past the snapshot: chunks checked whole
        self._blocked: dict[str, str] = {}  # task -> a source file it reads that is missing
        self.saved: snapshot.Saved | None = None  # the snapshot saved at the end, if any
        self.saved_value: bytes | None = None  # ... its head, as it was written
        self.chunks: snapshot.Chunks | None = None  # the declarations as it cut them
        self._interrupts = 0
        self._seen_interrupts = 0
        self._stopped_by: int = 0  # SIGTERM or SIGHUP: stop everything now
        self.hasher = BackgroundHasher()
        stream = getattr(executor, "stream", None)
        if stream is not None and options.stream:
            stream(lambda name, data: observer.handle(ev.TaskOutput(name, data)))

    def run(self) -> ev.BuildFinished:
        """Build; returns the closing event (also emitted). Ctrl-C is handled inside."""
        start = time.monotonic()
        self._recover_outputs()
        with collector.paused():  # (the dirty set: many objects, no cycles)
            affected = self._affected()
        exists = lambda p: self.files.stat(p) is not None  # noqa: E731
        self._blocked = self.graph.missing_sources(
            self.names if self.known is None else affected, exists
        )
        self._notice_lost_records()
        if affected:  # before anything runs: a task that can never fit is an error
            self.scheduler = self._scheduler(affected)
            # so is a task no worker can ever run (lazily: an executor that can run
            # anything never builds these jobs)
            self.executor.check(self._job(n) for n in affected if n not in self._blocked)
        emit = self.observer.handle
        emit(self._started_event(affected))
        previous = self._catch_signals()
        try:
            if affected:
                self._block_missing()
                self._loop()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
            self._flush_refresh()
            self._commit()
        self._notice_lost_records()
        if self._complete():
            self._save_snapshot(affected)
        finished = ev.BuildFinished(
            dict(self.counts),
            time.monotonic() - start,
            interrupted=self._interrupts > 0,
            signal=self._stopped_by,
        )
        emit(finished)
        return finished

    def _scheduler(self, affected: list[str]) -> Scheduler:
        """The ready queue of this build (ResourceError if a task can never fit)."""
        graph, options = self.graph, self.options
        mem = available_memory() if options.mem is None else options.mem
        limits = Limits(self.executor.jobs, mem, dict(options.resources))
        peaks = self.state.peaks(affected)
        index = positions(affected)
        recorded = self.state.durations(affected, index)
        return Scheduler.for_build(
            graph.tasks, affected, graph.upstream, graph.dependants, limits, recorded, peaks, index
        )

    def _started_event(self, affected: list[str]) -> ev.BuildStarted:
        """What the reporter needs for its status line and ETA: the same expected
        durations and resources the scheduler goes by."""
        if not affected:
            return ev.BuildStarted(0, self.executor.jobs)
        estimate, demands = self.scheduler.estimates, self.scheduler.demands
        assert estimate is not None
        expected = estimate.completed()
        cpus = {n: d.cpus for n, d in demands.items() if d.cpus > 1}
        pool = self.scheduler.pool
        held = pool is not None and any(d.mem for d in demands.values())
        mem = pool.limits.mem if held and pool is not None else 0  # shown when tasks hold some
        return ev.BuildStarted(
            len(affected), self.executor.jobs, tuple(affected), expected, cpus, mem
        )

    def _block_missing(self) -> None:
        """Tasks reading a source file that does not exist fail at once, with what
        needs them; with -k the rest of the build goes on."""
        for name, path in self._blocked.items():
            self.counts[ev.FAILED] += 1
            reason = f"missing input {path} (no task produces it)"
            self.observer.handle(ev.TaskDone(name, ev.FAILED, reason))
            self._skip_downstream(name)
        if self._blocked and not self.options.keep_going:
            self._stopping = True

    def _skip_downstream(self, name: str) -> None:
        for skipped in self.scheduler.failed(name):
            self.counts[ev.SKIPPED] += 1
            self.observer.handle(ev.TaskDone(skipped, ev.SKIPPED, f"needs {name}, which failed"))

    def _commit(self) -> None:
        """Commit the records written, then drop the old outputs they replaced."""
        self.state.commit()
        for task in self._to_drop:
            kept = self.outputs.drop(task.outputs, self._vouched.pop(task.name, True))
            if kept:
                where = self.outputs.where(self.outputs.replaced)
                self.observer.handle(
                    ev.Notice(
                        f"{task.name}: replaced {', '.join(kept)}, which no record vouched "
                        f"for; the old file(s) are kept in {where}"
                    )
                )
        self._to_drop.clear()

    def _recover_outputs(self) -> None:
        """Put back the outputs a killed build had set aside (see outputs.py)."""
        back = self.outputs.recover(self._is_recorded_output, self.graph.producer.__contains__)
        if back:
            shown = ", ".join(back[:3]) + (f" and {len(back) - 3} more" if len(back) > 3 else "")
            self.observer.handle(
                ev.Notice(f"put back {shown}, set aside by a build that was killed", "note")
            )
            for path in back:
                self.files.forget(path)
            if self.known is not None:  # its children's stats predate the putting back
                self.known.let_go()

    def _is_recorded_output(self, path: str) -> bool:
        name = self.graph.producer.get(path)
        record = self.state.record(name) if name is not None else None
        if record is None or not record.ok or path not in record.outputs:
            return False
        now = self.files.fingerprint(path, record.outputs[path])
        return now is not None and now[1] == record.outputs[path][1]

    def _notice_lost_records(self) -> None:
        """Damage found while reading records (set aside, with a warning): say so once."""
        if self.state.lost_records and self.state.warning and not self._warned:
            self._warned = True
            self.observer.handle(ev.Notice(self.state.warning))

    def _save_snapshot(self, affected: list[str]) -> None:
        """Every task is done: vouch for it, so the next run may skip the graph (not
        while a record has traced inputs: the snapshot stats declared files only)."""
        if self._traced_kept or self.rebuilder.traced_seen:
            return
        if self.known is not None and self.known.suspects is not None and not self._verified():
            return  # something the caller did not name moved: the next run looks whole
        if self.known is not None:  # only the chunks this build reached are digested again
            saved = self.known.updated(self.files.stat, self._checked_chunks)
            self.chunks = self.known.chunks
        else:
            self.chunks = snapshot.Chunks(list(self.graph.tasks.values()))
            saved = snapshot.fresh(self.chunks.tasks, self.files.stat, self.chunks)
        # (the head written tells it apart: see snapshot.value_digest)
        self.saved_value = self.state.save_snapshot(saved.head, saved.released())
        self.saved = saved

    def _verified(self) -> bool:
        """After a build told which files changed (a watcher's), before vouching for the
        chunks it digests again: every task of theirs still matches its record (the
        tasks outside the suspects were not looked at before they ran: an output edited
        by hand where no watcher looks must not slip into the snapshot)."""
        assert self.known is not None
        moved = self.rebuilder.moved
        chunks = self.known.chunks
        for j in self._checked_chunks:
            tasks = chunks.tasks_of(j)
            self.state.read_ahead([t.name for t in tasks])
            if any(moved(t) for t in tasks):
                return False
        return True

    def _affected(self) -> list[str]:
        """The selected tasks that may run (see dirty.py); the others are counted up to
        date at once."""
        names = self.names
        if self.options.always:
            return names
        moved = self.rebuilder.moved
        if self.known is not None:
            known, files = self.known, self.files
            seed = lambda j: known.seed(j, files)  # noqa: E731
            suspects = lambda j: known.suspects_in(j, files.stat)  # noqa: E731
            marked, self._checked_chunks = dirty_past_snapshot(
                known, names, self.graph, moved, self.state.read_ahead, seed, suspects
            )
            known.checked()  # every file this build checks is known now
        else:
            marked = dirty_everywhere(names, self.graph, moved)
        self.counts[ev.UP_TO_DATE] = len(names) - len(marked)
        return names if len(marked) == len(names) else [n for n in names if n in marked]

    def _complete(self) -> bool:
        """Every declared task is done and recorded: the no-op snapshot may be saved."""
        c = self.counts
        done = c[ev.RAN] + c[ev.RESTORED] + c[ev.UP_TO_DATE]
        whole = len(self.names) == len(self.graph.tasks)
        intact = not self.state.lost_records  # else unread tasks have no record now
        return whole and intact and done == len(self.names) and not self._interrupts

    def _catch_signals(self) -> dict[int, Any]:
        """Ctrl-C (SIGINT), and SIGTERM (a batch system's time limit, `timeout`) and
        SIGHUP (a closed ssh session), which are interrupts, not deaths: the loop
        stops the tasks and records what finished. Only the main thread may."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        }

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # acted on by the loop, never inside the handler
        if signum == signal.SIGINT:
            self._interrupts += 1
        else:  # as a second Ctrl-C: stop the running tasks now
            self._stopped_by = signum
            self._interrupts = max(self._interrupts, 1) + 1

    def _loop(self) -> None:
        executor, hasher = self.executor, self.hasher
        try:
            while True:
                self._notice_interrupts()
                self._dispatch()
                self._commit()  # restored, failed, re-recorded: on disk before we wait
                if executor.running() == 0:
                    if not hasher.pending:
                        return
                    for completion, found in hasher.done(block=True):
                        self._finish_hashed(completion, found)
                    continue
                # (while big outputs are hashed, look at the hasher every few ms)
                for completion in executor.wait(_HASH_POLL if hasher.pending else None):
                    self._finish(completion)
                for completion, found in hasher.done():
                    self._finish_hashed(completion, found)
                self._commit()  # before the next dispatch, which may take a while
        finally:
            hasher.close()

    def _notice_interrupts(self) -> None:
        if self._interrupts == self._seen_interrupts:
            return
        self._seen_interrupts = self._interrupts
        self._stopping = True
        running = self.executor.running()
        if self._interrupts == 1 and running:
            self.observer.handle(
                ev.Notice(
                    f"interrupted: letting {running} running task(s) finish; "
                    "press Ctrl-C again to stop them now"
                )
            )
        elif self._stopped_by:
            name = signal.Signals(self._stopped_by).name
            self.observer.handle(ev.Notice(f"received {name}: stopping {running} task(s)"))
            self.executor.terminate()
        elif self._interrupts >= 2:
            self.observer.handle(ev.Notice(f"interrupted again: stopping {running} task(s)"))
            self.executor.terminate()

    def _dispatch(self) -> None:
        """While the scheduler admits a ready task (the most urgent one that fits the
        free slots, memory and resources), finish it on the spot when clean or
        restored (releasing what waits on it), else start it.

        Nothing is checked ahead of free room: the scheduler's order is the order
        tasks start in (priorities hold), and a task's inputs are fingerprinted at
        its turn, not long before it runs.
        """
        scheduler = self.scheduler
        # (a Ctrl-C is heard here too: restores and up-to-date verdicts run back to
        # back without a wait, 20,000 of them when going back to earlier inputs)
        while not self._stopping and self._interrupts == self._seen_interrupts:
            name = scheduler.admit(time.monotonic())
            if name is None:
                break
            if name in self._blocked:
                scheduler.release(name)
                continue
            verdict = self._verdict(name)
            if verdict is None or self._restored(name, verdict):
                continue
            self._start(name, verdict)
        self._flush_refresh()

    def _verdict(self, name: str) -> Verdict | None:
        """The rebuilder's verdict; a clean task is finished on the spot (returns None)."""
        task = self.graph.tasks[name]
        verdict = self.rebuilder.verdict(task)
        if verdict.stale:
            return verdict
        if verdict.refresh:
            self._refresh.append((task, verdict))
            if len(self._refresh) >= _REFRESH_BATCH:
                self._flush_refresh()
        self.counts[ev.UP_TO_DATE] += 1
        self.observer.handle(ev.TaskDone(name, ev.UP_TO_DATE, verdict.reason))
        self.scheduler.succeeded(name)
        return None

    def _cache_key(self, task: Task) -> str | None:
        """The run-cache key of a stale task about to run, or None when it is not cached."""
        cache = self.options.cache
        if cache is None or not task.cache or not task.outputs or not task.action.cacheable:
            return None
        key = self._keys.get(task.name)
        if key is None:
            inputs = self._inputs_of(task)
            key = self._keys[task.name] = cache_key(
                task.signature, task.outputs, inputs, self._traced[task.name]
            )
        return key

    def _inputs_of(self, task: Task) -> Mapping[str, Fingerprint]:
        """A stale task's inputs as they are before it runs (and its traced ones)."""
        if task.name not in self._inputs:
            self._inputs[task.name] = self.rebuilder.current_inputs(task)
            self._traced[task.name] = self.rebuilder.current_traced(task)
        return self._inputs[task.name]

    def _restored(self, name: str, verdict: Verdict) -> bool:
        """Restore a stale task's outputs from the run cache instead of running it."""
        task = self.graph.tasks[name]
        if self.options.always or verdict.code == FORCED:  # forcing means running
            return False
        if (key := self._cache_key(task)) is None:
            return False
        assert self.options.cache is not None
        entry = self.options.cache.lookup(key)
        if entry is None or set(outputs_of(entry)) != set(task.outputs):
            return False
        started, mono = time.time(), time.monotonic()
        try:
            self._prepare_outputs(task)
            self.options.cache.restore(key, entry)
        except (CorruptEntry, OSError) as exc:
            self.outputs.put_back(task.outputs)
            self.observer.handle(ev.Notice(f"{name}: {exc}; running it instead"))
            return False
        self._to_drop.append(task)
        outputs = {p: fp for p in task.outputs if (fp := self._refreshed(p)) is not None}
        record = self.state.record(name)
        duration = record.duration if record else 0.0
        self._keys.pop(name, None)
        traced = self._traced.pop(name)
        self._record_success(task, self._inputs.pop(name), outputs, duration, traced)
        self.counts[ev.RESTORED] += 1
        reason = f"restored from cache ({verdict.reason})"
        done = ev.TaskDone(
            name,
            ev.RESTORED,
            reason,
            time.monotonic() - mono,
            self.options.cache.printed(entry),  # replayed: what it printed when it ran
            command=task.action.describe(),
            started=started,
        )
        self.observer.handle(done)
        self.scheduler.succeeded(name)
        return True

    def _refreshed(self, path: str) -> Fingerprint | None:
        """A file a task just wrote: stat and hash it afresh."""
        self.files.forget(path)
        return self.files.fingerprint(path)

    def _produced(self, path: str, c: Completion) -> Fingerprint | None:
        """An output a job just wrote: as hashed where it ran when the executor says
        (a Dask worker; here it would be read again over NFS, through a stale
        attribute cache), else stat'ed and hashed here."""
        if c.fingerprints is None:  # (_hash_later stat'ed it afresh: not again)
            return self.files.fingerprint(path)
        fp = c.fingerprints.get(path)
        self.files.learn(path, fp)
        return fp

    def _flush_refresh(self) -> None:
        """Re-record tasks found clean after a touch, so the next no-op skips hashing."""
        if not self._refresh:
            return
        with self.state.transaction():
            for task, v in self._refresh:
                record = self.state.record(task.name)
                duration = record.duration if record else 0.0
                self._record_success(task, v.inputs, v.outputs, duration, v.traced)
        self._refresh.clear()

    def _record_success(
        self,
        task: Task,
        inputs: Mapping[str, Fingerprint],
        outputs: Mapping[str, Fingerprint],
        duration: float,
        traced: Mapping[str, Fingerprint] | None = None,
    ) -> None:
        digest = task.action.digest
        stamp = record_stamp(digest, inputs, outputs, traced)
        self.state.save_success(task.name, digest, inputs, outputs, duration, stamp, traced)
        self._traced_kept = self._traced_kept or bool(traced)

    def _start(self, name: str, verdict: Verdict) -> None:
        task = self.graph.tasks[name]
        self._inputs_of(task)
        attempt = self._attempts[name] = self._attempts.get(name, 0) + 1
        job = self._job(name, attempt)
        started = time.time()
        try:
            self._prepare_outputs(task)  # every attempt: a retry must not see the last output
            slot = self.executor.submit(job)
        except OSError as exc:  # an output folder blocked by a file, an unwritable log...
            where = f": {exc.filename}" if exc.filename else ""
            failed = Completion(name, 1, b"", started, 0.0, 0, error=f"{exc.strerror}{where}")
            self._fail(task, failed, f"could not start: {exc.strerror}{where}")
            return
        self.observer.handle(
            ev.TaskStarted(
                name,
                task.action.describe(),
                verdict.reason,
                attempt,
                slot,
                started,
                job.cpus,
                job.mem,
            )
        )

    def _job(self, name: str, attempt: int = 1) -> Job:
        task, d = self.graph.tasks[name], self.scheduler.demand(name)
        return Job(
            name, task.action, task.inputs, task.outputs, task.log, task.timeout, attempt,
            d.cpus, d.mem, d.named,
        )  # fmt: skip

    def _prepare_outputs(self, task: Task) -> None:
        """Set the old outputs aside (so a task that skips one is caught, and a failure
        can put them back) and create the output folders."""
        if task.name not in self._vouched:
            self._vouched[task.name] = self.state.row(task.name) is not None
        # only what is there is moved: a rename takes its folder's lock, which the
        # running tasks creating their outputs there hold (0.3 ms each, measured)
        self.outputs.set_aside(task.outputs, lambda p: self.files.stat(p) is not None)
        for path in task.outputs:
            self.files.forget(path)
            self._make_parent(path)
        if task.log is not None:
            self._make_parent(task.log)

    def _make_parent(self, path: str) -> None:
        parent = os.path.dirname(path)
        if parent not in self._made_dirs:
            try:
                os.makedirs(parent, exist_ok=True)
            except FileExistsError:  # a file stands where a folder must be
                raise NotADirectoryError(
                    errno.ENOTDIR, os.strerror(errno.ENOTDIR), parent
                ) from None
            self._made_dirs.add(parent)

    def _finish(self, c: Completion) -> None:
        """A job ended: hash its outputs (big ones beside the loop), then conclude."""
        task = self.graph.tasks[c.name]
        failure = _failure_reason(task, c)
        self.state.save_usage(
            c.name, task.action.digest, c.duration, c.cpu_seconds, c.max_rss, failure is None
        )
        outputs: dict[str, Fingerprint] = {}
        if failure is None and c.fingerprints is None and self._hash_later(task, c):
            return
        if failure is None:
            for path in task.outputs:
                fp = self._produced(path, c)
                if fp is None:
                    failure = f"did not produce declared output {path}"
                    break
                outputs[path] = fp
        self._conclude(task, c, failure, outputs)

    def _hash_later(self, task: Task, c: Completion) -> bool:
        """Hand outputs adding up to gigabytes to the hashing thread (see hashing.py).

        Stats each output afresh (until a missing one), which _produced then uses."""
        size = 0
        for path in task.outputs:
            self.files.forget(path)
            st = self.files.stat(path)
            if st is None:
                return False  # (reported as not produced, on the spot)
            size += st[1]
        if size < BIG:
            return False
        self.hasher.submit(c, task.outputs)
        return True

    def _finish_hashed(self, c: Completion, found: Hashed) -> None:
        task = self.graph.tasks[c.name]
        outputs: dict[str, Fingerprint] = {}
        failure = None
        for path in task.outputs:
            hashed = found.get(path)
            if hashed is None:
                failure = f"did not produce declared output {path}"
                break
            outputs[path] = self.files.adopt(path, *hashed)
        self._conclude(task, c, failure, outputs)

    def _conclude(
        self, task: Task, c: Completion, failure: str | None, outputs: dict[str, Fingerprint]
    ) -> None:
        attempts = self._attempts.pop(task.name)
        if failure is None:
            self._succeed(task, c, outputs)
        elif attempts <= task.retries and not self._stopping:
            self.observer.handle(ev.TaskRetry(task.name, attempts + 1, failure))
            self._attempts[task.name] = attempts  # _start counts the next one
            self._start(task.name, Verdict(True, "retry", f"retry after: {failure}"))
        else:
            self._fail(task, c, failure)

    def _succeed(self, task: Task, c: Completion, outputs: dict[str, Fingerprint]) -> None:
        key = self._cache_key(task)
        self._keys.pop(task.name, None)
        inputs = self._inputs.pop(task.name)
        traced = self._traced.pop(task.name)
        if self.options.discovery is not None:
            found = self.options.discovery.found(task, c, self.files, traced)
            if found is not None:  # its key is what this run read, not what the last did
                traced = found
                key = key and cache_key(task.signature, task.outputs, inputs, traced)
        moved = _moved_while_running(inputs, self.graph.producer)
        if moved:
            self.observer.handle(
                ev.Notice(
                    f"{task.name}: {moved} changed while it ran; not cached, and it stays "
                    "stale for the next build"
                )
            )
            # (the memo keeps the stats from before it ran, so the snapshot saved at
            # the end cannot vouch for the edited input)
        elif key is not None and self._store(task, key, outputs, c.output):
            # a hard link into the cache moved the outputs' ctime: record the stat
            # they have now, or the next no-op would hash every output again
            outputs = {p: self.files.restat(fp, p) for p, fp in outputs.items()}
        # recorded with the inputs as they were before it ran: an input edited while
        # it ran leaves it stale (the next build sees the edit), and uncached
        self._record_success(task, inputs, outputs, c.duration, traced)
        self._to_drop.append(task)
        self.counts[ev.RAN] += 1
        self.observer.handle(self._done_event(task, c, ev.RAN, ""))
        self.scheduler.succeeded(task.name)

    def _store(self, task: Task, key: str, outputs: dict[str, Fingerprint], printed: bytes) -> bool:
        """Put the outputs in the run cache; False when that failed (a notice says why)."""
        assert self.options.cache is not None
        try:
            self.options.cache.store(key, outputs, printed)
        except OSError as exc:  # a full or read-only cache must not fail the build
            self.observer.handle(ev.Notice(f"{task.name}: could not store in cache: {exc}"))
            return False
        return True

    def _fail(self, task: Task, c: Completion, reason: str) -> None:
        self._inputs.pop(task.name, None)
        self._traced.pop(task.name, None)
        self._keys.pop(task.name, None)
        self.state.save_failure(task.name, task.action.digest, c.duration)
        for path in task.outputs:
            self.files.forget(path)
        self._vouched.pop(task.name, None)
        if self.outputs.put_back(task.outputs):
            reason += f"; partial outputs moved to {self.outputs.where(self.outputs.failed)}"
        self.counts[ev.FAILED] += 1
        self.observer.handle(self._done_event(task, c, ev.FAILED, reason))
        self._skip_downstream(task.name)
        if not self.options.keep_going:
            self._stopping = True

    def _done_event(self, task: Task, c: Completion, outcome: str, reason: str) -> ev.TaskDone:
        return ev.TaskDone(
            task.name,
            outcome,
            reason,
            c.duration,
            c.output,
            c.returncode,
            task.action.describe(),
            task.log,
            c.slot,
            c.started,
            c.full_log,
        )


def _moved_while_running(inputs: Mapping[str, Fingerprint], producer: dict[str, str]) -> str | None:
    """The first source input whose stat is not the one taken before its task ran
    (read from the disk again, not from the memo), or None. Inputs a task produces
    are not looked at: their producer finished before this task started and does not
    run again in this build (a summary of 100,000 of them costs no stat)."""
    for path, stat in stats_of(inputs, producer):
        if stat_of(path) != stat:
            return path
    return None


def _failure_reason(task: Task, c: Completion) -> str | None:
    """Why a completed job counts as failed, in words; None when it succeeded."""
    if c.error is not None:
        return c.error
    if c.returncode == 0:
        return None
    if c.returncode < 0:
        try:
            return f"killed by {signal.Signals(-c.returncode).name}"
        except ValueError:
            return f"killed by signal {-c.returncode}"
    if c.returncode == 127 and task.signature.startswith(ShellAction.PREFIX):
        return "command not found (exit 127)"
    if c.returncode == RETURNED_FALSE and isinstance(task.action, CallableAction):
        return "returned False"
    return f"exit code {c.returncode}"
