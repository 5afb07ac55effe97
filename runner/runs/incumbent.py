"""The incumbent: the promoted version a new one must not fall behind."""

from __future__ import annotations

from runner.hub.client import HubClient, NotFoundError, RepoRef
from runner.runs.versions import newest_below
from runner.specs.bundle import AdapterBundle
from runner.train.train import ModelRef


def find_incumbent(bundle: AdapterBundle, client: HubClient) -> ModelRef | None:
    """The highest `v<N>` tag below this version on the publish repo, or None when nothing is
    promoted yet."""
    repo = RepoRef(bundle.adapter.publish.repo_id)
    try:
        tags = client.tags(repo)
    except NotFoundError:
        return None
    commit = newest_below(tags, bundle.adapter.version)
    return None if commit is None else ModelRef(repo.repo_id, commit)
