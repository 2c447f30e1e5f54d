"""The run cache: restore instead of rerun, integrity, sharing, pruning (real files, real CLI)."""

from __future__ import annotations

import os
import time
from array import array
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, build, runs

from pytaskmake.cache import _FOLD_AT, RunCache, _index_lock, _KeySet, cache_key, parse_size
from pytaskmake.fingerprint import hash_file
from pytaskmake.report import format_bytes

SWEEP = """
for i in range(3):
    task(f"sim{i}",
         f"echo sim{i} >> runs.log; cat cfg.txt > out/sim{i}.dat; echo {i} >> out/sim{i}.dat",
         inputs=["cfg.txt"], outputs=[f"out/sim{i}.dat"])
    task(f"parse{i}", f"echo parse{i} >> runs.log; wc -c < out/sim{i}.dat > out/parse{i}.csv",
         inputs=[f"out/sim{i}.dat"], outputs=[f"out/parse{i}.csv"])
"""


def snapshot(project: Project) -> dict[str, bytes]:
    return {
        str(p.relative_to(project.root)): p.read_bytes()
        for p in sorted((project.root / "out").rglob("*"))
    }


def test_revert_restores_without_running(project: Project) -> None:
    project.taskfile(SWEEP)
    project.write("cfg.txt", "latency-model=1\n")
    assert project.run().returncode == 0
    first = snapshot(project)
    assert sorted(runs(project)) == sorted(
        [f"sim{i}" for i in range(3)] + [f"parse{i}" for i in range(3)]
    )
    project.write("cfg.txt", "latency-model=2\n")
    assert project.run().returncode == 0
    assert len(runs(project)) == 6
    project.write("cfg.txt", "latency-model=1\n")
    result = project.run()
    assert result.returncode == 0, result.stderr
    assert runs(project) == []
    assert snapshot(project) == first
    assert "restored 6" in result.stdout
    assert "[1/6] restored sim0" in result.stdout


def test_explain_shows_what_would_be_restored(project: Project) -> None:
    project.taskfile(SWEEP)
    project.write("cfg.txt", "a\n")
    project.run()
    project.write("cfg.txt", "b\n")
    project.run()
    project.write("cfg.txt", "a\n")
    result = project.run("--explain")
    assert "input cfg.txt changed" in result.stdout


def test_no_cache_flag_runs_again(project: Project) -> None:
    project.taskfile(SWEEP)
    project.write("cfg.txt", "a\n")
    project.run()
    project.write("cfg.txt", "b\n")
    project.run()
    runs(project)
    project.write("cfg.txt", "a\n")
    assert project.run("--no-cache").returncode == 0
    assert len(runs(project)) == 6


def test_task_with_cache_false_always_runs_when_stale(project: Project) -> None:
    project.taskfile("""
        task("cheap", "echo cheap >> runs.log; cat cfg.txt > out.txt", inputs=["cfg.txt"],
             outputs=["out.txt"], cache=False)
        task("kept", "echo kept >> runs.log; cat cfg.txt > kept.txt", inputs=["cfg.txt"],
             outputs=["kept.txt"])
    """)
    for text in ("a\n", "b\n"):
        project.write("cfg.txt", text)
        project.run()
    runs(project)
    project.write("cfg.txt", "a\n")
    assert project.run().returncode == 0
    assert runs(project) == ["cheap"]
    assert project.read("out.txt") == "a\n" and project.read("kept.txt") == "a\n"


def test_editing_a_restored_output_does_not_alter_the_cache(project: Project) -> None:
    project.taskfile(SWEEP)
    for text in ("a\n", "b\n", "a\n"):
        project.write("cfg.txt", text)
        project.run()
    original = project.read("out/sim0.dat")
    with open(project.root / "out/sim0.dat", "a") as f:  # edit in place
        f.write("tampered\n")
    runs(project)
    # the edit makes sim0 stale; its key is cached and the blob must still be intact
    result = project.run()
    assert result.returncode == 0
    assert "sim0" not in runs(project)
    assert project.read("out/sim0.dat") == original
    assert "corrupt" not in result.stdout + result.stderr


def test_corrupted_blob_is_detected_and_the_task_runs(project: Project) -> None:
    project.taskfile(SWEEP)
    for text in ("a\n", "b\n"):
        project.write("cfg.txt", text)
        project.run()
    runs(project)
    blobs = list((project.root / ".pytaskmake/cache/blobs").rglob("*"))
    for blob in (b for b in blobs if b.is_file()):
        if blob.read_bytes().startswith(b"a\n"):  # the sims' outputs of generation "a"
            blob.write_bytes(b"garbage")
    project.write("cfg.txt", "a\n")
    result = project.run()
    assert result.returncode == 0
    assert "corrupt" in result.stdout
    assert sorted(runs(project)) == ["sim0", "sim1", "sim2"]  # parse outputs: same bytes
    assert project.read("out/sim0.dat") == "a\n0\n"


def test_two_builds_share_one_cache_directory_at_once(tmp_path: Path) -> None:
    shared = tmp_path / "shared-cache"
    projects = [Project(tmp_path / name) for name in ("one", "two")]
    big = (
        "for i in range(30):\n"
        "    task(f't{i}', f'sleep 0.01; echo {i} > out/{i}.txt; cat cfg.txt >> out/{i}.txt',\n"
        "         inputs=['cfg.txt'], outputs=[f'out/{i}.txt'])\n"
    )
    for p in projects:
        p.taskfile(big)
        p.write("cfg.txt", "same\n")
    procs = [p.popen("-j2", "--cache-dir", str(shared)) for p in projects]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    # a third checkout restores everything from what the two stored concurrently
    third = Project(tmp_path / "three")
    third.taskfile(big)
    third.write("cfg.txt", "same\n")
    result = third.run("--cache-dir", str(shared))
    assert result.returncode == 0
    assert "restored 30" in result.stdout
    assert third.read("out/7.txt") == "7\nsame\n"


def test_cache_dir_from_environment(project: Project, tmp_path: Path) -> None:
    project.taskfile(SWEEP)
    project.write("cfg.txt", "a\n")
    where = tmp_path / "env-cache"
    assert project.run(PYTASKMAKE_CACHE_DIR=str(where)).returncode == 0
    assert any(where.glob("index/*.log")) and any(where.glob("blobs/*"))
    assert not (project.root / ".pytaskmake/cache").exists()


def test_cache_command_shows_and_prunes(project: Project) -> None:
    project.taskfile("""
        task("big", "head -c 100000 /dev/zero | tr '\\\\0' x > big.txt; cat cfg.txt >> big.txt",
             inputs=["cfg.txt"], outputs=["big.txt"])
    """)
    for text in ("1\n", "2\n", "3\n"):
        project.write("cfg.txt", text)
        assert project.run().returncode == 0
    shown = project.run("cache")
    assert "3 entries" in shown.stdout
    result = project.run("cache", "--prune", "150k")
    assert result.returncode == 0, result.stderr
    assert "pruned 1 entries" in result.stdout  # 2 cache-only blobs of ~98 KiB; one must go
    # the most recent cache-only generation ("2") survives; the oldest ("1") is gone
    project.write("cfg.txt", "2\n")
    assert "restored 1" in project.run().stdout
    project.write("cfg.txt", "1\n")
    assert "ran 1" in project.run().stdout
    bad = project.run("cache", "--prune", "lots")
    assert bad.returncode == 2 and "not a size" in bad.stderr


def test_prune_keeps_most_recently_used_entries(tmp_path: Path) -> None:
    cache = RunCache(tmp_path / "c")
    keys = []
    for i in range(5):
        out = tmp_path / f"o{i}.txt"
        out.write_bytes(bytes([65 + i]) * 1000)
        key = cache_key(f"sh:{i}", (str(out),), {})
        cache.store(key, {str(out): ((0, 1000, 0, 0, 0o100644), hash_file(str(out)))})
        out.unlink()  # only the cache holds the blob now
        keys.append(key)
        time.sleep(0.01)
    cache.close()
    later = RunCache(tmp_path / "c")  # another build: sees the journal, uses entry 0
    assert later.lookup(keys[0]) is not None
    time.sleep(0.01)
    assert later.stats().entries == 5
    removed, freed = later.prune(2500)
    assert (removed, freed) == (3, 3000)
    fresh = RunCache(tmp_path / "c")  # the compacted journal, as a third build reads it
    assert [fresh.lookup(k) is not None for k in keys] == [True, False, False, False, True]
    assert len(list((tmp_path / "c/index").glob("*.log"))) <= 2


def test_torn_journal_line_is_ignored(tmp_path: Path) -> None:
    cache = RunCache(tmp_path / "c")
    out = tmp_path / "o.txt"
    out.write_text("x")
    key = cache_key("sh:x", (str(out),), {})
    cache.store(key, {str(out): ((0, 1, 0, 0, 0o100644), hash_file(str(out)))})
    cache.close()
    with open(next((tmp_path / "c/index").glob("*.log")), "a") as journal:
        journal.write('["put", "half-written')  # a writer killed mid-line
    assert RunCache(tmp_path / "c").lookup(key) == {str(out): hash_file(str(out))}


def test_parse_size() -> None:
    assert parse_size("10G") == 10 << 30
    assert parse_size("1.5k") == 1536
    assert parse_size("500MiB") == 500 << 20
    assert parse_size("1024") == 1024


@pytest.mark.parametrize("keys_files", [True, False], ids=["with-keys-files", "journals-only"])
def test_lookups_searching_the_journals_agree_with_the_loaded_index(
    tmp_path: Path, keys_files: bool
) -> None:
    """The first lookups of a build search the journals (when their .keys files are
    missing; else the keys present are read from those at once); then the keys
    present are read, and misses answered from them, hits searched; past that the
    whole index is loaded. Every way gives the same answers, drops included."""
    out = tmp_path / "o.txt"
    out.write_text("x")
    fp = ((0, 1, 0, 0, 0o100644), hash_file(str(out)))
    keys = [cache_key(f"sh:{i}", (str(out),), {}) for i in range(200)]
    for writer in range(3):  # three builds, three journals
        cache = RunCache(tmp_path / "c")
        for key in keys[writer::3]:
            cache.store(key, {str(out): fp})
            time.sleep(0.001)
        cache.close()
    dropping = RunCache(tmp_path / "c")
    for key in [*keys[:4], keys[100], keys[101]]:
        dropping.drop(key)
    time.sleep(0.01)
    dropping.store(keys[0], {str(out): fp})  # stored again after its drop: present
    dropping.store(keys[100], {str(out): fp})
    dropping.close()
    with open(next((tmp_path / "c/index").glob("*.log")), "a") as journal:
        journal.write(f'["put", "{keys[5]}", {{"half')  # a writer killed mid-line
    if not keys_files:
        for written in (tmp_path / "c/index").glob("*.keys"):
            written.unlink()
    unknown = [cache_key("sh:none", (), {}), "0" * 40]
    asked = keys[:64] + unknown + keys[64:] + unknown  # searched, then by key, then loaded
    searching = RunCache(tmp_path / "c")
    loaded = RunCache(tmp_path / "c")
    loaded.stats()  # loads the whole index
    found = [searching.lookup(k) for k in asked]
    assert searching._keys is not None and searching._entries is not None  # all three ways
    assert found == [loaded.lookup(k) for k in asked]
    present = {k: f is not None for k, f in zip(asked, found, strict=True)}
    assert [present[k] for k in keys[:6]] == [True, False, False, False, True, True]
    assert present[keys[100]] and not present[keys[101]] and not present[unknown[0]]
    assert all(f == {str(out): fp[1]} for k, f in zip(asked, found, strict=True) if present[k])
    assert keys[-1] in searching._keys and unknown[0] not in searching._keys


def test_the_key_set_never_misses_a_key_it_holds() -> None:
    """Keys held as 64-bit prefixes: a key held is always found; a key sharing a held
    key's prefix reads as present (the lookup then searches for it, a miss); any
    other key is absent; a key not in hex is held whole. Past 65,536 keys they are
    sorted a run at a time and merged: every one is still found."""
    held = [cache_key(f"sh:{i}", ("o",), {}) for i in range(140_000)]
    keys = _KeySet([*held, "not-hex-key", "short"])
    assert all(k in keys for k in held)
    assert "not-hex-key" in keys and "short" in keys and "other-odd-key" not in keys
    assert all(cache_key(f"sh:x{i}", ("o",), {}) not in keys for i in range(1000))
    assert held[7][:16] + "f" * 24 in keys  # the same first 64 bits: maybe present
    assert "f" * 40 not in _KeySet([]) and "0" * 40 not in keys
    # the same keys as sorted runs (.keys files: a large one, many small ones) beside
    # loose keys: all found, before and after the runs are merged (past 256 lookups)
    runs = [array("Q", sorted(int(k[:16], 16) for k in held[:70_000]))]
    runs += [
        array("Q", sorted(int(k[:16], 16) for k in held[i : i + 21]))
        for i in range(70_000, 71_050, 21)
    ]
    from_runs = _KeySet(held[71_050:], runs)
    assert all(k in from_runs for k in held[::-1])
    assert not any(cache_key(f"sh:x{i}", ("o",), {}) in from_runs for i in range(1000))


def test_forcing_means_running_and_dry_run_says_what_would_be_restored(project: Project) -> None:
    """-B and a build after --clean never restore from the run cache; -n tells a
    restore apart from a run."""
    project.write("in.txt", "1\n")
    project.taskfile(
        """
        task("sim", "echo sim >> runs.log; cat in.txt > out.txt", inputs=["in.txt"],
             outputs=["out.txt"])
        """
    )
    assert project.run().returncode == 0 and runs(project) == ["sim"]
    project.write("in.txt", "2\n")
    assert project.run().returncode == 0 and runs(project) == ["sim"]
    project.write("in.txt", "1\n")  # back to an input the cache has seen
    dry = project.run("-n")
    assert "would restore sim from cache: input in.txt changed" in dry.stdout
    assert "(1 restored from the run cache)" in dry.stdout
    assert not project.exists("runs.log")
    assert project.run("-B").returncode == 0 and runs(project) == ["sim"]  # -B runs
    assert project.run("--clean").returncode == 0
    dry = project.run("-n")
    assert "would run sim: cleaned (--clean)" in dry.stdout
    assert project.run().returncode == 0 and runs(project) == ["sim"]  # not restored


def test_an_input_edited_while_its_task_runs_is_neither_cached_nor_trusted(
    project: Project,
) -> None:
    project.write("in.txt", "1\n")
    project.taskfile(
        """
        task("sim", "echo sim >> runs.log; touch started; sleep 1; cat in.txt > out.txt",
             inputs=["in.txt"], outputs=["out.txt"])
        """
    )
    assert project.run().returncode == 0 and runs(project) == ["sim"]
    (project.root / "started").unlink()
    project.write("in.txt", "2\n")
    running = project.popen()
    deadline = time.monotonic() + 20
    while not project.exists("started") and time.monotonic() < deadline:
        time.sleep(0.02)
    project.write("in.txt", "3\n")  # while sim sleeps: it will read 3, having been keyed on 2
    out, _ = running.communicate(timeout=30)
    assert running.returncode == 0
    assert "sim: in.txt changed while it ran; not cached" in out
    assert runs(project) == ["sim"]
    assert project.run().returncode == 0 and runs(project) == ["sim"]  # stale: runs again
    assert project.read("out.txt") == "3\n"
    project.write("in.txt", "2\n")
    assert project.run().returncode == 0
    assert project.read("out.txt") == "2\n", "restored an output made from another input"


def test_an_input_of_a_fan_in_edited_while_it_runs_is_noticed(project: Project) -> None:
    """The same for a task of 8,200 inputs (its inputs sliced, their stats packed):
    the one edited while it ran is found among them."""
    for i in range(8200):
        project.write(f"in/{i}.txt", f"{i}\n")
    project.taskfile(
        """
        task("sum", "touch started; sleep 1; cat in/4100.txt > out.txt",
             inputs=[f"in/{i}.txt" for i in range(8200)], outputs=["out.txt"])
        """
    )
    running = project.popen()
    deadline = time.monotonic() + 30
    while not project.exists("started") and time.monotonic() < deadline:
        time.sleep(0.02)
    project.write("in/4100.txt", "edited\n")
    out, _ = running.communicate(timeout=60)
    assert running.returncode == 0, out
    assert "sum: in/4100.txt changed while it ran; not cached" in out


def test_a_restored_program_keeps_its_executable_bit(project: Project) -> None:
    """A linked program restored from the cache must still run (it came back 0644)."""
    project.write("src.txt", "1\n")
    project.taskfile(
        """
        task("link", "echo link >> runs.log; printf '#!/bin/sh\\\\necho hi\\\\n' > prog; "
             "chmod 755 prog", inputs=["src.txt"], outputs=["prog"])
        task("use", "./prog > used.txt", inputs=["prog"], outputs=["used.txt"], cache=False)
        """
    )
    assert project.run().returncode == 0 and runs(project) == ["link"]
    (project.root / "prog").unlink()
    result = project.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert runs(project) == [] and "restored link" in result.stdout
    assert (project.root / "prog").stat().st_mode & 0o777 == 0o755
    assert project.read("used.txt") == "hi\n"


def test_prune_to_zero_removes_every_blob_no_entry_needs(project: Project) -> None:
    project.taskfile(
        """
        for i in range(4):
            task(f"t{i}", f"echo {i} > o{i}.txt", outputs=[f"o{i}.txt"])
        """
    )
    assert project.run().returncode == 0
    result = project.run("cache", "--prune", "0")
    assert result.returncode == 0, result.stderr
    assert "0 entries, 0 blobs" in result.stdout  # hard links to outputs included
    assert all(project.exists(f"o{i}.txt") for i in range(4))  # the outputs stay


def test_the_cache_is_kept_under_its_limit_after_each_build(project: Project) -> None:
    project.taskfile(
        """
        task("big", "head -c 50000 /dev/zero | tr '\\\\0' x > big.txt; cat cfg.txt >> big.txt",
             inputs=["cfg.txt"], outputs=["big.txt"])
        """
    )
    for text in ("1\n", "2\n", "3\n", "4\n"):
        project.write("cfg.txt", text)
        result = project.run("--cache-limit", "120k")
        assert result.returncode == 0, result.stderr
    assert "least recently used" in result.stdout
    size = RunCache(project.root / ".pytaskmake" / "cache").stats().size
    assert size <= 120 * 1024
    project.write("cfg.txt", "3\n")  # the most recent earlier generation is still there
    assert "restored 1" in project.run("--cache-limit", "120k").stdout


def test_a_restored_task_replays_what_it_printed(project: Project) -> None:
    """Compiler warnings are not lost by a restore (Bazel replays them too)."""
    project.write("src.txt", "1\n")
    project.taskfile(
        """
        task("cc", "echo cc >> runs.log; echo 'warning: unused variable x'; cat src.txt > o",
             inputs=["src.txt"], outputs=["o"])
        """
    )
    first = build(project)
    assert "warning: unused variable x" in first.stdout and runs(project) == ["cc"]
    project.write("src.txt", "2\n")
    build(project)
    runs(project)
    project.write("src.txt", "1\n")  # back to the first input: restored, not run
    again = build(project)
    assert runs(project) == [] and "restored cc" in again.stdout
    assert "warning: unused variable x" in again.stdout
    assert "replaying what it printed" in again.stdout
    assert project.run("cache", "--prune", "0").returncode == 0  # its blob goes too
    assert not list((project.root / ".pytaskmake" / "cache" / "blobs").iterdir())


def _journal_keys(index: Path) -> dict[str, set[str]]:
    """Per journal, the keys its put lines name."""
    found: dict[str, set[str]] = {}
    for journal in index.glob("*.log"):
        lines = journal.read_text().splitlines()
        found[journal.stem] = {line.split('"')[3] for line in lines if line.startswith('["put"')}
    return found


def _keys_file(path: Path) -> tuple[int, list[int]]:
    """(journal bytes covered, sorted key prefixes) of a .keys file that holds no drops."""
    data = path.read_bytes()
    drops = int.from_bytes(data[16:24], "little") & ~(1 << 63)  # (the top bit: its writer's)
    assert data[:8] == b"ptmkeys2" and drops == 0
    prefixes = array("Q")
    prefixes.frombytes(data[24:])
    return int.from_bytes(data[8:16], "little"), list(prefixes)


def test_a_build_leaves_beside_its_journal_the_keys_it_put(project: Project) -> None:
    """Each build's journal gets a .keys file: the sorted first 64 bits of every key it
    put, and how many of its bytes that covers (the whole journal). A later build
    reads those instead of searching every journal for each key it looks up."""
    project.taskfile(SWEEP)
    project.write("cfg.txt", "latency-model=1\n")
    assert project.run().returncode == 0
    project.write("cfg.txt", "latency-model=2\n")
    assert project.run().returncode == 0
    index = project.root / ".pytaskmake/cache/index"
    put = _journal_keys(index)
    assert len(put) == 2 and all(len(keys) == 6 for keys in put.values())
    for stem, keys in put.items():
        covered, prefixes = _keys_file(index / f"{stem}.keys")
        assert covered == (index / f"{stem}.log").stat().st_size
        assert prefixes == sorted(int(k[:16], 16) for k in keys)
    project.write("cfg.txt", "latency-model=1\n")  # back: restored through the keys read
    assert project.run().returncode == 0 and len(runs(project)) == 12
    assert snapshot(project)["out/sim0.dat"] == b"latency-model=1\n0\n"


def test_keys_files_that_are_stale_or_damaged_hide_no_entry(tmp_path: Path) -> None:
    """A journal written past its .keys file (an older release's writer, say) has its
    later entries found; a damaged or foreign .keys file is ignored; a key its .keys
    file lists but a later journal dropped is a miss."""
    out = tmp_path / "o.txt"
    out.write_text("x")
    fp = ((0, 1, 0, 0, 0o100644), hash_file(str(out)))
    keys = [cache_key(f"sh:{i}", (str(out),), {}) for i in range(6)]
    for key in keys[:3]:
        cache = RunCache(tmp_path / "c")
        cache.store(key, {str(out): fp})
        cache.close()
        time.sleep(0.002)
    index = tmp_path / "c/index"
    journals = sorted(index.glob("*.log"), key=lambda j: j.stat().st_mtime)
    assert len(journals) == 3 and len(list(index.glob("*.keys"))) == 3
    with open(journals[0], "a") as journal:  # past what its .keys file covers
        journal.write(f'["put", "{keys[3]}", {{"{out}": "{fp[1]}"}}, {time.time()}]\n')
    journals[1].with_suffix(".keys").write_bytes(b"ptmkeys2\x07")  # truncated
    journals[2].with_suffix(".keys").write_bytes(b"something else entirely!")
    dropping = RunCache(tmp_path / "c")
    dropping.drop(keys[0])
    dropping.close()
    cache = RunCache(tmp_path / "c")
    found = [cache.lookup(k) is not None for k in keys]
    assert found == [False, True, True, True, False, False]
    assert cache._keys is not None  # answered from the keys present, not by searching


def test_a_journal_without_its_keys_gets_them_once_read_whole(tmp_path: Path) -> None:
    """A journal with no .keys file (a killed build's, or one written by an earlier
    release) gets one when a build reads its keys, covering its whole lines; a
    dry run (read-only) writes none."""
    out = tmp_path / "o.txt"
    out.write_text("x")
    fp = ((0, 1, 0, 0, 0o100644), hash_file(str(out)))
    keys = [cache_key(f"sh:{i}", (str(out),), {}) for i in range(600)]  # ~100 KB of lines
    cache = RunCache(tmp_path / "c")
    for key in keys:
        cache.store(key, {str(out): fp})
    cache.close()
    index = tmp_path / "c/index"
    (written,) = index.glob("*.keys")
    written.unlink()  # as if killed before writing it
    journal = written.with_suffix(".log")
    with open(journal, "a") as f:
        f.write(f'["put", "{keys[0]}", {{"half')  # and torn mid-line
    looking = RunCache(tmp_path / "c", read_only=True)
    assert looking.peek(keys[7]) == {str(out): fp[1]}
    assert looking.peek(cache_key("sh:none", (), {})) is None
    assert not written.exists()
    building = RunCache(tmp_path / "c")
    assert building.lookup(cache_key("sh:none", (), {})) is None
    covered, prefixes = _keys_file(written)
    assert covered == journal.read_bytes().rindex(b"\n") + 1
    assert prefixes == sorted(int(k[:16], 16) for k in keys)
    assert all(RunCache(tmp_path / "c").peek(k) is not None for k in keys[::50])


def test_a_hit_searches_only_the_large_journals_whose_keys_hold_it(tmp_path: Path) -> None:
    """A large journal (a full build's: 70,000 entries here) whose .keys file covers it
    whole and holds no drop is searched only for keys whose prefix it holds; small
    journals and uncovered tails always are. Every answer stays right: hits in it,
    hits elsewhere, a drop written later, a line appended past its .keys file."""
    out = tmp_path / "o.txt"
    out.write_text("x")
    fp = ((0, 1, 0, 0, 0o100644), hash_file(str(out)))
    large = [cache_key(f"sh:{i}", (str(out),), {}) for i in range(70_000)]
    small = [cache_key(f"sh:small{i}", (str(out),), {}) for i in range(3)]
    cache = RunCache(tmp_path / "c")
    for key in large:
        cache.store(key, {str(out): fp})
    cache.close()
    (big,) = (tmp_path / "c/index").glob("*.log")
    time.sleep(0.01)
    later = RunCache(tmp_path / "c")
    for key in small:
        later.store(key, {str(out): fp})
    later.drop(large[5])
    later.close()
    looking = RunCache(tmp_path / "c")
    assert looking.lookup(large[7]) == {str(out): fp[1]}
    assert looking.lookup(large[5]) is None  # dropped in the small journal
    assert looking.lookup(small[0]) == {str(out): fp[1]}
    assert looking.lookup(cache_key("sh:none", (), {})) is None
    assert looking._keys is not None and looking._keys.elsewhere(small[0]) == {big.name}
    assert looking._keys.elsewhere(large[7]) == set()
    extra = cache_key("sh:extra", (str(out),), {})
    with open(big, "a") as journal:  # past its .keys file: no longer told whole
        journal.write(f'["put", "{extra}", {{"{out}": "{fp[1]}"}}, {time.time()}]\n')
    again = RunCache(tmp_path / "c")
    assert again.lookup(extra) == {str(out): fp[1]} and again.lookup(small[1]) is not None
    assert again._keys is not None and again._keys.elsewhere(small[1]) == set()


def test_a_last_line_whole_but_for_its_newline_is_still_an_entry(tmp_path: Path) -> None:
    """A writer killed between a line and its newline leaves a whole entry: found, as
    the journals were always read, and never counted as covered by a .keys file (its
    journal is read again past the last newline). A build that only restored still
    writes its .keys (its uses are then not parsed again)."""
    out = tmp_path / "o.txt"
    out.write_text("x")
    fp = ((0, 1, 0, 0, 0o100644), hash_file(str(out)))
    keys = [cache_key(f"sh:{i}", (str(out),), {}) for i in range(600)]
    cache = RunCache(tmp_path / "c")
    for key in keys[:-1]:
        cache.store(key, {str(out): fp})
    cache.close()
    (journal,) = (tmp_path / "c/index").glob("*.log")
    journal.with_suffix(".keys").unlink()
    with open(journal, "a") as f:
        f.write(f'["put", "{keys[-1]}", {{"{out}": "{fp[1]}"}}, {time.time()}]')  # no \n
    for _ in range(2):  # the second time from the .keys file the first wrote
        reading = RunCache(tmp_path / "c")
        assert reading.lookup(keys[-1]) == {str(out): fp[1]}
        assert reading.lookup(cache_key("sh:none", (), {})) is None
        reading.close()
    covered, _ = _keys_file(journal.with_suffix(".keys"))
    assert covered == journal.read_bytes().rindex(b"\n") + 1
    uses = [p for p in (tmp_path / "c/index").glob("*.log") if p != journal]
    assert len(uses) == 2 and all(p.with_suffix(".keys").exists() for p in uses)


def test_a_prune_keeps_the_journal_of_a_build_still_writing(tmp_path: Path) -> None:
    """A prune (another shell's `pytaskmake cache --prune`, or a build past the size
    limit) while a build runs kept the entries it read and deleted the running build's
    journal: what that build stored afterwards was lost, and going back ran it again.
    The journal stays; what the prune dropped stays dropped."""
    out = tmp_path / "o.txt"
    out.write_text("x")
    fp = ((0, 1, 0, 0, 0o100644), hash_file(str(out)))
    keys = [cache_key(f"sh:{i}", (str(out),), {}) for i in range(4)]
    running = RunCache(tmp_path / "c")  # this process: a build that has not finished
    running.store(keys[0], {str(out): fp})
    running.store(keys[1], {str(out): fp})
    assert RunCache(tmp_path / "c").prune(10 << 30) == (0, 0)
    running.store(keys[2], {str(out): fp})  # stored after the prune read the journals
    running.close()
    after = RunCache(tmp_path / "c")
    assert [after.lookup(k) is not None for k in keys] == [True, True, True, False]
    late = RunCache(tmp_path / "c")  # a build running across a prune to 0
    late.store(keys[0], {str(out): fp})  # (put again before the prune: dropped by it)
    RunCache(tmp_path / "c").prune(0)
    late.store(keys[3], {str(out): fp})
    late.close()
    found = RunCache(tmp_path / "c")
    assert [found.lookup(k) is not None for k in keys] == [False, False, False, True]
    # a blob linked by a running build after the prune read the entries is kept (the
    # build's entry naming it comes next); an older one no entry names is not
    young = tmp_path / "young.txt"
    young.write_text("young")
    digest = hash_file(str(young))
    os.link(young, tmp_path / "c/blobs" / digest)
    assert RunCache(tmp_path / "c").prune(10 << 30) == (0, 0)
    assert (tmp_path / "c/blobs" / digest).exists()


def test_a_prune_keeps_a_running_journal_another_build_indexed_and_stays_pruned(
    tmp_path: Path,
) -> None:
    """Two holes of the prune's keeping (found by a break-it session): a .keys file
    another build wrote for a running build's journal made it read as closed, and a
    second prune forgot the first one's drops, so pruned entries came back without
    their blobs ("missing or corrupt", then run)."""
    out = tmp_path / "o.txt"
    out.write_text("x")
    fp = ((0, 1, 0, 0, 0o100644), hash_file(str(out)))
    keys = [cache_key(f"sh:{i}", (str(out),), {}) for i in range(601)]
    running = RunCache(tmp_path / "c")
    for key in keys[:600]:  # ~100 KB of journal: a reader indexes it
        running.store(key, {str(out): fp})
    reader = RunCache(tmp_path / "c")
    assert reader.lookup(cache_key("sh:none", (), {})) is None
    assert list((tmp_path / "c/index").glob("*.keys"))  # written by the reader
    RunCache(tmp_path / "c").prune(10 << 30)
    running.store(keys[600], {str(out): fp})
    assert RunCache(tmp_path / "c").lookup(keys[600]) is not None
    RunCache(tmp_path / "c").prune(0)
    RunCache(tmp_path / "c").prune(0)
    assert RunCache(tmp_path / "c").stats().entries == 0
    running.close()
    assert RunCache(tmp_path / "c").stats().entries == 0


def test_a_folder_where_a_keys_file_goes_does_not_stop_a_prune(tmp_path: Path) -> None:
    """A damaged cache (a folder named like a journal's .keys) is pruned all the same,
    without a traceback."""
    out = tmp_path / "o.txt"
    out.write_text("x")
    cache = RunCache(tmp_path / "c")
    cache.store(
        cache_key("sh:x", (str(out),), {}),
        {str(out): ((0, 1, 0, 0, 0o100644), hash_file(str(out)))},
    )
    cache.close()
    (keys,) = (tmp_path / "c/index").glob("*.keys")
    keys.unlink()
    journal = keys.with_suffix(".log")
    journal.rename(journal.with_name("4194304999-0000.log"))  # a writer long gone
    journal.with_name("4194304999-0000.keys").mkdir()
    assert RunCache(tmp_path / "c").prune(0) == (1, 0)


def test_many_small_journals_are_folded_into_one_and_every_entry_stays(tmp_path: Path) -> None:
    """Each build leaves a journal: a project edited daily for months left hundreds,
    and every build that looks a key up read each one's .keys file. Past _FOLD_AT
    journals, a build closing its own folds the small closed ones into one, with its
    .keys file: every entry is still found, a drop still holds, a torn line (a
    killed writer's) stays no entry, and a journal still being written is left alone
    (what its build stores later is found)."""
    out = tmp_path / "o.txt"
    out.write_text("x")
    fp = ((0, 1, 0, 0, 0o100644), hash_file(str(out)))
    keys = [cache_key(f"sh:{i}", (str(out),), {}) for i in range(_FOLD_AT + 4)]
    dropped, torn, late, last, *built = keys
    running = RunCache(tmp_path / "c")  # a build that has not finished
    running.store(dropped, {str(out): fp})
    for i, key in enumerate(built[: _FOLD_AT - 2]):
        cache = RunCache(tmp_path / "c")
        cache.store(key, {str(out): fp})
        if i == 5:
            cache.drop(dropped)
        cache.close()
    index = tmp_path / "c/index"
    (index / "4194304999-dead.log").write_text(f'["put", "{torn}", {{"{out}": "ha')
    assert len(list(index.glob("*.log"))) == _FOLD_AT
    closing = RunCache(tmp_path / "c")
    closing.store(last, {str(out): fp})
    closing.close()
    logs = sorted(index.glob("*.log"), key=lambda j: not j.name.startswith("fold-"))
    assert len(logs) == 2 and logs[0].name.startswith("fold-")
    assert not (index / "4194304999-dead.log").exists()
    folded = logs[0]
    covered, prefixes = _keys_file_with_drops(folded.with_suffix(".keys"))
    assert covered == folded.stat().st_size
    assert prefixes == sorted(int(k[:16], 16) for k in [*built[: _FOLD_AT - 2], last])
    running.store(late, {str(out): fp})
    running.close()
    fresh = RunCache(tmp_path / "c")
    found = {k for k in keys if fresh.lookup(k) is not None}
    assert found == {*built[: _FOLD_AT - 2], last, late}
    assert fresh.stats().entries == _FOLD_AT


def test_no_fold_while_a_prune_holds_the_index(tmp_path: Path) -> None:
    """A prune holds the cache's lock while it rewrites the index: a fold then could
    bring back as live what the prune dropped. A build closing meanwhile leaves its
    journals as they are."""
    out = tmp_path / "o.txt"
    out.write_text("x")
    fp = ((0, 1, 0, 0, 0o100644), hash_file(str(out)))
    for i in range(_FOLD_AT):
        cache = RunCache(tmp_path / "c")
        cache.store(cache_key(f"sh:{i}", (str(out),), {}), {str(out): fp})
        if i < _FOLD_AT - 1:
            cache.close()
    with _index_lock(tmp_path / "c", wait=True) as held:
        assert held
        cache.close()
    assert len(list((tmp_path / "c/index").glob("*.log"))) == _FOLD_AT
    closing = RunCache(tmp_path / "c")
    closing.store(cache_key("sh:last", (str(out),), {}), {str(out): fp})
    closing.close()
    assert len(list((tmp_path / "c/index").glob("*.log"))) == 1


def _keys_file_with_drops(path: Path) -> tuple[int, list[int]]:
    data = path.read_bytes()
    assert data[:8] == b"ptmkeys2" and int.from_bytes(data[16:24], "little") >> 63
    prefixes = array("Q")
    prefixes.frombytes(data[24:])
    return int.from_bytes(data[8:16], "little"), list(prefixes)


def _entry(tmp_path: Path) -> tuple[Path, tuple[tuple[int, int, int, int, int], str]]:
    out = tmp_path / "o.txt"
    out.write_text("x")
    return out, ((0, 1, 0, 0, 0o100644), hash_file(str(out)))


def test_a_fold_while_another_build_reads_the_index_hides_no_entry(tmp_path: Path) -> None:
    """A build lists the journals, then reads them: a fold in another process between
    the two removed journals it had listed, and their keys read as absent for the
    whole build (tasks ran again instead of being restored). It lists them again."""
    out, fp = _entry(tmp_path)
    keys = [cache_key(f"sh:{i}", (str(out),), {}) for i in range(_FOLD_AT + 2)]
    index = RunCache(tmp_path / "c").index
    with _index_lock(tmp_path / "c", wait=True):  # (no fold while they are written)
        for key in keys:
            cache = RunCache(tmp_path / "c")
            cache.store(key, {str(out): fp})
            cache.close()
    assert len(list(index.glob("*.log"))) == len(keys)
    for i, keys_file in enumerate(sorted(index.glob("*.keys"))):  # killed builds' journals
        keys_file.with_suffix(".log").rename(index / f"4194304999-{i:04}.log")
        keys_file.unlink()
    reader = RunCache(tmp_path / "c", read_only=True)
    parse = reader._parsed_keys
    folds: list[str] = []

    def a_fold_meanwhile(*args: Any) -> Any:
        if not folds:  # another build closes, and folds, once this one has listed
            closing = RunCache(tmp_path / "c")
            closing.store(cache_key("sh:other", (str(out),), {}), {str(out): fp})
            closing.close()
            folds.extend(j.name for j in index.glob("fold-*.log"))
        return parse(*args)

    reader._parsed_keys = a_fold_meanwhile  # type: ignore[method-assign]
    assert [k for k in keys if reader.peek(k) is None] == []
    assert folds


def test_a_journal_of_a_build_on_another_host_is_not_folded(tmp_path: Path) -> None:
    """A build on another host sharing the cache (NFS) has a process number no process
    here has: its journal read as closed, was folded away while it still wrote to it,
    and what it stored afterwards was lost. Journals name their host now."""
    out, fp = _entry(tmp_path)
    key = lambda s: cache_key(s, (str(out),), {})  # noqa: E731
    other = RunCache(tmp_path / "c")
    other._token = "4194304000-0c0ffee0-abcdef"  # running elsewhere
    other.store(key("before"), {str(out): fp})
    for i in range(_FOLD_AT + 1):
        cache = RunCache(tmp_path / "c")
        cache.store(key(f"local {i}"), {str(out): fp})
        cache.close()
    assert list((tmp_path / "c/index").glob("fold-*.log"))
    other.store(key("after"), {str(out): fp})
    other.close()
    fresh = RunCache(tmp_path / "c")
    assert fresh.lookup(key("before")) and fresh.lookup(key("after"))


def test_a_build_closing_while_a_prune_reads_keeps_what_it_stored_after(tmp_path: Path) -> None:
    """A prune kept the journals still open when it compacted: a build that closed
    between the prune's read of the index and its compaction had its journal removed,
    with what it stored after the read. What counts is whether it was closed before
    the read."""
    out, fp = _entry(tmp_path)
    key = lambda s: cache_key(s, (str(out),), {})  # noqa: E731
    running = RunCache(tmp_path / "c")
    running.store(key("early"), {str(out): fp})
    prune = RunCache(tmp_path / "c")
    load = prune._load

    def the_build_finishes_meanwhile(fresh: bool = False) -> Any:
        entries = load(fresh)
        running.store(key("late"), {str(out): fp})
        running.close()
        return entries

    prune._load = the_build_finishes_meanwhile  # type: ignore[method-assign]
    prune.prune(1 << 30)
    fresh = RunCache(tmp_path / "c")
    assert fresh.lookup(key("early")) and fresh.lookup(key("late"))


def test_the_cache_size_says_what_is_shared_with_outputs_and_the_disk_blocks(
    project: Project,
) -> None:
    """Four 2-byte outputs, hard-linked into the cache: nothing in the cache alone;
    once they are edited, the cache's own four blobs take four disk blocks, which a
    `du` shows and the bytes did not."""
    project.taskfile(
        """
        for i in range(4):
            task(f"t{i}", f"echo {i} > o{i}.txt", outputs=[f"o{i}.txt"])
        """
    )
    assert project.run().returncode == 0
    shown = project.run("cache").stdout
    assert "4 blobs, 0 B in the cache alone" in shown and "8 B shared" in shown, shown
    for i in range(4):
        (project.root / f"o{i}.txt").unlink()
        project.write(f"o{i}.txt", "edited\n")
    shown = project.run("cache").stdout
    blocks = sum(
        p.stat().st_blocks * 512
        for p in (project.root / ".pytaskmake").rglob("*")
        if p.is_file() and p.stat().st_size == 2
    )
    assert f"8 B in the cache alone ({format_bytes(blocks)} of disk blocks)" in shown, shown
