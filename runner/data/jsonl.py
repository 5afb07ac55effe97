"""Reading JSONL in byte ranges, so several processes can check one large file without
loading it, and every line keeps its number; and the one JSON parser for input the runner did
not write (records, model outputs, answer schemas), with limits on depth, number length and
Unicode that a hostile line cannot get past."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from runner.findings import Finding, Severity

MAX_RECORD_BYTES = 1 << 20
"""Longer lines are reported and skipped: no chat example of a small model is 1 MB."""

_CHUNK = 1 << 20

MAX_JSON_DEPTH = 64
"""Deeper JSON is refused: chat records, answers and schemas are a few levels deep, and
every recursive reader of the value (the schema validator among them) stays far from
Python's recursion limit."""

MAX_JSON_INT_DIGITS = 100
"""Longer integers are refused: no count, id or limit needs them, and converting a long digit
string costs time quadratic in its length."""

# A \uD800-\uDFFF escape not paired as high-then-low decodes to a lone surrogate, which
# cannot be encoded as UTF-8 and breaks every later reader; a raw one (in text that did not
# come from UTF-8 bytes) likewise.
_LONE_SURROGATE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    r"|[\ud800-\udfff]"
)


class JsonLimitError(ValueError):
    """Valid JSON that is beyond what the runner reads: too deep, too long a number, or a
    string that is not Unicode."""


class RecordProblem(ValueError):
    """Why one JSONL line is not a usable JSON object, with the rule that reports it."""

    def __init__(self, rule: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.rule, self.message, self.hint = rule, message, hint


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise JsonLimitError(
            f"an integer of {len(digits.lstrip('-'))} digits; integers over "
            f"{MAX_JSON_INT_DIGITS} digits are not read"
        )
    return int(digits)


_DECODER = json.JSONDecoder(parse_int=_bounded_int)


def parse_json(text: str) -> Any:
    """`json.loads` within the limits above; JSONDecodeError or JsonLimitError otherwise."""
    return _within_limits(text, 0, lambda: (_DECODER.decode(text), len(text)))


def parse_json_prefix(text: str, start: int) -> Any:
    """The JSON value that starts at `start` in `text` (more text may follow it), within the
    limits above; JSONDecodeError or JsonLimitError otherwise."""
    return _within_limits(text, start, lambda: _DECODER.raw_decode(text, start))


def _within_limits(text: str, start: int, decode: Callable[[], tuple[Any, int]]) -> Any:
    try:
        value, end = decode()
    except RecursionError:
        raise JsonLimitError(_too_deep()) from None
    # Counting brackets (those in strings included) is cheap and rules out most values.
    brackets = text.count("[", start, end) + text.count("{", start, end)
    if brackets > MAX_JSON_DEPTH and _depth(value) > MAX_JSON_DEPTH:
        raise JsonLimitError(_too_deep())
    lone = _LONE_SURROGATE.search(text, start, end)
    if lone is not None and not _encodable(value):
        found = lone.group()
        shown = found if found.startswith("\\") else f"\\u{ord(found):04x}"
        raise JsonLimitError(
            f"a lone surrogate {shown} at column {lone.start() + 1}: not a Unicode character; "
            "write the character itself, or a high and low surrogate pair"
        )
    return value


def _too_deep() -> str:
    return f"nested deeper than {MAX_JSON_DEPTH} levels"


def _depth(value: Any) -> int:
    """Nesting depth of a decoded value, walked without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            if level > MAX_JSON_DEPTH:
                break
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, level + 1) for child in children)
    return deepest


def _encodable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
    try:
        return json_object_of(raw), None
    except RecordProblem as problem:
        return None, Finding(
            problem.rule, Severity.ERROR, path, line, problem.message, problem.hint
        )


def json_object_of(raw: bytes) -> dict[str, Any]:
    """One JSONL line as a JSON object; RecordProblem saying why it is not one."""
    if len(raw) > MAX_RECORD_BYTES:
        raise RecordProblem(
            "data.record-size",
            f"record of {len(raw) / 1e6:.1f} MB; records over {MAX_RECORD_BYTES >> 20} MB are not "
            "checked or trained on",
            "split it, or remove it from the file",
        )
    if b"\x00" in raw:
        raise RecordProblem(
            "data.binary", "binary content (NUL byte); expected one JSON object per line"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RecordProblem(
            "data.encoding",
            f"not UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1})",
            "save the file as UTF-8",
        ) from None
    try:
        record = parse_json(text)
    except json.JSONDecodeError as err:
        raise RecordProblem("data.json", f"not JSON: {err.msg} at column {err.colno}") from None
    except JsonLimitError as err:
        raise RecordProblem("data.json", f"not read: {err}") from None
    if not isinstance(record, dict):
        raise RecordProblem("data.json", f"expected a JSON object, got {type(record).__name__}")
    return record


def worker_count() -> int:
    return max(1, min(os.cpu_count() or 1, 8))
