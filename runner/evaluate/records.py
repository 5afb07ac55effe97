"""The eval split's records, which generation and scoring both read: a module of their own,
so that neither of those imports the other for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner.data.jsonl import parse_json
from runner.errors import InputError
from runner.specs.bundle import AdapterBundle


def eval_records(bundle: AdapterBundle, repo_root: Path) -> list[dict[str, Any]]:
    """The evaluated records, in file order (the first `max_items` when set)."""
    relative = bundle.dataset.files.eval.path
    path = repo_root / relative
    records = []
    with path.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if line.strip():
                try:
                    records.append(parse_json(line))
                except ValueError as error:
                    raise InputError(
                        f"{bundle.dataset.files.eval.path}:{number}: {error}"
                    ) from None
    limit = bundle.evaluation.max_items
    return records if limit is None else records[:limit]
