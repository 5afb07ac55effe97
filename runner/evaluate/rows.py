"""`eval_outputs.jsonl`: one generated output per (role, eval item), as `runner/train/train.py`
writes it, and its join with the eval records it was generated from."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args

from runner.data.jsonl import json_object_of
from runner.errors import InputError
from runner.findings import quote
from runner.train import train

Role = Literal["candidate", "base", "incumbent"]
ROLES: tuple[Role, ...] = get_args(Role)
_SHOWN_PROBLEMS = 10


@dataclass(frozen=True, slots=True)
class OutputRow:
    item_id: str
    category: str | None
    prompt_sha256: str
    role: Role
    output: str
    latency_ms: float
    """Wall time of the batch the item was generated in."""
    prompt_tokens: int
    output_tokens: int
    line: int | None = None
    """Where the row is in its file, for findings; None for rows built in memory."""


_FIELDS: dict[str, tuple[type, ...]] = {
    "item_id": (str,),
    "category": (str, type(None)),
    "prompt_sha256": (str,),
    "role": (str,),
    "output": (str,),
    "latency_ms": (int, float),
    "prompt_tokens": (int,),
    "output_tokens": (int,),
}


def read_rows(path: Path) -> list[OutputRow]:
    """Every row of an outputs file; InputError naming `file:line` for each bad line."""
    rows: list[OutputRow] = []
    problems: list[str] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                rows.append(parse_row(raw, number))
            except ValueError as err:
                problems.append(f"{path}:{number}: {err}")
    _raise_if(problems, f"{path} has {len(problems)} bad line(s)")
    return rows


def parse_row(raw: bytes, line: int | None = None) -> OutputRow:
    """One line of an outputs file, read with the data checks' limits (size, encoding, depth,
    number length); ValueError saying what is wrong."""
    data = json_object_of(raw)
    missing = [key for key in _FIELDS if key not in data]
    if missing:
        raise ValueError(f"missing key(s) {', '.join(map(quote, missing))}")
    for key, types in _FIELDS.items():
        # bool is an int to Python; a true/false count or latency is a writer bug.
        if isinstance(data[key], bool) or not isinstance(data[key], types):
            raise ValueError(f"{key}: unexpected {type(data[key]).__name__} value")
    if data["role"] not in ROLES:
        raise ValueError(f"role {quote(data['role'])} is not one of {', '.join(ROLES)}")
    return OutputRow(**{key: data[key] for key in _FIELDS}, line=line)


def prompt_sha256(record: dict[str, Any]) -> str:
    """The prompt hash `train.py` writes into each row, of the dataset record it came from."""
    return train.prompt_sha256(train.prompt_messages(record))


class Pair(NamedTuple):
    row: OutputRow
    record: dict[str, Any]


def join(rows: Iterable[OutputRow], records: Sequence[dict[str, Any]]) -> dict[Role, list[Pair]]:
    """Each role's rows paired with their eval records, in record order. `records` are the
    items that were evaluated (the first `max_items` when eval.yaml sets it). Raises
    InputError naming the item of every row without a record, every record without a row
    for a role that has rows, every duplicate, and every prompt that changed since
    generation."""
    by_id = {str(record["id"]): record for record in records}
    problems: list[str] = []
    placed: dict[Role, dict[str, OutputRow]] = {}
    for row in rows:
        seen = placed.setdefault(row.role, {})
        record = by_id.get(row.item_id)
        if row.item_id in seen:
            problems.append(f"{_where(row)}: a second {row.role} row for item {quote(row.item_id)}")
        elif record is None:
            problems.append(
                f"{_where(row)}: {row.role} row for item {quote(row.item_id)}, "
                "which is not an eval record"
            )
        elif row.prompt_sha256 != prompt_sha256(record):
            problems.append(
                f"{_where(row)}: {row.role} row for item {quote(row.item_id)} was "
                "generated from a different prompt than the eval record has now"
            )
        seen.setdefault(row.item_id, row)
    for role, seen in placed.items():
        problems += [
            f"eval record {quote(item_id)} has no {role} row"
            for item_id in by_id
            if item_id not in seen
        ]
    _raise_if(problems, "the outputs do not match the eval records")
    return {
        role: [Pair(placed[role][item_id], record) for item_id, record in by_id.items()]
        for role in ROLES
        if role in placed
    }


def _where(row: OutputRow) -> str:
    return "row" if row.line is None else f"line {row.line}"


def _raise_if(problems: list[str], summary: str) -> None:
    if not problems:
        return
    shown = problems[:_SHOWN_PROBLEMS]
    more = len(problems) - len(shown)
    lines = [f"  - {problem}" for problem in shown]
    if more:
        lines.append(f"  - and {more} more")
    raise InputError(f"{summary}:\n" + "\n".join(lines))
