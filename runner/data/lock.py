"""`runner dataset lock`: record hashes and counts in `dataset.yaml`, keeping its comments."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from runner.data.fingerprint import Fingerprint, fingerprint
from runner.errors import InputError, SpecError
from runner.findings import Finding, Severity, quote
from runner.repofiles import UnsafePathError, declared_file
from runner.specs.bundle import AdapterBundle
from runner.specs.yamlio import dump_yaml, round_trip_yaml

SPLITS = ("train", "eval")


class UnlockableData(SpecError):
    """Data files whose counts cannot be recorded honestly; dataset.yaml is left as it was."""


@dataclass(frozen=True)
class LockResult:
    manifest: Path
    fingerprints: dict[str, Fingerprint]
    changed: bool


def lock_dataset(bundle: AdapterBundle, repo_root: Path) -> LockResult:
    manifest = bundle.directory / "dataset.yaml"
    text = bundle.docs["dataset.yaml"].text  # as loaded (bounded), not read a second time
    tree = round_trip_yaml().load(text)
    order = list(bundle.dataset.categories)
    # ruamel keeps a comment that stands above the next top-level key (`categories:`) on the
    # last key written before it; it must stay last after the lock adds keys, not sink inside.
    trailing = _take_trailing_comment(tree["files"])
    prints = {split: _fingerprint(bundle, repo_root, split) for split in SPLITS}
    _refuse_unrecordable(bundle, prints)
    for split in SPLITS:
        _record(tree["files"][split], prints[split], order)
    _put_trailing_comment(tree["files"], trailing)
    updated = dump_yaml(tree)
    if updated != text:
        manifest.write_text(updated, encoding="utf-8")
    return LockResult(manifest, prints, updated != text)


def _fingerprint(bundle: AdapterBundle, repo_root: Path, split: str) -> Fingerprint:
    relative = getattr(bundle.dataset.files, split).path
    try:
        data_file = declared_file(repo_root, relative, what=f"files.{split}")
    except UnsafePathError as error:
        raise InputError(f"{bundle.path}/dataset.yaml: files.{split}.path: {error}") from None
    return fingerprint(data_file, relative)


def _refuse_unrecordable(bundle: AdapterBundle, prints: dict[str, Fingerprint]) -> None:
    """Counts that include unreadable lines or undeclared categories would make the manifest
    vouch for data that validate rejects: refuse before anything is written."""
    manifest = f"{bundle.path}/dataset.yaml"
    problems: list[Finding] = []
    unreadable = 0
    for split in SPLITS:
        found = prints[split]
        problems += found.unreadable + _undeclared(bundle, split, found, manifest)
        unreadable += found.unreadable_count - len(found.unreadable)
    if problems:
        more = f" (and {unreadable} more unreadable line(s))" if unreadable else ""
        raise UnlockableData(
            f"{manifest} not changed: the data files have the problems above{more}; fix them "
            "and lock again",
            problems,
        )


def _undeclared(
    bundle: AdapterBundle, split: str, found: Fingerprint, manifest: str
) -> list[Finding]:
    declared = bundle.dataset.categories
    path = getattr(bundle.dataset.files, split).path
    problems = []
    for category, count in sorted(found.category_counts.items()):
        if category in declared:
            continue
        lines = found.category_lines[category]
        shown = ", ".join(map(str, lines))
        if count > len(lines):
            shown += f", ... ({count} records)"
        problems.append(
            Finding(
                "data.unknown-category",
                Severity.ERROR,
                path,
                lines[0],
                f"category {quote(category)} is not declared in {manifest} "
                f"(line{'s' if count > 1 else ''} {shown})",
                f"declare it under `categories:` in {manifest} with its minimums, or fix "
                f"the records' category (declared: {', '.join(declared)})",
            )
        )
    return problems


def _last_entry(node: CommentedMap) -> tuple[CommentedMap, object]:
    """The mapping and key written last in `node`'s block: the deepest last key."""
    key = list(node)[-1]
    value = node[key]
    if isinstance(value, CommentedMap) and value:
        return _last_entry(value)
    return node, key


def _take_trailing_comment(node: CommentedMap) -> Any:
    mapping, key = _last_entry(node)
    slots = mapping.ca.items.get(key)
    if not slots or len(slots) < 3 or slots[2] is None:
        return None
    token, slots[2] = slots[2], None
    return token


def _put_trailing_comment(node: CommentedMap, token: Any) -> None:
    if token is None:
        return
    mapping, key = _last_entry(node)
    slots = mapping.ca.items.setdefault(key, [None, None, None, None])
    slots[2] = token


def _record(entry: CommentedMap, found: Fingerprint, category_order: list[str]) -> None:
    entry["sha256"] = found.sha256
    entry["examples"] = found.examples
    rank = {name: i for i, name in enumerate(category_order)}
    ordered = sorted(
        found.category_counts.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])
    )
    counts = CommentedMap(ordered)
    entry["category_counts"] = counts
