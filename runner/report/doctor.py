"""`runner doctor`'s result as markdown, for the job summary of the promote workflow."""

from __future__ import annotations

from runner.doctor import Check


def mark(check: Check) -> str:
    return "✅" if check.passed else "❌"


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
