"""YAML that remembers where things are.

Specs load through ruamel.yaml's round-trip loader so that every value keeps its line and
column; errors can then name `path:line:column`. The same loader and dumper serve the
commands that edit specs in place (`runner new`, `runner dataset lock`), which keeps comments
and key order.

Every spec and policy file is hostile input until shown otherwise: it is read only as a
regular file of bounded size, and its parse events are counted against the limits below
before anything is built from them, so a 500-byte alias bomb or a file of 100,000 keys is
a finding in milliseconds rather than gigabytes and minutes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    Event,
    MappingStartEvent,
    ScalarEvent,
)
from ruamel.yaml.reader import ReaderError

from runner.findings import Finding, Severity
from runner.repofiles import UnsafePathError, read_regular_bytes

Loc = Sequence[str | int]
Position = tuple[int, int]

# Far above what a spec or policy file holds (a few levels, a few hundred values, no
# aliases), far below what takes a second to build.
MAX_YAML_DEPTH = 32
MAX_YAML_VALUES = 10_000
"""Scalars and collections in a file, each alias counted as the values it repeats."""
MAX_YAML_ALIASES = 100
MAX_YAML_ITEMS = 1_000
"""Keys of one mapping, or items of one sequence."""
MAX_YAML_INT_DIGITS = 100

_INT_TAG = "tag:yaml.org,2002:int"
_INT_LIKE = re.compile(r"[-+]?(?:0x|0o|0b)?(?P<digits>[0-9][0-9_]*|(?<=0x)[0-9a-fA-F_]+)")
_DIRECTIVE = re.compile(r"^%YAML[ \t]+(\S*)", re.MULTILINE)


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


class YamlLimitError(ValueError):
    """A YAML file beyond the limits above, with where it crossed one."""

    def __init__(self, event: Event, message: str, hint: str) -> None:
        super().__init__(message)
        self.line = event.start_mark.line + 1
        self.column = event.start_mark.column + 1
        self.message, self.hint = message, hint


@dataclass
class _Open:
    """A mapping or sequence whose end event has not come yet."""

    start: Event
    values_before: int
    children: int = 0


@dataclass
class _Budget:
    """What the events of one file have spent of the limits so far."""

    values: int = 0
    aliases: int = 0
    open: list[_Open] = field(default_factory=list)
    anchored: dict[str, int] = field(default_factory=dict)
    """Anchor name: values its node holds, aliases expanded."""

    def spend(self, event: Event) -> None:
        if isinstance(event, CollectionEndEvent):
            self._close(self.open.pop())
            return
        if not isinstance(event, ScalarEvent | AliasEvent | CollectionStartEvent):
            return
        if self.open:
            self._count_child(self.open[-1], event)
        if isinstance(event, AliasEvent):
            self._alias(event)
        elif isinstance(event, ScalarEvent):
            _check_integer(event)
            self._add(event, 1, aliased=False)
            if event.anchor:
                self.anchored[event.anchor] = 1
        else:
            if len(self.open) >= MAX_YAML_DEPTH:
                raise YamlLimitError(
                    event,
                    f"nested deeper than {MAX_YAML_DEPTH} levels",
                    "a spec is a few levels deep: flatten the structure",
                )
            self.open.append(_Open(event, self.values))
            self._add(event, 1, aliased=False)

    def _close(self, closed: _Open) -> None:
        anchor = closed.start.anchor
        if anchor:
            self.anchored[anchor] = self.values - closed.values_before

    def _count_child(self, parent: _Open, child: Event) -> None:
        parent.children += 1
        mapping = isinstance(parent.start, MappingStartEvent)
        count = (parent.children + 1) // 2 if mapping else parent.children
        if count > MAX_YAML_ITEMS:
            what = "keys in the mapping" if mapping else "items in the list"
            raise YamlLimitError(
                child,
                f"more than {MAX_YAML_ITEMS} {what} that starts at line "
                f"{parent.start.start_mark.line + 1}",
                "a spec or policy file is short; split the data into its own file",
            )

    def _alias(self, event: AliasEvent) -> None:
        self.aliases += 1
        if self.aliases > MAX_YAML_ALIASES:
            raise YamlLimitError(
                event,
                f"more than {MAX_YAML_ALIASES} aliases",
                "write the values out instead of repeating anchors",
            )
        if any(node.start.anchor == event.anchor for node in self.open):
            raise YamlLimitError(
                event,
                f"the alias *{event.anchor} refers to the node that holds it",
                "YAML anchors may not be recursive here",
            )
        # An unknown anchor counts as one value: the loader reports it as undefined.
        self._add(event, self.anchored.get(event.anchor, 1), aliased=True)

    def _add(self, event: Event, values: int, *, aliased: bool) -> None:
        self.values += values
        if self.values > MAX_YAML_VALUES:
            message = (
                f"aliases expand the file to more than {MAX_YAML_VALUES} values here"
                if aliased or self.aliases
                else f"more than {MAX_YAML_VALUES} values in one file"
            )
            raise YamlLimitError(
                event, message, "a spec or policy file holds a few hundred values at most"
            )


def _check_integer(event: ScalarEvent) -> None:
    """Plain scalars that will become integers (and explicit `!!int`), by their digits."""
    plain_int = event.style is None or str(event.tag) == _INT_TAG
    number = _INT_LIKE.fullmatch(event.value) if plain_int else None
    if number is None:
        return
    digits = len(number.group("digits").replace("_", ""))
    if digits > MAX_YAML_INT_DIGITS:
        raise YamlLimitError(
            event,
            f"a number of {digits} digits; numbers over {MAX_YAML_INT_DIGITS} digits are not read",
            "no setting needs such a number; quote it if it is text",
        )


def _check_limits(text: str) -> None:
    """Count the parse events of `text` against the limits; YamlLimitError at the first
    one crossed. The events stream: nothing is built, so the count itself stays cheap."""
    budget = _Budget()
    for event in round_trip_yaml().parse(text):
        budget.spend(event)


def load_yaml_text(text: str, path: str) -> tuple[YamlDoc | None, list[Finding]]:
    """Parse YAML text into a mapping document; problems come back as findings."""

    def problem(line: int, column: int | None, message: str, hint: str) -> list[Finding]:
        return [Finding("spec.yaml-syntax", Severity.ERROR, path, line, message, hint, column)]

    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        return None, problem(line, None, "binary content (NUL byte); expected YAML text", "")
    try:
        _check_limits(text)
        tree = round_trip_yaml().load(text)
        data = to_plain(tree)
    except YamlLimitError as err:
        return None, [
            Finding(
                "spec.yaml-limit", Severity.ERROR, path, err.line, err.message, err.hint, err.column
            )
        ]
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
    except AssertionError as err:
        # ruamel asserts on a %YAML version it does not know (1.3) instead of raising.
        return None, _directive_problem(text, path, err)
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


def _directive_problem(text: str, path: str, err: AssertionError) -> list[Finding]:
    directive = _DIRECTIVE.search(text)
    if directive is None:
        line, message = 1, f"invalid YAML: {_one_line(str(err))}"
    else:
        line = text.count("\n", 0, directive.start()) + 1
        message = f"%YAML {directive.group(1)}: only YAML 1.1 and 1.2 are read"
    hint = "write `%YAML 1.2`, or leave the directive out"
    return [Finding("spec.yaml-syntax", Severity.ERROR, path, line, message, hint, 1)]


def read_yaml_file(file: Path, path: str) -> tuple[YamlDoc | None, list[Finding]]:
    """Read and parse a YAML file; a missing, unreadable, linked, oversized or non-UTF-8
    file is a finding."""
    try:
        raw = read_regular_bytes(file, shown=path)
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
    except UnsafePathError as err:
        message = str(err).removeprefix(f"{path}: ")
        return None, [Finding("spec.unsafe-path", Severity.ERROR, path, None, message)]
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
