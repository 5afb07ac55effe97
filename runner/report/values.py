"""How values look in reports, the same in the terminal and in markdown."""

from __future__ import annotations

from typing import Any

from runner.specs.diff import is_missing


def show_value(value: Any) -> str:
    if is_missing(value):
        return "(absent)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def show_count(value: int | None) -> str:
    return "?" if value is None else str(value)
