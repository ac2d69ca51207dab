"""Lint rule: decision cores must not read the clock or draw random values.

The cores (`app/*/core.py`, `app/handoff/summary.py`, `app/routing/policy.py`) take `now` and
every other varying input as arguments, so the same snapshot always yields the same decision
(project conventions, section 2). This AST check finds the ways a core could break that:
`datetime.now()` and friends, `time.time()` and the other clocks, anything from `random` or
`secrets`, and `uuid.uuid1()` / `uuid.uuid4()`. Calls and bare references both count
(`key=random.random` reads randomness later). A deliberate exception carries
`# lint-skip: core-clock` on the offending line.

It resolves names through the module's own imports only: it does not follow assignments, and
an import anywhere in the module counts for the whole module. Star imports from the watched
modules are refused because they hide what is used.

Run from the repository root: `python tools/lint_cores.py [FILE ...]`. Exit status 0 when
clean, 1 with one `file:line:col: message` per finding otherwise.
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import sys
import tokenize
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from typing_extensions import override

ROOT = Path(__file__).resolve().parent.parent
ESCAPE = "# lint-skip: core-clock"
_ESCAPE_RE = re.compile(r"#\s*lint-skip:\s*core-clock\b")

# Fully qualified names that read a clock.
CLOCK_READS = frozenset(
    {
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
        "time.time",
        "time.time_ns",
        "time.monotonic",
        "time.monotonic_ns",
        "time.perf_counter",
        "time.perf_counter_ns",
    }
)
# Fully qualified names that draw random values.
RANDOM_READS = frozenset({"uuid.uuid1", "uuid.uuid4"})
# Modules of which every name is random.
RANDOM_MODULES = frozenset({"random", "secrets"})
# Modules whose star import could smuggle one of the names above in.
WATCHED_MODULES = frozenset({"datetime", "time", "uuid"}) | RANDOM_MODULES

EXIT_CLEAN = 0
EXIT_FINDINGS = 1


@dataclass(frozen=True, slots=True)
class Finding:
    """One violation, located by 1-based line and 0-based column as `ast` reports them."""

    path: str
    line: int
    col: int
    message: str

    @override
    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col + 1}: {self.message}"


def _reason(qualified: str) -> str | None:
    """Why `qualified` is not allowed in a core, or None if it is harmless."""
    if qualified in CLOCK_READS:
        return f"`{qualified}` reads the clock; take `now` as an argument"
    if qualified in RANDOM_READS or qualified.split(".", 1)[0] in RANDOM_MODULES:
        return f"`{qualified}` is random; take the value as an argument"
    return None


def import_aliases(tree: ast.AST) -> dict[str, set[str]]:
    """Every local name bound by an absolute import, mapped to what it may refer to.

    `import datetime as dt` binds `dt` to `datetime`; `from time import time` binds `time`
    to `time.time`. A name bound by several imports keeps every meaning.
    """
    aliases: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname is None:
                    # `import a.b` binds `a`, through which `a.b.x` is reached.
                    top = alias.name.split(".", 1)[0]
                    aliases.setdefault(top, set()).add(top)
                else:
                    aliases.setdefault(alias.asname, set()).add(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            for alias in node.names:
                if alias.name != "*":
                    local = alias.asname or alias.name
                    aliases.setdefault(local, set()).add(f"{node.module}.{alias.name}")
    return aliases


def qualified_names(node: ast.expr, aliases: dict[str, set[str]]) -> set[str]:
    """What a dotted reference such as `dt.datetime.now` may mean, given the imports."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return set()
    suffix = "".join(f".{attr}" for attr in reversed(attrs))
    return {f"{target}{suffix}" for target in aliases.get(node.id, set())}


def _escaped_lines(source: str) -> set[int]:
    """Lines carrying the escape in a comment (not inside a string)."""
    return {
        token.start[0]
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT and _ESCAPE_RE.search(token.string)
    }


def _violations(
    node: ast.AST, aliases: dict[str, set[str]]
) -> Iterator[tuple[ast.expr | ast.stmt, str]]:
    """Each offending reference or import with its reason, outermost reference only."""
    if isinstance(node, ast.Attribute | ast.Name) and isinstance(node.ctx, ast.Load):
        reasons = sorted(
            reason
            for name in qualified_names(node, aliases)
            if (reason := _reason(name)) is not None
        )
        if reasons:
            yield node, reasons[0]
            return  # `random.choice` is one finding, not two (`random` and `random.choice`)
    if (
        isinstance(node, ast.ImportFrom)
        and node.level == 0
        and node.module in WATCHED_MODULES
        and any(alias.name == "*" for alias in node.names)
    ):
        yield node, f"`from {node.module} import *` hides clock or random reads; import names"
    for child in ast.iter_child_nodes(node):
        yield from _violations(child, aliases)


def check_source(source: str, path: str = "<string>") -> list[Finding]:
    """Findings for one module's source text, in source order.

    Args:
        source: The module's text.
        path: How findings name the file.

    Returns:
        One finding per offending reference not escaped on its line; a module that does not
        parse yields a single finding at the syntax error.
    """
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        return [Finding(path, exc.lineno or 1, (exc.offset or 1) - 1, f"syntax error: {exc.msg}")]
    escaped = _escaped_lines(source)
    findings = []
    for node, reason in _violations(tree, import_aliases(tree)):
        end = node.end_lineno or node.lineno
        if escaped.isdisjoint(range(node.lineno, end + 1)):
            findings.append(Finding(path, node.lineno, node.col_offset, f"{reason} (or: {ESCAPE})"))
    return sorted(findings, key=lambda f: (f.line, f.col))


# Pure modules that are not named `core.py`, checked when they exist.
OTHER_PURE_MODULES = (
    "app/handoff/summary.py",
    "app/handoff/facts.py",
    "app/handoff/sentiment.py",
    "app/handoff/repeats.py",
    "app/handoff/mentions.py",
    "app/handoff/sentences.py",
    "app/handoff/statements.py",
    "app/handoff/digest.py",
    "app/handoff/rules.py",
    "app/files/types.py",
    "app/routing/policy.py",
    "app/routing/estimate.py",
    "app/routing/intake.py",
    "app/routing/hours.py",
    "app/routing/sla.py",
    "app/chat/templates.py",
    "app/webhooks/events.py",
    "app/webhooks/signing.py",
    "app/webhooks/schedule.py",
    "app/webhooks/urls.py",
    "app/reports/measures.py",
    "app/reports/figures.py",
    "app/quality/scoring.py",
    "app/quality/tally.py",
)


def core_paths(root: Path) -> list[Path]:
    """The modules this rule covers under `root`: every `app/*/core.py`, plus those of
    `OTHER_PURE_MODULES` that exist."""
    paths = set(root.glob("app/*/core.py"))
    paths.update(path for path in map(root.joinpath, OTHER_PURE_MODULES) if path.is_file())
    return sorted(paths)


def _display(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def check_paths(paths: Sequence[Path], root: Path) -> list[Finding]:
    """Findings for every file in `paths`, reported relative to `root` where possible."""
    findings: list[Finding] = []
    for path in paths:
        findings.extend(check_source(path.read_text(encoding="utf-8"), _display(path, root)))
    return findings


def main(argv: Sequence[str] | None = None) -> int:
    """Check the cores (or the files given) and print one line per finding.

    Returns:
        0 when there is nothing to report, 1 otherwise.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("files", nargs="*", type=Path, help="files to check instead of the cores")
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="repository root (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    root: Path = args.root
    files: list[Path] = args.files
    expected = root / "app" / "routing" / "core.py"
    if not files and not expected.is_file():
        # A rule that silently checks nothing after a move is worse than a loud failure.
        print(f"{_display(expected, root)}: expected core module is missing")
        return EXIT_FINDINGS
    findings = check_paths(files or core_paths(root), root)
    for finding in findings:
        print(finding)
    return EXIT_FINDINGS if findings else EXIT_CLEAN


if __name__ == "__main__":
    sys.exit(main())
