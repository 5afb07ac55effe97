"""Markdown for PR comments and job summaries: a summary table, details collapsed."""

from __future__ import annotations

import re
from collections.abc import Sequence

from runner.findings import Finding, Severity

_ICON = {Severity.ERROR: "❌", Severity.WARNING: "⚠️", Severity.INFO: "💬"}
_AREAS_SHOWN = 6


def cell(text: object) -> str:
    """Text safe inside a table cell: no pipes or line breaks to break the row."""
    return str(text).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def validation_markdown(results: dict[str, list[Finding]], problems: list[Finding]) -> str:
    """`results`: adapter path -> its findings (None-free); `problems`: policy-file findings."""
    lines = ["## Validation", "", "| adapter | result | errors | warnings |", "|---|---|---|---|"]
    for path, findings in results.items():
        errors = sum(f.severity is Severity.ERROR for f in findings)
        warnings = sum(f.severity is Severity.WARNING for f in findings)
        result = "❌ fails" if errors else "✅ passes"
        lines.append(f"| `{cell(path)}` | {result} | {errors} | {warnings} |")
    for title, findings in [("policies", problems), *results.items()]:
        if findings:
            lines += ["", *_details(title, findings)]
    return "\n".join(lines) + "\n"


def _details(title: str, findings: list[Finding]) -> list[str]:
    rows = [
        f"| {_ICON[f.severity]} | `{cell(f.location)}` | `{cell(f.rule_id)}` | {cell(f.message)}"
        + (f"<br>*{cell(f.hint)}*" if f.hint else "")
        + " |"
        for f in findings
    ]
    return [
        f"<details><summary><code>{title}</code>: {len(findings)} finding(s)</summary>",
        "",
        "| | where | rule | what |",
        "|---|---|---|---|",
        *rows,
        "",
        "</details>",
    ]


def marker_name(adapter: str) -> str:
    """An adapter name as it can sit in an HTML comment (nothing that could end it)."""
    return re.sub(r"[^A-Za-z0-9._/-]", "_", adapter).replace("--", "-_")


def comment_marker(kind: str, adapter: str) -> str:
    """The hidden first line that makes a PR comment sticky: one per adapter and kind."""
    return f"<!-- adapter-gitops:{kind} adapter={marker_name(adapter)} -->"


def pr_code_banner(areas: Sequence[str], complete: bool) -> str:
    """The warning on top of a comment whose checks ran code or rules the PR itself changed
    (`areas`: plain top-level names outside adapters/ and datasets/)."""
    shown = ", ".join(f"`{area}`" for area in areas[:_AREAS_SHOWN])
    if len(areas) > _AREAS_SHOWN:
        shown += f" and {len(areas) - _AREAS_SHOWN} more"
    what = f"changes {shown}" if complete else "changes more files than GitHub lists"
    return (
        "> [!CAUTION]\n"
        f"> This PR {what}, outside `adapters/` and `datasets/`: its checks ran the PR's own "
        "code and rules, so what follows is the PR's word, not the bot's. Review the change "
        "itself before trusting this comment.\n"
    )


def truncation_note(length: int, limit: int) -> str:
    """The visible note on a comment cut to GitHub's limit."""
    return (
        f"> [!NOTE]\n> Cut to fit: the full text has {length:,} characters and a GitHub comment "
        f"holds at most {limit:,}. The workflow run that wrote it has all of it.\n"
    )
