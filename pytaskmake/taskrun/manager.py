"""taskrun's managers: TaskManager (taskrun 4), the post's Task.Manager, failure modes
and resources, over the pytaskmake engine.

A manager collects the tasks a script declares and, when asked to run, hands them to
run.py, which builds them with the engine. Its state lives in .pytaskmake/ beside the
script, as a Taskfile's does, so running the script again resumes.
"""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..engine import BuildResult
from ..errors import TaskfileError
from ..taskfile import _split_where
from .observe import FileCleanupObserver, Observer, VerboseObserver
from .tasks import ProcessTask, Task

_PACKAGE = os.path.dirname(os.path.dirname(__file__))


@enum.unique
class FailureMode(enum.Enum):
    """What a failure does to the rest of the run (taskrun's four modes)."""

    AGGRESSIVE_FAIL = 1  # stop the running tasks, start no other
    PASSIVE_FAIL = 2  # let the running tasks finish, start no other
    ACTIVE_CONTINUE = 3  # run everything that does not need the failed task (our default)
    BLIND_CONTINUE = 4  # taskrun runs even what needs it; here: as ACTIVE_CONTINUE

    @staticmethod
    def create(value: FailureMode | int | str) -> FailureMode:
        """A mode from itself, its number or its name in any case ('passive_fail')."""
        if isinstance(value, FailureMode):
            return value
        if isinstance(value, int):
            return FailureMode(value)
        if isinstance(value, str):
            try:
                return FailureMode[value.upper()]
            except KeyError:
                raise ValueError(f"invalid FailureMode str {value}") from None
        raise TypeError(f"invalid input type to FailureMode.create(): {type(value)}")


class Resource:
    """taskrun.Resource: a named quantity each task uses `default` of unless it says."""

    def __init__(self, name: str, default: float) -> None:
        self.name, self.default = name, default


class CounterResource(Resource):
    """`total` units shared by the running tasks. The engine runs at most N tasks at
    once, so a manager's N is the most that fit when each takes the largest amount any
    task asks for: the machine is never oversubscribed (a mix of sizes may run fewer
    tasks at once than taskrun would)."""

    def __init__(self, name: str, default: float, total: float) -> None:
        super().__init__(name, default)
        self.total = total


class MemoryResource(CounterResource):
    """Memory in GiB, counted as CounterResource (taskrun also sets `ulimit -v` on each
    process; pytaskmake does not)."""

    @staticmethod
    def current_available_memory_gib() -> float:
        """Available memory (Linux: MemAvailable), else the physical memory."""
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) / (1024 * 1024)
        except OSError:
            pass
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / (1 << 30)


class ResourceManager:
    """The resources tasks share; here they decide how many tasks run at once."""

    def __init__(self, *resources: Resource) -> None:
        self.resources = resources

    def jobs(self, tasks: Sequence[Task]) -> int:
        """How many tasks may run at once without any resource running out."""
        jobs = max(1, len(tasks))
        for resource in self.resources:
            if not isinstance(resource, CounterResource):
                raise TaskfileError(f"{type(resource).__name__} has no pytaskmake equivalent")
            for task in tasks:
                uses = task.resources.get(resource.name, resource.default)
                if uses - resource.total > resource.total / 1e6:
                    raise TaskfileError(
                        f"task {task.name!r} uses {uses} units of resource {resource.name!r} "
                        f"but there is only {resource.total} units total",
                        *_split_where(task.where),
                    )
            largest = max(
                (t.resources.get(resource.name, resource.default) for t in tasks), default=0
            )
            if largest > 0:
                jobs = min(jobs, max(1, int(resource.total / largest + 1e-9)))
        return jobs


class TaskManager:
    """taskrun.TaskManager: holds a script's tasks; run_tasks() builds them with the engine.

    Unlike taskrun, the default failure mode is ACTIVE_CONTINUE (a failure stops only
    what needs the failed task), and a second run skips what succeeded before.
    `root` (pytaskmake's own): the folder tasks run in and whose .pytaskmake/ keeps
    their state; default: the folder of the script that made the manager.
    """

    def __init__(
        self,
        resource_manager: ResourceManager | None = None,
        observers: Iterable[Observer] | None = None,
        failure_mode: FailureMode | int | str = FailureMode.ACTIVE_CONTINUE,
        priority_levels: int = 16,
        *,
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        self.resource_manager = resource_manager
        self.observers = list(observers or [])
        self.failure_mode = FailureMode.create(failure_mode)
        self.priority_levels = priority_levels
        self.tasks: list[Task] = []
        self.root = Path(root).resolve() if root is not None else _script_folder()
        self.result: BuildResult | None = None  # how the last run ended

    def add_observer(self, observer: Observer) -> None:
        self.observers.append(observer)

    def add_task(self, task: Task) -> None:
        """Called by each task's constructor."""
        self.tasks.append(task)
        for observer in self.observers:
            observer.task_added(task)

    def get_task(self, name: str) -> Task | None:
        return next((t for t in self.tasks if t.name == name), None)

    def randomize(self) -> None:
        """taskrun shuffles the order ready tasks start in; here they start in
        declaration order, so this does nothing."""

    def run_tasks(self) -> bool:
        """Run every task not done before; True when all are done. A mistake in the
        declarations ends the script with a one-line message (exit status 2)."""
        from .run import run

        return run(self).exit_code == 0

    # --- what run.py asks ------------------------------------------------------------

    def jobs(self) -> int | None:
        """Tasks at once: what the resources allow; without a resource manager taskrun
        limits nothing, and neither do we (one slot per task)."""
        if self.resource_manager is None:
            return max(1, len(self.tasks))
        return self.resource_manager.jobs(self.tasks)

    def reporters(self) -> list[Any]:
        return [r for o in self.observers if isinstance(o, VerboseObserver) for r in o.reporters()]

    def callbacks(self) -> list[Observer]:
        """The script's own observers (the reporters stand for the VerboseObservers)."""
        skip = (VerboseObserver, FileCleanupObserver)
        return [o for o in self.observers if not isinstance(o, skip)]

    def list_all_skipped(self) -> bool:
        return any(isinstance(o, VerboseObserver) and o.show_descriptions for o in self.observers)

    def dry_run(self) -> bool:
        return False


class Manager(TaskManager):
    """The post's `taskrun.Task.Manager(numProcs, showCommands, runTasks, showProgress)`.

    numProcs: tasks at once (None: the number of CPUs); showCommands: print each
    command as it starts (and name every task skipped as done); runTasks=False: say
    what would run, run nothing; showProgress: the status line, on a terminal.
    """

    def __init__(
        self,
        numProcs: int | None = None,  # noqa: N803 - the post's names
        showCommands: bool = False,  # noqa: N803
        runTasks: bool = True,  # noqa: N803
        showProgress: bool = False,  # noqa: N803
        failureMode: FailureMode | int | str = FailureMode.ACTIVE_CONTINUE,  # noqa: N803
        *,
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(failure_mode=failureMode, root=root)
        self.num_procs, self.show_commands = numProcs, showCommands
        self.run_tasks_too, self.show_progress = runTasks, showProgress

    def task_new(self, name: str, command: str, out_file: str | None = None) -> ProcessTask:
        """A task running `command`, its stdout and stderr into `out_file` if given."""
        task = ProcessTask(self, name, command)
        task.stdout_file = out_file
        return task

    def run_request_is(self) -> bool:
        """Run (or, with runTasks=False, list) what is not done; on a failure the script
        ends here with a non-zero exit status, as a build would."""
        from .run import run

        code = run(self).exit_code
        if code:
            raise SystemExit(code)
        return True

    def jobs(self) -> int | None:
        return self.num_procs

    def reporters(self) -> list[Any]:
        from ..report import ConsoleReporter, use_colour

        out = sys.stdout
        line = self.show_progress and out.isatty()
        return [ConsoleReporter(out, use_colour("auto", out), int(self.show_commands), line)]

    def list_all_skipped(self) -> bool:
        return self.show_commands

    def dry_run(self) -> bool:
        return not self.run_tasks_too


Task.Manager = Manager


def basic_task_manager(
    parallelism: int = 1,
    verbosity: int = 1,
    cleanup_files: bool = True,
    failure_mode: FailureMode | int | str = FailureMode.ACTIVE_CONTINUE,
) -> TaskManager:
    """taskrun's N-way manager: `parallelism` slots (<= 0: the number of CPUs)."""
    slots = parallelism if parallelism > 0 else (os.cpu_count() or 1)
    resources = ResourceManager(CounterResource("slots", 1, slots))
    return TaskManager(resources, _observers(verbosity, None), failure_mode)


def standard_task_manager(
    track_cpus: bool = True,
    max_cpus: int = -1,
    default_cpus: float = 999999999,
    track_memory: bool = True,
    max_memory: float = -1,
    default_memory: float = 999999999,
    verbosity: int = 1,
    log_file: str | None = None,
    cleanup_files: bool = True,
    failure_mode: FailureMode | int | str = FailureMode.ACTIVE_CONTINUE,
) -> TaskManager:
    """taskrun's manager of 'cpus' and 'mem' (GiB) resources (see CounterResource)."""
    resources: list[Resource] = []
    if track_cpus:
        cpus = max_cpus if max_cpus > 0 else (os.cpu_count() or 1)
        resources.append(CounterResource("cpus", default_cpus, cpus))
    if track_memory:
        memory = max_memory if max_memory > 0 else MemoryResource.current_available_memory_gib()
        resources.append(MemoryResource("mem", default_memory, memory))
    log = open(log_file, "w") if log_file else None  # noqa: SIM115 - the run's whole length
    return TaskManager(ResourceManager(*resources), _observers(verbosity, log), failure_mode)


def _observers(verbosity: int, log: Any) -> list[Observer]:
    if verbosity <= 0:
        return []
    return [VerboseObserver(log=log, show_descriptions=verbosity > 1)]


def _script_folder() -> Path:
    """The folder of the script that called into this package (the working directory
    for code typed at a prompt)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back  # type: ignore[assignment]
    filename = frame.f_code.co_filename if frame is not None else ""
    return Path(filename).resolve().parent if os.path.isfile(filename) else Path.cwd()
