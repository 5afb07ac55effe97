"""`runner doctor`'s result: on the terminal, and as markdown for the job summary of the
promote workflow."""

from __future__ import annotations

from rich.console import Console

from runner.doctor import Check
from runner.report.console import print_plain


def mark(check: Check) -> str:
    return "✅" if check.passed else "❌"


def print_checks(console: Console, checks: list[Check]) -> None:
    """A line each, not a table: a CI log keeps ids and fixes whole; then how many pass."""
    for check in checks:
        print_plain(console, f"{mark(check)} {check.area} {check.subject}: {check.detail}")
        if check.fix:
            print_plain(console, f"   fix: {check.fix}")
    passed = sum(check.passed for check in checks)
    console.print(f"{passed} of {len(checks)} checks pass")


def doctor_markdown(checks: list[Check]) -> str:
    failed = sum(not check.passed for check in checks)
    verdict = "every check passes" if not failed else f"{failed} check(s) fail"
    rows = [
        f"| {mark(c)} | {c.area} | `{c.subject}` | {c.detail} | {c.fix} |".replace("\n", " ")
        for c in checks
    ]
    return "\n".join(
        [
            f"## Doctor: {verdict}",
            "",
            "| | area | subject | found | fix |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
