"""Depfiles (depfile.py): gcc's Makefile syntax read back, system headers left out."""

from __future__ import annotations

from pathlib import Path

from pytaskmake import depfile
from pytaskmake.access import Scope


def test_gcc_depfile_with_continuations_escapes_and_phony_rules() -> None:
    text = (
        "build/sim.o: src/sim.c include/sim.h \\\n"
        " include/my\\ file.h include/h\\#ash.h /usr/include/stdio.h \\\n"
        "  cost$$.h\n"
        "\n"
        "include/sim.h:\n"
        "include/my\\ file.h:\n"
    )
    assert depfile.parse(text) == [
        "src/sim.c",
        "include/sim.h",
        "include/my file.h",
        "include/h#ash.h",
        "/usr/include/stdio.h",
        "cost$.h",
    ]


def test_several_targets_crlf_and_comments() -> None:
    text = "a.o b.o: x.c \\\r\n y.h\r\n# a comment: z.h\r\nc.o : w.h\r\n"
    assert depfile.parse(text) == ["x.c", "y.h", "w.h"]


def test_listed_keeps_project_files_and_drops_system_headers(tmp_path: Path) -> None:
    (tmp_path / "sim.d").write_text(
        f"sim.o: sim.c {tmp_path}/inc/a.h ../outside.h /usr/include/stdio.h\n"
    )
    scope = Scope(str(tmp_path), ("/usr",))
    found = depfile.listed(str(tmp_path / "sim.d"), scope)
    assert found == ["sim.c", "inc/a.h", str(tmp_path.parent / "outside.h")]
    assert depfile.listed(str(tmp_path / "none.d"), scope) == []
