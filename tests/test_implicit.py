"""Files named on a command line are inputs (implicit.py), through the real CLI."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Project, build, ran, runs


def test_a_script_named_on_the_command_line_is_an_input(project: Project) -> None:
    """Editing tool.py reruns the task, and the run cache never hands back an output of
    the old tool.py when in.txt takes an earlier value."""
    project.write("tool.py", "import sys; print(open(sys.argv[1]).read().upper(), end='')\n")
    project.write("in.txt", "a\n")
    project.taskfile(
        """
        task("conv", "echo conv >> runs.log; python3 tool.py in.txt > out.txt",
             inputs=["in.txt"], outputs=["out.txt"])
        """
    )
    build(project)
    assert runs(project) == ["conv"] and project.read("out.txt") == "A\n"
    project.write("tool.py", "import sys; print(open(sys.argv[1]).read()[::-1], end='')\n")
    dry = build(project, "-n")
    assert "would run conv: implicit input tool.py changed" in dry.stdout
    build(project)
    assert runs(project) == ["conv"] and project.read("out.txt") == "\na"
    project.write("in.txt", "b\n")
    build(project)
    project.write("in.txt", "a\n")  # an earlier value of in.txt, with the new tool.py
    build(project)
    assert project.read("out.txt") == "\na", "restored an output of the old tool.py"


def test_a_program_found_on_path_inside_the_project_is_an_input(project: Project) -> None:
    sim = project.write("bin/netsim", '#!/bin/sh\necho v1 > "$1"\n')
    sim.chmod(sim.stat().st_mode | stat.S_IXUSR)
    project.taskfile(
        """
        task("sim", "echo sim >> runs.log; netsim out.txt", outputs=["out.txt"])
        """
    )
    path = f"{project.root / 'bin'}{os.pathsep}{os.environ['PATH']}"
    result = project.run(PATH=path)
    assert result.returncode == 0, result.stderr
    assert runs(project) == ["sim"]
    sim.write_text('#!/bin/sh\necho v2 > "$1"\n')
    assert project.run(PATH=path).returncode == 0
    assert runs(project) == ["sim"] and project.read("out.txt") == "v2\n"


def test_what_is_not_an_implicit_input(project: Project) -> None:
    """Redirection targets, other tasks' outputs, folders, missing files, opted-out tasks."""
    project.write("notes.txt", "n\n")
    project.write("data/x.csv", "1\n")
    project.taskfile(
        """
        task("gen", "echo gen >> runs.log; echo g > gen.txt", outputs=["gen.txt"])
        task("use", "echo use >> runs.log; cat gen.txt > use.txt; ls data >> use.txt 2> err.txt",
             inputs=["gen.txt"], outputs=["use.txt"])
        task("opt", "echo opt >> runs.log; cat notes.txt > opt.txt", outputs=["opt.txt"],
             implicit_inputs=False)
        """
    )
    project.run()
    assert sorted(runs(project)) == ["gen", "opt", "use"]
    build(project)
    assert runs(project) == []  # runs.log, err.txt: written, not read
    project.write("notes.txt", "changed\n")
    build(project)
    assert runs(project) == []  # opted out


def test_an_argv_word_naming_a_file_is_an_input(project: Project) -> None:
    project.write("cfg.ini", "x=1\n")
    project.taskfile(
        """
        task("sim", ["sh", "-c", "echo sim >> runs.log; cat \\"$0\\" > out.txt", "cfg.ini"],
             outputs=["out.txt"])
        """
    )
    build(project)
    assert runs(project) == ["sim"]
    project.write("cfg.ini", "x=2\n")
    build(project)
    assert runs(project) == ["sim"] and project.read("out.txt") == "x=2\n"


def test_a_word_also_written_with_punctuation_is_still_an_input(tmp_path: Path) -> None:
    """`data.txt` and `data.txt;` in one chunk's commands: the plain one names the file,
    whatever order a set gives them (string hashes differ in every process)."""
    (tmp_path / "data.txt").write_text("1\n")
    script = (
        "from pathlib import Path\n"
        "from pytaskmake.implicit import add_implicit_inputs\n"
        "from pytaskmake.taskfile import Task\n"
        "t = Task('t', 'cat data.txt > out; wc -l data.txt;', (), ('out',))\n"
        "add_implicit_inputs([t], Path('.'))\n"
        "print(t.inputs)\n"
    )
    for seed in range(8):
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.stdout.strip() == "('data.txt',)", (seed, done.stdout, done.stderr)


def test_a_file_another_task_declares_is_still_an_implicit_input(project: Project) -> None:
    """`other` names dur.txt without declaring it; `long` declares it. Declared by a
    task, the word was dropped for every task of its block (2,048 tasks), and
    `other` stayed up to date when dur.txt changed."""
    project.write("dur.txt", "1\n")
    project.write("o.txt", "o\n")
    project.write("in.txt", "i\n")
    project.taskfile(
        """
        task("long", "echo long >> runs.log; cat dur.txt > long.txt", inputs=["dur.txt"],
             outputs=["long.txt"])
        task("other", "echo other >> runs.log; cat dur.txt o.txt > other.txt",
             inputs=["o.txt"], outputs=["other.txt"])
        task("quoted", "echo quoted >> runs.log; wc -l <in.txt > quoted.txt; cat 'dur.txt'",
             outputs=["quoted.txt"])
        task("reads", "echo reads >> runs.log; cat in.txt > reads.txt", inputs=["in.txt"],
             outputs=["reads.txt"])
        """
    )
    build(project)
    assert sorted(runs(project)) == ["long", "other", "quoted", "reads"]
    project.write("dur.txt", "2\n")
    build(project)
    assert sorted(runs(project)) == ["long", "other", "quoted"]
    project.write("in.txt", "j\n")
    build(project)
    assert sorted(runs(project)) == ["quoted", "reads"]


def test_own_declared_paths_with_punctuation_are_not_implicit_but_others_are(
    tmp_path: Path,
) -> None:
    """`(cat p.txt;)` declaring p.txt adds nothing; `cat 'p.txt'` in a task that does
    not declare it adds p.txt, though the word is dropped as punctuation for the
    first task (what add_implicit_inputs sees, on the real files)."""
    from pytaskmake.implicit import add_implicit_inputs
    from pytaskmake.taskfile import Task

    (tmp_path / "p.txt").write_text("1\n")
    (tmp_path / "q.txt").write_text("2\n")
    own = Task("own", "(cat p.txt;) > a", ("p.txt",), ("a",))
    other = Task("other", "cat 'p.txt' q.txt > b", ("q.txt",), ("b",))
    os.chdir(tmp_path)  # (the conftest puts the folder back)
    add_implicit_inputs([own, other], tmp_path)
    assert own.inputs == ("p.txt",)
    assert other.inputs == ("q.txt", "p.txt")


def test_files_named_in_every_shell_shape_are_inputs(project: Project) -> None:
    """Each task names one project file in a different shape and declares nothing:
    editing it reruns that task alone (a break-it helper found each one missed)."""
    for name in ("VERSION", "p.txt", "q.txt", "cfg.txt", "s.txt", "t.txt", "a.txt", "c.txt"):
        project.write(name, "1\n")
    project.write("e.txt", "1\n")
    project.write("run(1).csv", "1\n")
    project.write("merge.py", "print(1)\n")
    project.write("tools/__init__.py", "")
    project.write("tools/sim.py", "print(1)\n")
    gen = project.write("bin/gen.sh", "#!/bin/sh\necho 1\n")
    gen.chmod(0o755)
    project.taskfile(
        """
        import os
        os.environ["PATH"] = os.path.abspath("bin") + os.pathsep + os.environ["PATH"]
        task("noext", "cat VERSION > o1", outputs=["o1"])
        task("dotprog", "gen.sh > o2", outputs=["o2"])
        task("semi", "(cat p.txt;) > o3", outputs=["o3"])
        task("subst", "echo $(cat q.txt) > o4", outputs=["o4"])
        task("cfgq", 'grep . --file="cfg.txt" /dev/null > o5 || true', outputs=["o5"])
        task("shc", ["sh", "-c", "python3 merge.py > o6"], outputs=["o6"])
        task("pym", "python3 -m tools.sim > o7", outputs=["o7"])
        task("dd", "dd if=s.txt of=o8 2>/dev/null", outputs=["o8"])
        task("pipe", "cat t.txt|sort > o9", outputs=["o9"])
        task("lines", "echo s | tee run.log\\ncat a.txt > o10", outputs=["o10"])
        task("teein", "tee o11 < c.txt > /dev/null", outputs=["o11"])
        task("argv", ["cp", "run(1).csv", "o12"], outputs=["o12"])
        task("pyc", "python3 -c 'print(open(\\"e.txt\\").read())' > o13", outputs=["o13"])
        """
    )
    path = f"{project.root / 'bin'}{os.pathsep}{os.environ['PATH']}"
    build(project)
    edits = {
        "VERSION": "noext",
        "bin/gen.sh": "dotprog",
        "p.txt": "semi",
        "q.txt": "subst",
        "cfg.txt": "cfgq",
        "merge.py": "shc",
        "tools/sim.py": "pym",
        "s.txt": "dd",
        "t.txt": "pipe",
        "a.txt": "lines",
        "c.txt": "teein",
        "run(1).csv": "argv",
        "e.txt": "pyc",
    }
    for edited, name in edits.items():
        with open(project.root / edited, "a") as f:
            f.write("# edited\n")
        result = project.run(PATH=path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert ran(result) == [name], (edited, result.stdout)


def test_a_file_a_task_writes_is_not_its_implicit_input(project: Project) -> None:
    """`tee run.log`, `sort -o sorted.txt`, `touch started`, `cp src.txt copy.txt`'s
    copy, `sed -i`'s file: written, not read; as an implicit input each changed on
    every run, and the task reran on every build. cp's source is read."""
    project.write("in.txt", "b\na\n")
    project.write("src.txt", "s\n")
    project.taskfile(
        """
        task("tee", "date +%N | tee run.log > o1", outputs=["o1"])
        task("sort", "sort -o sorted.txt in.txt; cp sorted.txt o2", inputs=["in.txt"],
             outputs=["o2"])
        task("touch", "touch started; date +%N > o3", outputs=["o3"])
        task("cp", "cp src.txt copy.txt; date +%N >> copy.txt; cp copy.txt o4",
             outputs=["o4"])
        task("sed", "date +%N > edited.txt; sed -i s/1/2/ edited.txt; cp edited.txt o5",
             outputs=["o5"])
        task("clobber", "date +%N >| w1.log; date +%N > o6", outputs=["o6"])
        task("eq", "date +%N >run=1.log; cp run=1.log o9", outputs=["o9"])
        task("out", "python3 -c 'import sys; open(sys.argv[2], \\"w\\")' --out w5.txt; "
             "date +%N > o7", outputs=["o7"])
        """
    )
    build(project)
    build(project)  # the written files exist now: still no inputs
    assert ran(build(project)) == []
    project.write("src.txt", "t\n")
    assert ran(build(project)) == ["cp"]


def test_a_command_no_program_can_be_given_is_a_load_error(project: Project) -> None:
    """A lone surrogate is no byte in any encoding: one line naming the task, exit 2
    (it ended the build with a traceback when the task was started)."""
    project.taskfile('task("odd", "cat in.txt \\ud800 > o8", outputs=["o8"])\n')
    result = build(project, code=2)
    assert "Taskfile.py:2: task 'odd': its command holds" in result.stderr


@pytest.mark.skipif(shutil.which("unzip") is None, reason="needs unzip")
def test_archives_read_to_stdout_and_minus_o_that_is_no_output_are_inputs(
    project: Project,
) -> None:
    """`gunzip -c d.gz` reads d.gz (gunzip alone replaces it); unzip's -o overwrites:
    the archive after it is read (both missed, found by a helper's regression sweep)."""
    import gzip
    import zipfile

    (project.root / "d.gz").write_bytes(gzip.compress(b"hi\n"))
    with zipfile.ZipFile(project.root / "data.zip", "w") as z:
        z.writestr("a.txt", "1\n")
    project.taskfile(
        """
        task("unz", "gunzip -c d.gz > d.txt", outputs=["d.txt"])
        task("zip", "unzip -o -p data.zip a.txt > r.txt", outputs=["r.txt"])
        """
    )
    build(project)
    (project.root / "d.gz").write_bytes(gzip.compress(b"bye\n"))
    assert ran(build(project)) == ["unz"] and project.read("d.txt") == "bye\n"
    with zipfile.ZipFile(project.root / "data.zip", "w") as z:
        z.writestr("a.txt", "2\n")
    assert ran(build(project)) == ["zip"] and project.read("r.txt") == "2\n"


def test_lines_alike_but_for_what_they_write_read_their_own_files(project: Project) -> None:
    """`> a.txt && cat b.txt` reads b.txt; `> b.txt && cat b.txt` reads its own b.txt:
    the lines are alike but for their redirection, and must not share an answer."""
    project.write("b.txt", "b\n")
    project.write("b3.txt", "b\n")
    project.taskfile(
        """
        task("own", "echo x > b2.txt && cat b2.txt > o1", outputs=["o1"])
        task("reads", "echo x > a.txt && cat b.txt > o2", outputs=["o2"])
        task("writes", "echo x > b.txt && cat b.txt > o3", outputs=["o3"])
        task("spelled", "echo x > ./b3.txt && cat b3.txt > o4", outputs=["o4"])
        task("other", "echo x > ./b4.txt && cat b3.txt > o5", outputs=["o5"])
        """
    )
    build(project)
    project.write("b.txt", "c\n")
    assert ran(build(project)) == ["reads"]  # (writes reads the b.txt it wrote)
    project.write("b3.txt", "d\n")  # spelled wrote its own; other reads this one
    assert ran(build(project)) == ["other"]


def test_lines_of_one_shape_that_run_different_programs_read_their_own_files(
    project: Project,
) -> None:
    """Found by a helper attacking the shape memo: a declared program (bin/gzip,
    bin/zstd) hidden in the shape gave zstd gzip's answer (no corpus.txt read); a
    `-o` just before `>` let the redirection's target count as read; an argv list's
    answer reached a shell line with the same words."""
    for tool in ("gzip", "zstd"):
        script = project.write(f"bin/{tool}", '#!/bin/sh\ncat "$2"\n')
        script.chmod(0o755)
    for name in ("corpus.txt", "data.txt", "a.csv", "b.csv"):
        project.write(name, "hi\n")
    project.write("merge.py", "print(1)\n")
    project.taskfile(
        """
        for tool in ["gzip", "zstd"]:
            task(f"bench-{tool}", f"bin/{tool} -k corpus.txt > {tool}.out",
                 inputs=[f"bin/{tool}"], outputs=[f"{tool}.out"])
        for n in ["A", "B"]:
            task(f"g{n}", f"grep -e hi data.txt -o > {n}.log; cp {n}.log g{n}.out",
                 outputs=[f"g{n}.out"])
        task("argv", ["python3", "merge.py", "--in=a.csv,b.csv"], outputs=[])
        task("shell", "python3 merge.py --in=a.csv,b.csv | sort > shell.out",
             outputs=["shell.out"])
        """
    )
    build(project)
    build(project)  # (A.log and B.log exist now: still nobody's input)
    project.write("corpus.txt", "more\n")
    assert sorted(ran(build(project))) == ["bench-gzip", "bench-zstd"]
    project.write("b.csv", "more\n")
    assert "shell" in ran(build(project))
    assert ran(build(project)) == []
