"""`runner validate`'s result in each of its formats, on the terminal."""

from __future__ import annotations

import json
from enum import StrEnum

from rich.console import Console
from rich.text import Text

from runner.policy.loading import Policies
from runner.report.console import print_findings, print_plain, summary_line
from runner.report.github import annotations
from runner.report.markdown import validation_markdown
from runner.validation import AdapterValidation


class OutputFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"
    github = "github"


def print_validation(
    console: Console, results: list[AdapterValidation], policies: Policies, output: OutputFormat
) -> None:
    findings = policies.problems + [f for r in results for f in r.findings]
    if output is OutputFormat.json:
        payload = {
            "adapters": {r.path: r.ok for r in results},
            "findings": [f.to_dict() for f in findings],
        }
        console.print_json(json.dumps(payload))
    elif output is OutputFormat.github:
        for line in annotations(findings):
            print_plain(console, line)
    elif output is OutputFormat.markdown:
        by_adapter = {r.path: r.findings for r in results}
        print_plain(console, validation_markdown(by_adapter, policies.problems))
    else:
        print_findings(console, findings)
        for result in results:
            mark = Text("ok  ", style="green") if result.ok else Text("FAIL", style="bold red")
            console.print(Text.assemble(mark, " ", result.path))
        console.print(summary_line(findings))
