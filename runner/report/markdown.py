"""Markdown for PR comments and job summaries: a summary table, details collapsed."""

from __future__ import annotations

import re

from runner.findings import Finding, Severity

_ICON = {Severity.ERROR: "❌", Severity.WARNING: "⚠️", Severity.INFO: "💬"}


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
