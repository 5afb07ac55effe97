"""`runner dataset lock`: record hashes and counts in `dataset.yaml`, keeping its comments."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    text = manifest.read_text(encoding="utf-8")
    tree = round_trip_yaml().load(text)
    order = list(bundle.dataset.categories)
    prints: dict[str, Fingerprint] = {}
    for split in SPLITS:
        relative = getattr(bundle.dataset.files, split).path
        try:
            data_file = declared_file(repo_root, relative, what=f"files.{split}")
        except UnsafePathError as error:
            raise InputError(f"{bundle.path}/dataset.yaml: files.{split}.path: {error}") from None
        prints[split] = fingerprint(data_file)
        _record(tree["files"][split], prints[split], order)
    updated = dump_yaml(tree)
    if updated != text:
        manifest.write_text(updated, encoding="utf-8")
    return LockResult(manifest, prints, updated != text)


def _record(entry: CommentedMap, found: Fingerprint, category_order: list[str]) -> None:
    entry["sha256"] = found.sha256
    entry["examples"] = found.examples
    rank = {name: i for i, name in enumerate(category_order)}
    ordered = sorted(
        found.category_counts.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])
    )
    counts = CommentedMap(ordered)
    entry["category_counts"] = counts
