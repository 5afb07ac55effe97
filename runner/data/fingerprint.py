"""What `dataset.yaml` records about a data file: its hash and its counts, read in one
streaming pass so memory stays flat however large the file is."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from runner.data.jsonl import decode_record


@dataclass
class Fingerprint:
    sha256: str
    examples: int
    category_counts: Counter[str] = field(default_factory=Counter)
    unparsed_lines: list[int] = field(default_factory=list)
    """Lines with no readable category (the same decoding as the checks); validate says why."""


def fingerprint(path: Path) -> Fingerprint:
    digest = hashlib.sha256()
    examples = 0
    categories: Counter[str] = Counter()
    unparsed: list[int] = []
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            digest.update(raw)
            if not raw.strip():
                continue
            examples += 1
            record, _ = decode_record(raw, line_no, str(path))
            category = record.get("category") if record else None
            if isinstance(category, str):
                categories[category] += 1
            else:
                unparsed.append(line_no)
    return Fingerprint(digest.hexdigest(), examples, categories, unparsed)
