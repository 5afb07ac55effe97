"""Errors a user can act on. The CLI prints their message and exits with their code;
anything else escaping is a bug in the runner."""

from __future__ import annotations

from collections.abc import Sequence

from runner.findings import Finding


class RunnerError(Exception):
    """A failure whose message says what went wrong and what to do."""

    exit_code = 1


class InputError(RunnerError):
    """The input cannot be used at all (missing adapter, broken spec, bad arguments)."""

    exit_code = 2


class SpecError(InputError):
    """Specs that did not load; `findings` holds every problem found, not just the first."""

    def __init__(self, summary: str, findings: Sequence[Finding]) -> None:
        super().__init__(summary)
        self.findings = list(findings)
