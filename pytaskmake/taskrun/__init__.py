"""taskrun's API over the pytaskmake engine: a taskrun script runs with its import
line changed to `from pytaskmake import taskrun`, and running it again resumes.

Both the API of the taskrun blog post (`taskrun.Task.Manager`, `task_new`,
`dependency_is`, `run_request_is`) and the core of taskrun 4 (TaskManager,
ProcessTask, FunctionTask, NopTask, add_dependency, run_tasks, failure modes,
resources, file conditions, observers) map onto the engine; what has no
equivalent ends the script with one line saying so. README: "Coming from taskrun".
"""

from __future__ import annotations

import sys

from ..taskfile import _caller_location
from .manager import (
    CounterResource,
    FailureMode,
    Manager,
    MemoryResource,
    Resource,
    ResourceManager,
    TaskManager,
    basic_task_manager,
    standard_task_manager,
)
from .observe import FileCleanupObserver, Observer, VerboseObserver
from .tasks import (
    Condition,
    FileHashCondition,
    FileHashDatabase,
    FileModificationCondition,
    FunctionTask,
    NopTask,
    ProcessTask,
    Task,
)

__all__ = [
    "Condition",
    "CounterResource",
    "FailureMode",
    "FileCleanupObserver",
    "FileHashCondition",
    "FileHashDatabase",
    "FileModificationCondition",
    "FunctionTask",
    "Manager",
    "MemoryResource",
    "NopTask",
    "Observer",
    "ProcessTask",
    "Resource",
    "ResourceManager",
    "Task",
    "TaskManager",
    "VerboseObserver",
    "basic_task_manager",
    "standard_task_manager",
]

# taskrun names with no pytaskmake equivalent, and why
NOT_MAPPED = {
    "ClusterTask": "tasks run on this machine (SGE/LSF/Slurm submission is not supported)",
    "CpuTimeResource": "per-task CPU time limits are not supported (use a task timeout)",
    "FunctionCondition": "a task runs when it is not done, not when a function says so",
}


def __getattr__(name: str) -> object:
    """A taskrun name with no equivalent ends the script with one line naming its line."""
    if name not in NOT_MAPPED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    where = _caller_location(sys._getframe(1))
    print(
        f"pytaskmake: error: {where + ': ' if where else ''}taskrun.{name} has no "
        f"pytaskmake equivalent: {NOT_MAPPED[name]}",
        file=sys.stderr,
    )
    raise SystemExit(2)
