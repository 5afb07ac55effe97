"""GitHub Actions output: one annotation per finding (shown on the PR diff), and the job
summary (`GITHUB_STEP_SUMMARY`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from runner.findings import Finding, Severity

_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(finding: Finding) -> str:
    props = [f"file={_property(finding.path)}"]
    if finding.line is not None:
        props.append(f"line={finding.line}")
    if finding.column is not None:
        props.append(f"col={finding.column}")
    props.append(f"title={_property(finding.rule_id)}")
    message = finding.message + (f"\n{finding.hint}" if finding.hint else "")
    return f"::{_LEVEL[finding.severity]} {','.join(props)}::{_data(message)}"


def annotations(findings: Iterable[Finding]) -> list[str]:
    return [annotation(f) for f in findings]


def write_step_summary(markdown: str, env: Mapping[str, str] = os.environ) -> bool:
    """Append `markdown` to the job summary named by `GITHUB_STEP_SUMMARY`; False if unset."""
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    with Path(target).open("a", encoding="utf-8") as stream:
        stream.write(markdown if markdown.endswith("\n") else markdown + "\n")
        stream.write("\n")
    return True
