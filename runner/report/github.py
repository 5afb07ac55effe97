"""GitHub Actions workflow commands: one annotation per finding, shown on the PR diff."""

from __future__ import annotations

from collections.abc import Iterable

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
