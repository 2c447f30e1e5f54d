"""pytaskmake's own chores, run with pytaskmake itself: `pytaskmake lint`, `pytaskmake test`,
`pytaskmake bench` (and `pytaskmake bench-100k`). Each reruns only when the files it
reads changed."""

from pathlib import Path

from pytaskmake import task

sources = sorted(str(p) for p in Path("pytaskmake").rglob("*.py"))
tests = sorted(str(p) for p in Path("tests").rglob("*.py"))
bench = sorted(str(p) for p in Path("bench").glob("*.py"))

task(
    "lint",
    "ruff check pytaskmake tests bench examples examples/sweep/bin/* Taskfile.py"
    " && ruff format --check pytaskmake",
    inputs=sources + tests + bench,
    outputs=[],
    cache=False,
)
task(
    "test",
    "python -m pytest -q -p no:cacheprovider",
    inputs=sources + tests,
    log=".pytaskmake/logs/test.log",
    cache=False,
)
task(
    "bench",
    "python bench/run.py --sizes 1000,10000 --out bench/results.md",
    inputs=sources + bench,
    outputs=["bench/results.md"],
    log=".pytaskmake/logs/bench.log",
    cache=False,
)
task(  # about 20 minutes: each tool's full build of 200,001 tasks takes over 6
    "bench-100k",
    "python bench/run.py --sizes 100000 --scenarios noop,touch,edit --repeat 3"
    " --tools pytaskmake,ninja --cache-revert '' --out bench/results-100k.md",
    inputs=sources + bench,
    outputs=["bench/results-100k.md"],
    log=".pytaskmake/logs/bench-100k.log",
    cache=False,
)
task(
    "bench-output",
    "python bench/big_output.py --size 1G --out bench/results-output.md",
    inputs=sources + ["bench/big_output.py"],
    outputs=["bench/results-output.md"],
    cache=False,
)
task(  # 2 x 1 GiB outputs + 200 tiny tasks against make, and the hashes' speeds
    "bench-big-files",
    "python bench/big_files.py --repeat 3 --out bench/results-big-files.md",
    inputs=sources + ["bench/big_files.py"],
    outputs=["bench/results-big-files.md"],
    cache=False,
)
task(
    "bench-watch",
    "python bench/watch_latency.py --sizes 100,10000 --out bench/results-watch.md",
    inputs=sources + ["bench/watch_latency.py", "bench/workload.py"],
    outputs=["bench/results-watch.md"],
    cache=False,
)
task(  # Taskfile edits at 100,000 points against ninja: three 6-minute set-up builds first
    "bench-edits-100k",
    "python bench/run.py --sizes 100000 --scenarios noop,edit,add10,cmd,remove10 --repeat 3"
    " --tools pytaskmake,ninja,ninja-rsp --cache-revert '' --out bench/results-edits-100k.md",
    inputs=sources + bench,
    outputs=["bench/results-edits-100k.md"],
    log=".pytaskmake/logs/bench-edits-100k.log",
    cache=False,
)
task(  # about 35 minutes: a parameter every simulation uses, at 100,000 points (everything
    # reruns: time and peak memory against ninja; two set-up builds, a warm-up, one run each)
    "bench-param-100k",
    "python bench/run.py --sizes 100000 --scenarios param --repeat 1 --timeout 1800"
    " --tools pytaskmake,ninja --cache-revert '' --out bench/results-param-100k.md",
    inputs=sources + bench,
    outputs=["bench/results-param-100k.md"],
    log=".pytaskmake/logs/bench-param-100k.log",
    cache=False,
)
task(  # about 5 minutes: every input rewritten unchanged (ninja reruns all 20,001 tasks)
    "bench-regen",
    "python bench/run.py --sizes 10000 --scenarios noop,regen --repeat 3"
    " --tools pytaskmake,ninja --cache-revert '' --out bench/results-regen.md",
    inputs=sources + bench,
    outputs=["bench/results-regen.md"],
    log=".pytaskmake/logs/bench-regen.log",
    cache=False,
)
task(  # about 10 minutes: the same edits at 10,000 points, and a parameter edited
    "bench-edits-10k",
    "python bench/run.py --sizes 10000 --scenarios noop,edit,add10,cmd,param,remove10 --repeat 5"
    " --tools pytaskmake,ninja,ninja-rsp --cache-revert '' --out bench/results-edits-10k.md",
    inputs=sources + bench,
    outputs=["bench/results-edits-10k.md"],
    log=".pytaskmake/logs/bench-edits-10k.log",
    cache=False,
)
task(  # about 2 minutes: two DAGs of sleeps and a memory scenario, against make and ninja
    "bench-schedule",
    "python bench/schedule.py --repeat 3 --out bench/results-schedule.md",
    inputs=sources + ["bench/schedule.py"],
    outputs=["bench/results-schedule.md"],
    log=".pytaskmake/logs/bench-schedule.log",
    cache=False,
)
task(  # 2,001 trivial tasks on a 2-worker LocalCluster against the local executor
    "bench-dask",
    "python bench/dask_overhead.py --points 1000 --repeat 3 --out bench/results-dask.md",
    inputs=sources + ["bench/dask_overhead.py", "bench/workload.py", "bench/run.py"],
    outputs=["bench/results-dask.md"],
    log=".pytaskmake/logs/bench-dask.log",
    cache=False,
)
task(  # about 10 s: the example sweep's no-op against `python -c pass`, alternating
    "bench-startup",
    "python bench/startup.py --out bench/results-startup.md",
    inputs=sources + ["bench/startup.py"],
    outputs=["bench/results-startup.md"],
    log=".pytaskmake/logs/bench-startup.log",
    cache=False,
)
