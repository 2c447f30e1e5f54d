"""Memory of a build whose task prints a lot: max RSS of pytaskmake for a task printing
SIZE bytes, this checkout against an earlier one (--before DIR) in the same run.

    python bench/big_output.py --size 1G [--before DIR] [--out bench/results-output.md]

Each pytaskmake runs under GNU time (`/usr/bin/time -f %M`); the task is
`yes | head -c SIZE; exit 1` (it fails, so the failure block is printed too).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(checkout: Path, size: str) -> tuple[float, int, int]:
    """(seconds, max RSS KiB, exit code) of one build in a fresh project."""
    with tempfile.TemporaryDirectory(prefix="pytaskmake-output-") as root:
        Path(root, "Taskfile.py").write_text(
            "from pytaskmake import task\n"
            f"task('chatty', 'yes simulation output line | head -c {size}; exit 1')\n"
        )
        env = {**os.environ, "PYTHONPATH": str(checkout), "NO_COLOR": "1"}
        rss = Path(root, "rss")
        argv = ["/usr/bin/time", "-o", str(rss), "-f", "%M"]
        start = time.monotonic()
        done = subprocess.run(
            [*argv, sys.executable, "-m", "pytaskmake", "--no-cache"],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        seconds = time.monotonic() - start
        return seconds, int(rss.read_text().split()[-1]), done.returncode


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="1G", help="bytes the task prints (head -c syntax)")
    p.add_argument("--before", type=Path, help="a checkout of earlier code to compare")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results-output.md")
    args = p.parse_args()
    rows = [("pytaskmake", REPO)] + ([("pytaskmake-before", args.before)] if args.before else [])
    lines = [
        f"# A task printing {args.size}",
        "",
        "| code | wall s | max RSS MiB | exit |",
        "|---|---:|---:|---:|",
    ]
    for name, checkout in rows:
        seconds, kib, code = run(checkout, args.size)
        lines.append(f"| {name} | {seconds:.1f} | {kib / 1024:.0f} | {code} |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
