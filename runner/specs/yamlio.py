"""YAML that remembers where things are.

Specs load through ruamel.yaml's round-trip loader so that every value keeps its line and
column; errors can then name `path:line:column`. The same loader and dumper serve the
commands that edit specs in place (`runner new`, `runner dataset lock`), which keeps comments
and key order.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from runner.findings import Finding, Severity

Loc = Sequence[str | int]
Position = tuple[int, int]


def round_trip_yaml() -> YAML:
    """The one YAML configuration used to read and write spec files."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never fold a long line the author wrote on one line
    yaml.representer.add_representer(type(None), _represent_null)
    return yaml


def _represent_null(representer: Any, _: None) -> Any:
    # ruamel writes None as an empty value; `null` is what people write and what they expect
    # to find again after `runner new` or `runner dataset lock` rewrote their file.
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def dump_yaml(data: Any) -> str:
    stream = io.StringIO()
    round_trip_yaml().dump(data, stream)
    return stream.getvalue()


@dataclass(frozen=True)
class YamlDoc:
    """A parsed YAML file: the round-trip tree (with positions) and the plain data."""

    path: str
    text: str
    tree: Any
    data: Any

    def position(self, loc: Loc, *, at_key: bool = False) -> Position:
        """1-based (line, column) of the value at `loc`, or of the nearest enclosing node
        that exists (a missing key points at the mapping that should hold it)."""
        node = self.tree
        best = _start_of(node)
        for depth, part in enumerate(loc):
            last = depth == len(loc) - 1
            if isinstance(node, CommentedMap) and _has_key(node, part):
                key_pos = _lc_pair(node.lc.key(part))
                if last:
                    return key_pos if at_key else _lc_pair(node.lc.value(part))
                best, node = key_pos, node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                best, node = _lc_pair(node.lc.item(part)), node[part]
            else:
                break
        return best

    def finding(
        self,
        loc: Loc,
        rule_id: str,
        message: str,
        *,
        hint: str = "",
        severity: Severity = Severity.ERROR,
        at_key: bool = False,
    ) -> Finding:
        line, column = self.position(loc, at_key=at_key)
        return Finding(rule_id, severity, self.path, line, message, hint, column)


def _has_key(node: CommentedMap, key: object) -> bool:
    try:
        return key in node
    except TypeError:  # an unhashable key from a malformed document
        return False


def _lc_pair(pair: Any) -> Position:
    line, column = pair
    return line + 1, column + 1


def _start_of(node: Any) -> Position:
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return 1, 1
    return lc.line + 1, (lc.col or 0) + 1


def to_plain(node: Any, _stack: tuple[int, ...] = ()) -> Any:
    """Round-trip nodes to plain Python (dict, list, str, int, float, bool, None), so that
    validation sees ordinary values."""
    if id(node) in _stack:
        raise ValueError("an alias refers to itself; YAML anchors may not be recursive here")
    if isinstance(node, dict):
        inner = (*_stack, id(node))
        return {_plain_key(k): to_plain(v, inner) for k, v in node.items()}
    if isinstance(node, list):
        inner = (*_stack, id(node))
        return [to_plain(v, inner) for v in node]
    for kind in (bool, int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return node


def _plain_key(key: Any) -> Any:
    return key if isinstance(key, str | int | float | bool | type(None)) else str(key)


def load_yaml_text(text: str, path: str) -> tuple[YamlDoc | None, list[Finding]]:
    """Parse YAML text into a mapping document; problems come back as findings."""

    def problem(line: int, column: int | None, message: str, hint: str) -> list[Finding]:
        return [Finding("spec.yaml-syntax", Severity.ERROR, path, line, message, hint, column)]

    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        return None, problem(line, None, "binary content (NUL byte); expected YAML text", "")
    try:
        tree = round_trip_yaml().load(text)
        data = to_plain(tree)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = _one_line(err.problem or err.context or "not valid YAML")
        started = err.context_mark
        duplicate = isinstance(err, DuplicateKeyError)  # its context adds nothing
        if err.problem and err.context and started and started.line + 1 != line and not duplicate:
            what += f" ({_one_line(err.context)} at line {started.line + 1})"
        return None, problem(
            line,
            column,
            f"invalid YAML: {what}",
            "check indentation, quoting and that each key appears once",
        )
    except ReaderError as err:
        line = text.count("\n", 0, max(err.position, 0)) + 1
        return None, problem(line, None, f"invalid YAML: {_one_line(err.reason)}", "")
    except (YAMLError, ValueError, TypeError, OverflowError) as err:
        return None, problem(1, 1, f"invalid YAML: {_one_line(str(err))}", "")
    except RecursionError:
        return None, problem(1, 1, "invalid YAML: nested too deeply", "")
    if tree is None:
        return None, problem(1, 1, "empty file; expected a mapping of keys", "")
    if not isinstance(tree, CommentedMap):
        got = type(data).__name__ if data is not None else "null"
        return None, problem(1, 1, f"expected a mapping of keys at the top level, got {got}", "")
    return YamlDoc(path, text, tree, data), []


def read_yaml_file(file: Path, path: str) -> tuple[YamlDoc | None, list[Finding]]:
    """Read and parse a YAML file; a missing, unreadable or non-UTF-8 file is a finding."""
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        return None, [
            Finding(
                "spec.missing-file",
                Severity.ERROR,
                path,
                None,
                "missing file",
                f"create {file.name} (copy it from the previous version with `runner new`)",
            )
        ]
    except OSError as err:
        return None, [
            Finding("spec.unreadable", Severity.ERROR, path, None, f"cannot read: {err.strerror}")
        ]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        return None, [
            Finding(
                "spec.encoding",
                Severity.ERROR,
                path,
                line,
                f"not UTF-8 text (byte 0x{raw[err.start]:02x})",
                "save the file as UTF-8",
            )
        ]
    return load_yaml_text(text, path)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
