"""What a no-op imports (issue 26, item 2): a small project's no-op costs about as much
as the modules it imports, so the ones only some builds need are imported by those
builds. Asserted on the modules a real no-op leaves in sys.modules, not on time."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import Project, build

# Run the CLI in-process after the Taskfile's project is built, then list the modules.
NOOP = """
import json, sys
sys.argv = ["pytaskmake", "-q", *sys.argv[1:]]
from pytaskmake import cli
try:
    cli.main()
except SystemExit:
    pass
sys.__stderr__.write(json.dumps(sorted(sys.modules)))
"""

# Imported by a no-op before: colour codes (colorama loads ctypes), OpenSSL for one
# BLAKE2b, a traceback formatter, and pickle for values no task here has.
NOT_NEEDED = ("colorama", "ctypes", "_hashlib", "hashlib", "traceback", "pickle")


def imported(project: Project, *args: str) -> tuple[set[str], str]:
    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-c", NOOP, *args],
        cwd=project.root,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    text, _, modules = done.stderr.rpartition("\n")
    return set(json.loads(modules.lstrip())), done.stdout + text


def sweep(project: Project) -> None:
    project.write("in.txt", "1\n")
    project.taskfile(
        """
        def total(inputs, outputs):
            with open(outputs[0], "w") as f:
                f.write(str(sum(len(open(p).read()) for p in inputs)))

        for i in range(3):
            task(f"sim{i}", f"cat in.txt > sim{i}.txt", inputs=["in.txt"],
                 outputs=[f"sim{i}.txt"])
        task("total", total, inputs=[f"sim{i}.txt" for i in range(3)], outputs=["total.txt"])
        """
    )
    build(project)


def test_a_no_op_imports_only_what_a_no_op_needs(project: Project) -> None:
    sweep(project)
    modules, printed = imported(project)
    assert "up to date 4" in printed
    assert not modules & set(NOT_NEEDED), sorted(modules & set(NOT_NEEDED))


def test_colour_imports_colorama_when_it_is_on(project: Project) -> None:
    sweep(project)
    modules, printed = imported(project, "--color=always")
    assert "colorama" in modules
    assert "\x1b[" in printed and "up to date 4" in printed
