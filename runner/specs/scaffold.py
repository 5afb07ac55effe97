"""`runner new`: the next version of an adapter, made by round-tripping the previous
version's specs so that comments and key order survive and only identity fields change."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml.comments import CommentedMap

from runner.errors import InputError
from runner.findings import Finding, Severity, quote
from runner.repofiles import UnsafePathError, read_regular_bytes
from runner.specs.bundle import SPEC_FILES, AdapterBundle
from runner.specs.yamlio import dump_yaml, round_trip_yaml
from runner.workspace import Workspace, split_adapter_dirname

README_PLACEHOLDER = "Say what changed since"
"""The start of the line `runner new` leaves in a new version's README for its author."""


def scaffold_version(
    workspace: Workspace, target: str, source: AdapterBundle, dataset_version: str | None = None
) -> Path:
    parsed = split_adapter_dirname(target)
    if parsed is None:
        raise InputError(f"{quote(target)} is not an adapter directory name; use `<name>-v<N>`")
    name, version = parsed
    if name != source.adapter.name:
        raise InputError(_other_name(workspace, target, source))
    if version <= source.adapter.version:
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
            _bump_identity(tree, version, parent=source.dirname)
        elif spec_file.filename == "dataset.yaml" and dataset_version is not None:
            _repoint_dataset(tree, source.dataset.version, dataset_version)
        texts[spec_file.filename] = dump_yaml(tree)

    directory.mkdir(parents=True)
    for filename, text in texts.items():
        (directory / filename).write_text(text, encoding="utf-8")
    (directory / "README.md").write_text(_readme(name, version, source.dirname), encoding="utf-8")
    return directory


def _other_name(workspace: Workspace, target: str, source: AdapterBundle) -> str:
    """Why `target` cannot come from `source`, and the commands the user likely meant: a
    version keeps its name, its publish repo and its history, so it is never renamed."""
    name, version = split_adapter_dirname(target) or (target, 0)
    same = f"{source.adapter.name}-v{max(version, source.adapter.version + 1)}"
    message = (
        f"{target} would be a version of {quote(name)}, but {source.dirname} is a version of "
        f"{quote(source.adapter.name)} (publish repo {source.adapter.publish.repo_id}); for its "
        f"next version run `runner new {same} --from {source.dirname}`"
    )
    latest = _latest_version(workspace, name)
    if latest is not None:
        return message + f", or `runner new {target} --from {latest}` to continue {name}"
    return message + (
        f"; a new adapter name starts as its own folder: copy the specs to adapters/{target} "
        "and give it its own name, version and publish.repo_id"
    )


def _latest_version(workspace: Workspace, name: str) -> str | None:
    versions = [
        (parsed[1], directory.name)
        for directory in workspace.list_adapter_dirs()
        if (parsed := split_adapter_dirname(directory.name)) and parsed[0] == name
    ]
    return max(versions)[1] if versions else None


def _bump_identity(tree: CommentedMap, version: int, parent: str) -> None:
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
        f"- {README_PLACEHOLDER} {parent} (data, training config, thresholds) and why.\n"
    )


def readme_findings(bundle: AdapterBundle) -> list[Finding]:
    """The README becomes the model card's body: the scaffold's placeholder left in it would
    be published as the description of the version, and a link would publish what it names."""
    shown = f"{bundle.path}/README.md"
    try:
        text = read_regular_bytes(bundle.directory / "README.md", shown=shown)
    except FileNotFoundError:
        return []  # the card then says the adapter's description
    except UnsafePathError as error:
        message = str(error).removeprefix(f"{shown}: ")
        return [Finding("spec.unsafe-path", Severity.ERROR, shown, None, message)]
    except OSError as error:
        return [
            Finding(
                "spec.unreadable", Severity.ERROR, shown, None, f"cannot read: {error.strerror}"
            )
        ]
    lines = text.decode("utf-8", errors="replace").splitlines()
    return [
        Finding(
            "spec.readme-placeholder",
            Severity.ERROR,
            shown,
            number,
            "still holds the placeholder `runner new` wrote; it becomes the model card's body",
            "say what changed in this version (data, training config, thresholds) and why",
            line.index(README_PLACEHOLDER) + 1,
        )
        for number, line in enumerate(lines, start=1)
        if README_PLACEHOLDER in line
    ]
