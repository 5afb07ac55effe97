"""What `dataset.yaml` records about a data file: its hash and its counts, read in one
streaming pass so memory stays flat however large the file is."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from runner.data.jsonl import decode_record
from runner.findings import Finding, Severity, quote

MAX_KEPT = 20
"""Lines kept per kind of problem: enough to act on, and a hostile file cannot grow them."""


@dataclass
class Fingerprint:
    sha256: str
    examples: int
    category_counts: Counter[str] = field(default_factory=Counter)
    category_lines: dict[str, list[int]] = field(default_factory=dict)
    """The first lines of each category (at most MAX_KEPT), to point at an undeclared one."""
    unreadable: list[Finding] = field(default_factory=list)
    """Lines with no readable category (the first MAX_KEPT), each saying why."""
    unreadable_count: int = 0


def fingerprint(path: Path, shown: str) -> Fingerprint:
    """Hash and counts of the data file at `path`; findings name it `shown`."""
    digest = hashlib.sha256()
    found = Fingerprint("", 0)
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            digest.update(raw)
            if raw.strip():
                found.examples += 1
                _count(found, raw, line_no, shown)
    found.sha256 = digest.hexdigest()
    return found


def _count(found: Fingerprint, raw: bytes, line_no: int, shown: str) -> None:
    record, problem = decode_record(raw, line_no, shown)
    category = record.get("category") if record else None
    if isinstance(category, str):
        found.category_counts[category] += 1
        lines = found.category_lines.setdefault(category, [])
        if len(lines) < MAX_KEPT:
            lines.append(line_no)
        return
    found.unreadable_count += 1
    if len(found.unreadable) >= MAX_KEPT:
        return
    if record is not None:  # a JSON object, without a string category
        missing = "category" not in record
        problem = Finding(
            "data.missing-key" if missing else "data.key-type",
            Severity.ERROR,
            shown,
            line_no,
            f"missing key {quote('category')}" if missing else "category: expected a string",
            "every record names one of the categories declared in dataset.yaml",
        )
    if problem is not None:
        found.unreadable.append(problem)
