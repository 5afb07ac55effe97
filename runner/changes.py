"""Which adapters a change touches: its own directory, a data file or schema its manifest
names, or anything under policies/ (which re-validates every adapter). A change to an adapter
name's channels file, or a version directory removed, touches the newest version of that name
still in git: its checks are the ones that show the PR what the change does to the channels."""

from __future__ import annotations

from pathlib import Path

from runner.specs import load_adapter
from runner.specs.channels import CHANNELS_DIR
from runner.workspace import Workspace, split_adapter_dirname


def affected_adapters(workspace: Workspace, changed: list[str]) -> list[Path]:
    everything = workspace.list_adapter_dirs()
    if any(path.startswith("policies/") for path in changed):
        return everything
    touched = {
        parts[1] for p in changed if len(parts := p.split("/")) > 2 and parts[0] == "adapters"
    }
    touched |= _newest_versions(workspace, _channel_names(workspace, changed, touched))
    data_dirs = {p.rsplit("/", 1)[0] for p in changed if p.startswith("datasets/")}
    changed_set = set(changed)
    affected = []
    for directory in everything:
        if directory.name in touched or _uses(workspace, directory, changed_set, data_dirs):
            affected.append(directory)
    return affected


def _channel_names(workspace: Workspace, changed: list[str], touched: set[str]) -> set[str]:
    """Adapter names whose channels file changed or whose version directory was removed."""
    names = {
        parts[1].removesuffix(".yaml")
        for p in changed
        if len(parts := p.split("/")) == 2 and parts[0] == CHANNELS_DIR and p.endswith(".yaml")
    }
    for dirname in touched:
        parsed = split_adapter_dirname(dirname)
        if parsed is not None and not (workspace.adapters_dir / dirname).is_dir():
            names.add(parsed[0])
    return names


def _newest_versions(workspace: Workspace, names: set[str]) -> set[str]:
    """The directory name of the newest version in git of each of `names` that has one."""
    versions = workspace.adapter_versions()
    return {versions[n][max(versions[n])].name for n in names if n in versions}


def _uses(workspace: Workspace, directory: Path, changed: set[str], data_dirs: set[str]) -> bool:
    bundle = load_adapter(workspace, directory).bundle
    if bundle is None:
        return False
    manifest = bundle.dataset
    referenced = [manifest.files.train.path, manifest.files.eval.path]
    if manifest.answer_schema:
        referenced.append(manifest.answer_schema)
    return any(p in changed or p.rsplit("/", 1)[0] in data_dirs for p in referenced)
