"""`runner new`: the next version of an adapter, made by round-tripping the previous
version's specs so that comments and key order survive and only identity fields change."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml.comments import CommentedMap

from runner.errors import InputError
from runner.findings import quote
from runner.specs.bundle import SPEC_FILES, AdapterBundle
from runner.specs.yamlio import dump_yaml, round_trip_yaml
from runner.workspace import Workspace, split_adapter_dirname


def scaffold_version(
    workspace: Workspace, target: str, source: AdapterBundle, dataset_version: str | None = None
) -> Path:
    parsed = split_adapter_dirname(target)
    if parsed is None:
        raise InputError(f"{quote(target)} is not an adapter directory name; use `<name>-v<N>`")
    name, version = parsed
    if name == source.adapter.name and version <= source.adapter.version:
        raise InputError(
            f"{target}: version {version} is not newer than {source.dirname}; "
            f"use {name}-v{source.adapter.version + 1}"
        )
    directory = workspace.adapters_dir / target
    if directory.exists():
        raise InputError(f"{workspace.rel(directory)} already exists; pick another version")

    texts = {}
    for spec_file in SPEC_FILES:
        tree = round_trip_yaml().load(source.docs[spec_file.filename].text)  # read, bounded
        if spec_file.filename == "adapter.yaml":
            _bump_identity(tree, name, version, parent=source.dirname)
        elif spec_file.filename == "dataset.yaml" and dataset_version is not None:
            _repoint_dataset(tree, source.dataset.version, dataset_version)
        texts[spec_file.filename] = dump_yaml(tree)

    directory.mkdir(parents=True)
    for filename, text in texts.items():
        (directory / filename).write_text(text, encoding="utf-8")
    (directory / "README.md").write_text(_readme(name, version, source.dirname), encoding="utf-8")
    return directory


def _bump_identity(tree: CommentedMap, name: str, version: int, parent: str) -> None:
    if tree.get("name") != name:
        tree["name"] = name
    tree["version"] = version
    lineage = tree.get("lineage")
    if not isinstance(lineage, CommentedMap):
        lineage = CommentedMap()
        tree["lineage"] = lineage
    lineage["parent"] = parent


def _repoint_dataset(tree: CommentedMap, old_version: str, new_version: str) -> None:
    """Point the manifest at `datasets/<name>/<new_version>/`; its hashes must be locked anew."""
    tree["version"] = new_version
    for split in ("train", "eval"):
        entry = tree["files"][split]
        entry["path"] = entry["path"].replace(f"/{old_version}/", f"/{new_version}/")
        for recorded in ("sha256", "examples", "category_counts"):
            entry.pop(recorded, None)


def _readme(name: str, version: int, parent: str) -> str:
    return (
        f"# {name} v{version}\n\n"
        f"Derived from `{parent}`. This file becomes the body of the model card.\n\n"
        "## What changed in this version\n"
        f"- Say what changed since {parent} (data, training config, thresholds) and why.\n"
    )
