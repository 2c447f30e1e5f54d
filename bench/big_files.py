"""Big outputs: two tasks each writing SIZE (1 GiB) plus 200 tiny tasks, -j2, from
scratch: pytaskmake (and an earlier checkout, --before DIR) against GNU make, in one
run, alternating; and the content hashes' speed on this machine, in the same run.

    python bench/big_files.py [--size 1G] [--repeat 5] [--before DIR] [--out FILE]

Why: simulations write gigabytes, and every output is hashed (staleness, run cache).
Hashing in the build loop stalls dispatching; a slow hash makes the build wait on it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import blake3

REPO = Path(__file__).resolve().parent.parent
TINY = 200


def write_project(root: Path, size: str) -> None:
    """The same build as a Taskfile and as a Makefile."""
    tiny = [f"out/t{i}.txt" for i in range(TINY)]
    lines = ["from pytaskmake import task"]
    make = [f"all: out/big0.bin out/big1.bin {' '.join(tiny)}", ""]
    for k in range(2):
        cmd = f"mkdir -p out && head -c {size} /dev/zero > out/big{k}.bin"
        lines.append(f"task('big{k}', {cmd!r}, outputs=['out/big{k}.bin'])")
        make += [f"out/big{k}.bin:", f"\t{cmd}", ""]
    for i, path in enumerate(tiny):
        cmd = f"mkdir -p out && echo {i} > {path}"
        lines.append(f"task('t{i}', {cmd!r}, outputs=[{path!r}])")
        make += [f"{path}:", f"\t{cmd}", ""]
    (root / "Taskfile.py").write_text("\n".join(lines) + "\n")
    (root / "Makefile").write_text("\n".join(make) + "\n")


def timed(argv: list[str], root: Path, env: dict[str, str]) -> float:
    for leftover in ("out", ".pytaskmake"):
        shutil.rmtree(root / leftover, ignore_errors=True)
    subprocess.run(["sync"], check=True)
    start = time.monotonic()
    subprocess.run(argv, cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def hash_speeds(path: Path) -> dict[str, float]:
    """GB/s of each hash over the file (already in the page cache)."""
    size = path.stat().st_size
    speeds = {}
    for name, run in (
        ("hashlib blake2b", lambda: _stream(path, hashlib.blake2b(digest_size=16))),
        ("hashlib sha256", lambda: _stream(path, hashlib.sha256())),
        ("blake3, 1 thread", lambda: blake3.blake3().update_mmap(str(path))),
        ("blake3, threads", lambda: blake3.blake3(max_threads=-1).update_mmap(str(path))),
    ):
        start = time.monotonic()
        run()
        speeds[name] = size / (time.monotonic() - start) / 1e9
    return speeds


def hash_outputs(root: Path) -> float:
    """Seconds to hash both big outputs as pytaskmake does (threaded BLAKE3, mapped)."""
    start = time.monotonic()
    for k in range(2):
        blake3.blake3(max_threads=blake3.blake3.AUTO).update_mmap(str(root / "out" / f"big{k}.bin"))
    return time.monotonic() - start


def _stream(path: Path, digest: hashlib._Hash) -> None:  # type: ignore[name-defined]
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1G")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--before", type=Path, help="an earlier checkout to compare")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    tools = {"pytaskmake": REPO}
    if args.before:
        tools["pytaskmake-before"] = args.before.resolve()
    times: dict[str, list[float]] = {name: [] for name in [*tools, "make"]}
    with tempfile.TemporaryDirectory(prefix="pytaskmake-big-") as tmp:
        root = Path(tmp)
        write_project(root, args.size)
        for _ in range(args.repeat):
            for name, checkout in tools.items():
                env = {**os.environ, "PYTHONPATH": str(checkout), "NO_COLOR": "1"}
                env.pop("PYTHONDONTWRITEBYTECODE", None)  # (an installed package has its .pyc)
                argv = [sys.executable, "-m", "pytaskmake", "-j2"]
                times[name].append(timed(argv, root, env))
            times["make"].append(timed(["make", "-j2", "-s"], root, dict(os.environ)))
        speeds = hash_speeds(root / "out" / "big0.bin")
        hashing = hash_outputs(root)
    make = statistics.median(times["make"])
    rows = [
        "# Big outputs: 2 tasks writing " + args.size + f" each + {TINY} tiny tasks, -j2",
        "",
        f"Medians of {args.repeat} runs, alternating, from scratch each time "
        "(outputs and state removed).",
        "",
        "| tool | median s | min s | max s | / make |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, found in times.items():
        med = statistics.median(found)
        rows.append(
            f"| {name} | {med:.2f} | {min(found):.2f} | {max(found):.2f} | {med / make:.2f} |"
        )
    rows += ["", "Hash speed over one output, same run (GB/s):", ""]
    rows += [f"- {name}: {speed:.2f}" for name, speed in speeds.items()]
    floor = make + hashing
    rows += [
        "",
        f"A floor for any tool that hashes every byte it records: make's time plus hashing "
        f"the two outputs with BLAKE3 on every core, same run: {make:.2f} + {hashing:.2f} = "
        f"{floor:.2f} s, **{floor / make:.2f}x make**. While the two big tasks run, both "
        "cores are busy writing them (kernel time), and an output can be hashed only once "
        "its task has finished: on 2 cores the hashing adds to make's time, less what it "
        "overlaps of the tiny tasks.",
    ]
    text = "\n".join(rows) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
