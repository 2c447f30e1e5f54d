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
