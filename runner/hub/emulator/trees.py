"""Tree listings as the Hub's `/tree` and `/paths-info` endpoints return them."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Mapping
from typing import Any

from runner.hub.emulator.blobs import FileEntry
from runner.hub.emulator.errors import EntryNotFound
from runner.hub.emulator.lfs import pointer
from runner.hub.emulator.storage import Commit, Repo, Store, check_path_form


def folder_oid(tree: Mapping[str, FileEntry], folder: str) -> str:
    """A stable id for a folder's content (not git's tree hash, but it changes when git's would)."""
    prefix = folder + "/"
    lines = sorted(f"{p[len(prefix) :]} {e.oid}" for p, e in tree.items() if p.startswith(prefix))
    return hashlib.sha1("\n".join(lines).encode(), usedforsecurity=False).hexdigest()


def folders_of(tree: Mapping[str, FileEntry]) -> set[str]:
    folders: set[str] = set()
    for path in tree:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folders.add("/".join(parts[:i]))
    return folders


def file_item(path: str, entry: FileEntry) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "file", "oid": entry.oid, "size": entry.size, "path": path}
    if entry.lfs:
        size = len(pointer(entry.sha256, entry.size))
        item["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": size}
    return item


def folder_item(tree: Mapping[str, FileEntry], path: str) -> dict[str, Any]:
    return {"type": "directory", "oid": folder_oid(tree, path), "size": 0, "path": path}


def asked_path(path: str) -> str:
    """A path a reader asks about: a trailing slash names the same folder, "" the root; any
    other path must be well-formed (no `..`, control characters or leading slash)."""
    path = path.rstrip("/")
    return check_path_form(path) if path else path


def list_tree(commit: Commit, path: str, *, recursive: bool) -> list[dict[str, Any]]:
    tree = commit.tree
    path = asked_path(path)
    folders = folders_of(tree)
    if path and path not in folders:
        raise EntryNotFound(path, commit=commit.id)
    prefix = path + "/" if path else ""

    def wanted(candidate: str) -> bool:
        if not candidate.startswith(prefix):
            return False
        return recursive or "/" not in candidate[len(prefix) :]

    items = [folder_item(tree, f) for f in folders if f != path and wanted(f)]
    items += [file_item(p, e) for p, e in tree.items() if wanted(p)]
    # Folders first, then files, each by path: stable, and what the Hub's UI shows.
    return sorted(items, key=lambda item: (item["type"] != "directory", item["path"]))


def paths_info(commit: Commit, paths: list[str]) -> list[dict[str, Any]]:
    """Paths that do not exist are left out, as the Hub does."""
    tree = commit.tree
    folders = folders_of(tree)
    items: list[dict[str, Any]] = []
    for path in map(asked_path, paths):
        if path in tree:
            items.append(file_item(path, tree[path]))
        elif path in folders:
            items.append(folder_item(tree, path))
    return items


def add_last_commits(store: Store, repo: Repo, commit: Commit, items: list[dict[str, Any]]) -> None:
    """`expand=True`: the last commit that changed each path, walking first-parent history."""
    history = list(store.history(repo, commit))
    for item in items:
        path = item["path"]
        key: Callable[[Commit], str | None]
        if item["type"] == "file":

            def key(c: Commit, path: str = path) -> str | None:
                entry = c.tree.get(path)
                return entry.oid if entry else None

        else:

            def key(c: Commit, path: str = path) -> str | None:
                return folder_oid(c.tree, path) if path in folders_of(c.tree) else None

        last = history[-1]
        for newer, older in itertools.pairwise(history):
            if key(newer) != key(older):
                last = newer
                break
        item["lastCommit"] = {"id": last.id, "title": last.title, "date": last.date}
