"""`runner dataset push`: a dataset version goes to its Hub dataset repo once, under a tag
named after the version, and runs read it at that tag's commit.

Layout on the Hub: `<version>/<file>` for the manifest's train and eval files (only what the
manifest declares is uploaded, never the rest of the folder), and the answer schema at its
path below `datasets/<name>/`. Versions sit side by side on `main`, and
a pushed version is immutable: pushing it again with other bytes is an error, not an update.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.errors import InputError
from runner.hashing import sha256_of
from runner.hub.client import HubClient, RepoRef
from runner.repofiles import declared_file
from runner.specs.dataset import DatasetManifest


@dataclass(frozen=True)
class PushedDataset:
    repo_id: str
    version: str
    commit: str
    created: bool
    """False when the Hub already held this version (nothing was uploaded)."""

    def path_of(self, local: str) -> str:
        """Where a manifest path (`datasets/kwanzaa/v0/train.jsonl`) lives in the Hub repo."""
        return hub_path(local, self.version)


def hub_path(local: str, version: str) -> str:
    """`datasets/<name>/<version>/x` -> `<version>/x`; `datasets/<name>/y` -> `y`."""
    parts = Path(local).parts
    if len(parts) < 3 or parts[0] != "datasets":
        raise InputError(f"{local}: dataset files live under datasets/<name>/")
    return Path(*parts[2:]).as_posix()


def dataset_files(manifest: DatasetManifest, repo_root: Path) -> dict[str, Path]:
    """Hub path -> local file for everything a push uploads: the manifest's train and eval
    files and its answer schema, nothing else. Each must be a regular file inside the
    repository (no symlink on the way), and the data files must still have the sha256 the
    manifest locked."""
    files: dict[str, Path] = {}
    for split in ("train", "eval"):
        entry = getattr(manifest.files, split)
        local = declared_file(repo_root, entry.path, what=f"files.{split}")
        if entry.sha256 is None or sha256_of(local) != entry.sha256:
            raise InputError(
                f"{entry.path}: its bytes do not match files.{split}.sha256 in the manifest; "
                "run `runner dataset lock` on the adapter and commit the result before pushing"
            )
        files[hub_path(entry.path, manifest.version)] = local
    if manifest.answer_schema is not None:
        local = declared_file(repo_root, manifest.answer_schema, what="answer_schema")
        files[hub_path(manifest.answer_schema, manifest.version)] = local
    return files


def push_dataset(manifest: DatasetManifest, repo_root: Path, client: HubClient) -> PushedDataset:
    """Upload the version (unless the Hub already holds it) and tag it; idempotent."""
    repo = RepoRef(manifest.hub_repo, "dataset")
    files = dataset_files(manifest, repo_root)
    client.ensure_repo(repo, private=True)
    tagged = client.tags(repo).get(manifest.version)
    if tagged is not None:
        if client.commit_holding(repo, files, revision=tagged) != tagged:
            raise InputError(
                f"{manifest.hub_repo}@{manifest.version} on the Hub holds other bytes than "
                f"datasets/{manifest.name}/{manifest.version}/; a pushed version is immutable: "
                "put the change in a new version (`runner new ... --dataset vN`)"
            )
        return PushedDataset(manifest.hub_repo, manifest.version, tagged, created=False)
    commit = client.commit_holding(repo, files)
    if commit is None:
        commit = client.commit(
            repo,
            dict(files),
            f"Dataset {manifest.name} {manifest.version}",
            parent_commit=client.head(repo),
        )
    client.tag_if_absent(repo, manifest.version, commit)
    return PushedDataset(manifest.hub_repo, manifest.version, commit, created=True)
