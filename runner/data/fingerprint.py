"""What `dataset.yaml` records about a data file: its hash and its counts, read in one
streaming pass so memory stays flat however large the file is."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Fingerprint:
    sha256: str
    examples: int
    category_counts: Counter[str] = field(default_factory=Counter)
    unparsed_lines: list[int] = field(default_factory=list)
    """Lines whose JSON could not be read; `runner validate` says why."""


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
            category = _category_of(raw)
            if category is None:
                unparsed.append(line_no)
            else:
                categories[category] += 1
    return Fingerprint(digest.hexdigest(), examples, categories, unparsed)


def _category_of(raw: bytes) -> str | None:
    try:
        record = json.loads(raw)
    except ValueError:  # includes UnicodeDecodeError
        return None
    if not isinstance(record, dict):
        return None
    category = record.get("category")
    return category if isinstance(category, str) else None
