"""Reading JSONL in byte ranges, so several processes can check one large file without
loading it, and every line keeps its number."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from runner.findings import Finding, Severity

MAX_RECORD_BYTES = 1 << 20
"""Longer lines are reported and skipped: no chat example of a small model is 1 MB."""

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int
    first_line: int


def split_ranges(path: Path, parts: int) -> list[ByteRange]:
    """Cut a file into about `parts` ranges that begin at line starts, with line numbers."""
    size = path.stat().st_size
    if parts <= 1 or size == 0:
        return [ByteRange(0, size, 1)]
    cuts = [0]
    with path.open("rb") as handle:
        for i in range(1, parts):
            handle.seek(max(size * i // parts, cuts[-1]))
            handle.readline()  # finish the line the cut landed in
            if handle.tell() < size:
                cuts.append(handle.tell())
    cuts.append(size)
    ranges, line = [], 1
    with path.open("rb") as handle:
        for start, end in pairwise(cuts):
            if end <= start:
                continue
            ranges.append(ByteRange(start, end, line))
            line += _count_newlines(handle, start, end)
    return ranges


def _count_newlines(handle: Any, start: int, end: int) -> int:
    handle.seek(start)
    count, left = 0, end - start
    while left > 0:
        block = handle.read(min(_CHUNK, left))
        count += block.count(b"\n")
        left -= len(block)
    return count


def iter_lines(path: Path, span: ByteRange) -> Iterator[tuple[int, bytes]]:
    """(line number, raw bytes) for each line starting in the range; blank lines skipped."""
    with path.open("rb") as handle:
        handle.seek(span.start)
        position, number = span.start, span.first_line
        while position < span.end:
            raw = handle.readline()
            if not raw:
                break
            position += len(raw)
            if raw.strip():
                yield number, raw
            number += 1


def decode_record(raw: bytes, line: int, path: str) -> tuple[dict[str, Any] | None, Finding | None]:
    """One JSONL line as a JSON object, or the finding that says why it is not one."""

    def problem(rule: str, message: str, hint: str = "") -> tuple[None, Finding]:
        return None, Finding(rule, Severity.ERROR, path, line, message, hint)

    if len(raw) > MAX_RECORD_BYTES:
        return problem(
            "data.record-size",
            f"record of {len(raw) / 1e6:.1f} MB; records over {MAX_RECORD_BYTES >> 20} MB are not "
            "checked or trained on",
            "split it, or remove it from the file",
        )
    if b"\x00" in raw:
        return problem(
            "data.binary", "binary content (NUL byte); expected one JSON object per line"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return problem(
            "data.encoding",
            f"not UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})",
            "save the file as UTF-8",
        )
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        return problem("data.json", f"not valid JSON: {err.msg} at column {err.colno}")
    if not isinstance(record, dict):
        return problem("data.json", f"expected a JSON object, got {type(record).__name__}")
    return record, None


def worker_count() -> int:
    return max(1, min(os.cpu_count() or 1, 8))
