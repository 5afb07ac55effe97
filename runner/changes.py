"""Which adapters a change touches: its own directory, a data file or schema its manifest
names, or anything under policies/ (which re-validates every adapter)."""

from __future__ import annotations

from pathlib import Path

from runner.specs import load_adapter
from runner.workspace import Workspace


def affected_adapters(workspace: Workspace, changed: list[str]) -> list[Path]:
    everything = workspace.list_adapter_dirs()
    if any(path.startswith("policies/") for path in changed):
        return everything
    touched = {
        parts[1] for p in changed if len(parts := p.split("/")) > 2 and parts[0] == "adapters"
    }
    data_dirs = {p.rsplit("/", 1)[0] for p in changed if p.startswith("datasets/")}
    changed_set = set(changed)
    affected = []
    for directory in everything:
        if directory.name in touched or _uses(workspace, directory, changed_set, data_dirs):
            affected.append(directory)
    return affected


def _uses(workspace: Workspace, directory: Path, changed: set[str], data_dirs: set[str]) -> bool:
    bundle = load_adapter(workspace, directory).bundle
    if bundle is None:
        return False
    manifest = bundle.dataset
    referenced = [manifest.files.train.path, manifest.files.eval.path]
    if manifest.answer_schema:
        referenced.append(manifest.answer_schema)
    return any(p in changed or p.rsplit("/", 1)[0] in data_dirs for p in referenced)
