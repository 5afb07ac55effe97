"""`runner dataset lock`: record hashes and counts in `dataset.yaml`, keeping its comments."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from runner.data.fingerprint import Fingerprint, fingerprint
from runner.errors import InputError
from runner.repofiles import UnsafePathError, declared_file
from runner.specs.bundle import AdapterBundle
from runner.specs.yamlio import dump_yaml, round_trip_yaml

SPLITS = ("train", "eval")


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
    prints: dict[str, Fingerprint] = {}
    for split in SPLITS:
        relative = getattr(bundle.dataset.files, split).path
        try:
            data_file = declared_file(repo_root, relative, what=f"files.{split}")
        except UnsafePathError as error:
            raise InputError(f"{bundle.path}/dataset.yaml: files.{split}.path: {error}") from None
        prints[split] = fingerprint(data_file)
        _record(tree["files"][split], prints[split], order)
    _put_trailing_comment(tree["files"], trailing)
    updated = dump_yaml(tree)
    if updated != text:
        manifest.write_text(updated, encoding="utf-8")
    return LockResult(manifest, prints, updated != text)


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
