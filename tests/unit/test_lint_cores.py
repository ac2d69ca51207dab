"""Unit tests for `tools/lint_cores.py`, the rule that keeps clocks and randomness out of the
decision cores. The checker runs in-process on small source strings and temporary trees.
"""

from __future__ import annotations

import sys
from pathlib import Path
from textwrap import dedent

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "tools") not in sys.path:
    # tools/ is a folder of scripts, not a package; import the script as its own module.
    sys.path.insert(0, str(REPO / "tools"))

import lint_cores  # noqa: E402 - importable only once tools/ is on the path


def check(source: str) -> list[lint_cores.Finding]:
    return lint_cores.check_source(dedent(source), "app/demo/core.py")


def lines(source: str) -> list[int]:
    return [f.line for f in check(source)]


CLEAN = """\
from __future__ import annotations

import datetime as dt
import time
import uuid
from datetime import UTC, date, datetime, timedelta


def expired(deadline: datetime, now: datetime) -> bool:
    return now >= deadline


def next_day(day: date) -> date:
    return day + timedelta(days=1)


def stamp(now: datetime) -> tuple[datetime, dt.datetime, uuid.UUID, float]:
    midnight = datetime(2026, 1, 1, tzinfo=UTC)
    parsed = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
    key = uuid.UUID(int=1)
    return midnight, parsed, key, time.struct_time((2026, 1, 1, 0, 0, 0, 3, 1, 0)).tm_year
"""


class TestCheckSource:
    def test_clean_core_passes(self) -> None:
        """A core that takes `now` as an argument and builds fixed dates has no findings."""
        assert check(CLEAN) == []

    @pytest.mark.parametrize(
        ("source", "name"),
        [
            ("from datetime import datetime\nx = datetime.now()\n", "datetime.datetime.now"),
            ("from datetime import datetime\nx = datetime.utcnow()\n", "datetime.datetime.utcnow"),
            ("from datetime import datetime\nx = datetime.today()\n", "datetime.datetime.today"),
            ("import datetime\nx = datetime.datetime.now()\n", "datetime.datetime.now"),
            ("import datetime as dt\nx = dt.datetime.now(dt.UTC)\n", "datetime.datetime.now"),
            ("from datetime import datetime as D\nx = D.now()\n", "datetime.datetime.now"),
            ("from datetime import date\nx = date.today()\n", "datetime.date.today"),
            ("import datetime\nx = datetime.date.today()\n", "datetime.date.today"),
            ("import time\nx = time.time()\n", "time.time"),
            ("import time\nx = time.monotonic()\n", "time.monotonic"),
            ("import time\nx = time.perf_counter()\n", "time.perf_counter"),
            ("import time\nx = time.monotonic_ns()\n", "time.monotonic_ns"),
            ("from time import time\nx = time()\n", "time.time"),
            ("from time import perf_counter as pc\nx = pc()\n", "time.perf_counter"),
        ],
    )
    def test_clock_reads_are_reported(self, source: str, name: str) -> None:
        """Every way of reading the clock is reported, whatever the import style."""
        findings = check(source)
        assert [(f.line, f.path) for f in findings] == [(2, "app/demo/core.py")]
        assert f"`{name}` reads the clock" in findings[0].message

    @pytest.mark.parametrize(
        ("source", "name"),
        [
            ("import random\nx = random.random()\n", "random.random"),
            ("import random\nx = random.choice([1, 2])\n", "random.choice"),
            ("import random\nrng = random.Random(42)\n", "random.Random"),
            ("from random import shuffle\nshuffle([1, 2])\n", "random.shuffle"),
            ("import random as r\nx = r.randint(1, 6)\n", "random.randint"),
            ("import secrets\nx = secrets.token_hex()\n", "secrets.token_hex"),
            ("from secrets import choice\nx = choice('ab')\n", "secrets.choice"),
            ("import uuid\nx = uuid.uuid4()\n", "uuid.uuid4"),
            ("import uuid\nx = uuid.uuid1()\n", "uuid.uuid1"),
            ("from uuid import uuid4\nx = uuid4()\n", "uuid.uuid4"),
        ],
    )
    def test_random_reads_are_reported(self, source: str, name: str) -> None:
        """Anything from `random` or `secrets`, and random UUIDs, are reported."""
        findings = check(source)
        assert [f.line for f in findings] == [2]
        assert f"`{name}` is random" in findings[0].message

    def test_references_count_not_only_calls(self) -> None:
        """Passing a clock or random function along (to call later) is reported too."""
        source = """\
            import random
            from dataclasses import field
            from uuid import uuid4
            ids = field(default_factory=uuid4)
            picked = sorted([3, 1], key=lambda _: random.random())
            shuffle = random.shuffle
            """
        assert lines(source) == [4, 5, 6]

    def test_one_finding_per_reference(self) -> None:
        """`random.choice(...)` is one finding, not one for `random` and one for `choice`."""
        assert len(check("import random\nx = random.choice([1])\n")) == 1

    def test_every_violation_is_reported_with_its_line(self) -> None:
        """Several violations in one module are each reported, in source order."""
        source = """\
            import time
            from datetime import datetime


            def decide() -> float:
                started = datetime.now()
                return time.monotonic() - started.timestamp() + time.time()
            """
        assert [(f.line, f.col) for f in check(source)] == [(6, 14), (7, 11), (7, 52)]

    def test_star_import_from_watched_module_is_reported(self) -> None:
        """`from time import *` is refused: it would hide clock reads from the rule."""
        findings = check("from time import *\n")
        assert [f.line for f in findings] == [1]
        assert "import *" in findings[0].message

    def test_names_not_imported_from_watched_modules_are_not_reported(self) -> None:
        """A local object that happens to be called `time` or `random` is not a clock read."""
        source = """\
            def f(time: object, random: object, now: object) -> None:
                time.time()
                random.random()
                now.today()
            """
        assert check(source) == []

    def test_assignment_target_is_not_a_read(self) -> None:
        """Rebinding a name is not a read of the clock."""
        assert check("from time import time\ntime = 5.0\n") == []

    def test_relative_imports_are_ignored(self) -> None:
        """A project module that happens to be called `random` is not the stdlib one."""
        assert check("from .random import pick\nx = pick()\n") == []


class TestEscape:
    def test_escape_comment_suppresses_finding_on_its_line(self) -> None:
        """`# lint-skip: core-clock` on the offending line silences that finding only."""
        source = """\
            from datetime import datetime
            a = datetime.now()  # lint-skip: core-clock
            b = datetime.now()
            """
        assert lines(source) == [3]

    def test_escape_after_another_comment(self) -> None:
        """The escape still works when the line already carries another comment."""
        source = "import time\nx = time.time()  # noqa: F841  # lint-skip: core-clock\n"
        assert check(source) == []

    def test_escape_on_another_line_does_not_help(self) -> None:
        """An escape on the line above does not cover the violation below it."""
        source = """\
            import time
            # lint-skip: core-clock
            x = time.time()
            """
        assert lines(source) == [3]

    def test_escape_must_name_the_rule(self) -> None:
        """A generic skip comment does not silence this rule."""
        assert lines("import time\nx = time.time()  # lint-skip\n") == [2]
        assert lines("import time\nx = time.time()  # lint-skip: other-rule\n") == [2]

    def test_escape_inside_a_string_does_not_count(self) -> None:
        """The escape text inside a string literal is not a comment and silences nothing."""
        assert lines('import time\nx = (time.time(), "# lint-skip: core-clock")\n') == [2]

    def test_finding_mentions_the_escape(self) -> None:
        """Each finding tells the reader how to mark a deliberate exception."""
        (finding,) = check("import time\nx = time.time()\n")
        assert lint_cores.ESCAPE in finding.message


class TestFinding:
    def test_rendered_as_file_line_col(self) -> None:
        """A finding prints as `file:line:col: message`, with a 1-based column."""
        finding = lint_cores.Finding("app/x/core.py", 3, 4, "boom")
        assert str(finding) == "app/x/core.py:3:5: boom"

    def test_syntax_error_is_a_finding(self) -> None:
        """A core that does not parse is reported at the error instead of passing silently."""
        (finding,) = check("def broken(:\n")
        assert finding.line == 1
        assert "syntax error" in finding.message


def write(root: Path, relative: str, source: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dedent(source), encoding="utf-8")
    return path


class TestCorePaths:
    def test_finds_every_core_and_the_summary(self, tmp_path: Path) -> None:
        """Every `app/*/core.py` and `app/handoff/summary.py` are checked; services are not."""
        for relative in [
            "app/routing/core.py",
            "app/chat/core.py",
            "app/handoff/summary.py",
            "app/routing/service.py",
            "app/routing/deep/core.py",
        ]:
            write(tmp_path, relative, "")
        assert [p.relative_to(tmp_path).as_posix() for p in lint_cores.core_paths(tmp_path)] == [
            "app/chat/core.py",
            "app/handoff/summary.py",
            "app/routing/core.py",
        ]

    def test_summary_is_optional(self, tmp_path: Path) -> None:
        """Without a handoff summary module, only the cores are checked."""
        write(tmp_path, "app/routing/core.py", "")
        assert lint_cores.core_paths(tmp_path) == [tmp_path / "app/routing/core.py"]


class TestMain:
    def test_clean_tree_exits_zero(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With clean cores the command prints nothing and exits 0."""
        write(tmp_path, "app/routing/core.py", CLEAN)
        assert lint_cores.main(["--root", str(tmp_path)]) == 0
        assert capsys.readouterr().out == ""

    def test_violations_exit_one_with_file_and_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Violations are printed as `file:line:col: message` and the command exits 1."""
        write(tmp_path, "app/routing/core.py", CLEAN)
        write(tmp_path, "app/handoff/summary.py", "import random\n\nx = random.random()\n")
        assert lint_cores.main(["--root", str(tmp_path)]) == 1
        out = capsys.readouterr().out.splitlines()
        assert len(out) == 1
        assert out[0].startswith("app/handoff/summary.py:3:5: `random.random` is random")

    def test_explicit_files_are_checked_instead(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Files named on the command line are checked instead of the discovered cores."""
        write(tmp_path, "app/routing/core.py", "import time\nx = time.time()\n")
        other = write(tmp_path, "other.py", CLEAN)
        assert lint_cores.main(["--root", str(tmp_path), str(other)]) == 0
        assert capsys.readouterr().out == ""

    def test_missing_routing_core_is_an_error(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """If the routing core has moved, the rule fails loudly instead of checking nothing."""
        assert lint_cores.main(["--root", str(tmp_path)]) == 1
        assert "app/routing/core.py" in capsys.readouterr().out

    def test_project_cores_pass(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The repository's own decision cores contain no clock or random reads."""
        assert lint_cores.main(["--root", str(REPO)]) == 0, capsys.readouterr().out
