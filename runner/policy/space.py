"""`policies/space.yaml`: a rendered training Space holds exactly the allowed files, a
pinned Dockerfile, and no secret or attribution line. Checked before every sync."""

from __future__ import annotations

import re
import shlex
from typing import Literal

from pydantic import Field

from runner.findings import Finding, Severity, quote
from runner.policy import TextPolicies
from runner.specs.base import SpecModel

_PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-\[\],]*==[0-9][A-Za-z0-9.+!\-]*$")


class ForbiddenLine(SpecModel):
    pattern: str
    message: str


class SpacePolicy(SpecModel):
    kind: Literal["space"]
    files: list[str] = Field(min_length=1)
    forbidden_dockerfile_lines: list[ForbiddenLine] = Field(default_factory=list)


def check_space(
    files: dict[str, str], policy: SpacePolicy, text: TextPolicies, *, where: str
) -> list[Finding]:
    """Findings for a rendered Space; `where` prefixes paths (e.g. `space:ainative/trainer`)."""

    def finding(path: str, line: int | None, rule: str, message: str) -> Finding:
        return Finding(rule, Severity.ERROR, f"{where}/{path}", line, message)

    found = [
        finding(
            name, None, "space.file-set", f"{quote(name)} is not one of {', '.join(policy.files)}"
        )
        for name in sorted(set(files) - set(policy.files))
    ]
    found += [
        finding(name, None, "space.file-set", "missing")
        for name in policy.files
        if name not in files
    ]
    for number, line in enumerate(files.get("Dockerfile", "").splitlines(), start=1):
        for rule in policy.forbidden_dockerfile_lines:
            if re.search(rule.pattern, line):
                found.append(finding("Dockerfile", number, "space.dockerfile", rule.message))
        for unpinned in _unpinned_packages(line):
            found.append(
                finding(
                    "Dockerfile", number, "space.unpinned", f"{quote(unpinned)} is not pinned (==)"
                )
            )
    for name, content in files.items():
        found += text.scan(content, path=f"{where}/{name}", line=1, target="space", multiline=True)
    return found


def _unpinned_packages(line: str) -> list[str]:
    """Package arguments of a `pip install` line that are not `name==version`."""
    if "pip install" not in line:
        return []
    words = shlex.split(line.split("pip install", 1)[1])
    packages, skip_next = [], False
    for word in words:
        if skip_next or word in ("&&", "\\"):
            skip_next = False
            continue
        if word.startswith("-"):
            skip_next = word in ("--index-url", "--extra-index-url", "-i", "-f", "--find-links")
            continue
        packages.append(word)
    return [p for p in packages if not _PIN.match(p)]
