"""`runner reconcile` and `runner status`: the desired state (every adapter directory at this
commit) against the actual state (publish repos, tags, candidates, their run records and
eval reports), and the actions that converge the Hub to git.

Observing costs one request per promoted adapter (its publish repo's refs); only adapters
that are not promoted yet look further (candidate files, run record, eval report), and not
even those when a newer version is promoted: `main` never moves backwards, so an older
version is superseded whatever its candidate says.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml

from runner.engines import engine_for
from runner.evaluate.pipeline import read_report
from runner.gitutil import removed_files
from runner.hub.client import HubClient, NotFoundError, Refs, RepoRef
from runner.promote.card import without_channels_section
from runner.promote.promote import superseded_message
from runner.runs.location import candidate_location
from runner.runs.record import read_run
from runner.runs.run_id import run_id
from runner.runs.versions import newest_version_tag, tag_version, version_tag
from runner.specs.bundle import AdapterBundle

CARD = "README.md"


class State(StrEnum):
    PROMOTED = "promoted"
    DRIFTED = "drifted"
    CANDIDATE_PASSED = "candidate passed"
    CANDIDATE_FAILED = "candidate failed"
    SUPERSEDED = "superseded"
    NOT_EVALUATED = "not evaluated"
    TRAINING_FAILED = "training failed"
    NEEDS_TRAINING = "needs training"
    WITHDRAWN = "withdrawn"


class Action(StrEnum):
    NONE = "none"
    TRAIN = "train, evaluate, promote"
    EVALUATE = "evaluate, promote"
    PROMOTE = "promote"
    REPAIR = "repair drift"
    WITHDRAW = "mark withdrawn"


ACTIONS = {
    State.PROMOTED: Action.NONE,
    State.DRIFTED: Action.REPAIR,
    State.CANDIDATE_PASSED: Action.PROMOTE,
    State.CANDIDATE_FAILED: Action.NONE,
    State.SUPERSEDED: Action.NONE,
    State.NOT_EVALUATED: Action.EVALUATE,
    State.TRAINING_FAILED: Action.TRAIN,
    State.NEEDS_TRAINING: Action.TRAIN,
    State.WITHDRAWN: Action.WITHDRAW,
}


@dataclass(frozen=True)
class AdapterState:
    adapter: str
    run_id: str | None
    state: State
    detail: str = ""
    bundle: AdapterBundle | None = None

    @property
    def action(self) -> Action:
        return ACTIONS[self.state]


def observe(
    bundles: list[AdapterBundle],
    repo_root: Path,
    client: HubClient,
    refs: dict[str, Refs | None] | None = None,
) -> list[AdapterState]:
    """The state of every adapter in git, then of promoted versions git no longer has (their
    publish repos come from the adapters in git and from adapter.yaml files git removed).
    `refs`: the publish repos' refs, when `publish_refs` has read them already."""
    repos = publish_repos(bundles, repo_root)
    refs = refs if refs is not None else _read_refs(repos, client)
    states = [
        observe_one(b, repo_root, client, refs[b.adapter.publish.repo_id])
        for b in sorted(bundles, key=version_order)
    ]
    return states + withdrawn(bundles, refs, repos)


def publish_repos(bundles: list[AdapterBundle], repo_root: Path) -> dict[str, str]:
    """Publish repo -> adapter name, of the adapters in git and of those git removed."""
    repos = {b.adapter.publish.repo_id: b.adapter.name for b in bundles}
    return removed_publish_repos(repo_root) | repos


def publish_refs(
    bundles: list[AdapterBundle], repo_root: Path, client: HubClient
) -> dict[str, Refs | None]:
    """Each publish repo's branches and tags (None: no such repo), one request each."""
    return _read_refs(publish_repos(bundles, repo_root), client)


def _read_refs(repo_ids: Iterable[str], client: HubClient) -> dict[str, Refs | None]:
    found: dict[str, Refs | None] = {}
    for repo_id in sorted(repo_ids):
        try:
            found[repo_id] = client.refs(RepoRef(repo_id))
        except NotFoundError:
            found[repo_id] = None
    return found


def version_order(bundle: AdapterBundle) -> tuple[str, int]:
    """Each adapter's versions in ascending order (v2 before v10): promoting in this order
    leaves `main` on the newest."""
    return bundle.adapter.name, bundle.adapter.version


def removed_publish_repos(repo_root: Path) -> dict[str, str]:
    """Publish repo -> adapter name, of adapter versions deleted from git."""
    found = {}
    for text in removed_files(repo_root, "adapters/*/adapter.yaml").values():
        try:
            spec = yaml.safe_load(text) or {}
            found[str(spec["publish"]["repo_id"])] = str(spec["name"])
        except (yaml.YAMLError, KeyError, TypeError):
            continue  # a broken old spec names no repo; nothing to report for it
    return found


def observe_one(
    bundle: AdapterBundle, repo_root: Path, client: HubClient, refs: Refs | None
) -> AdapterState:
    rid = run_id(bundle, repo_root)
    tag = version_tag(bundle.adapter.version)

    def state(kind: State, detail: str = "") -> AdapterState:
        return AdapterState(bundle.dirname, rid, kind, detail, bundle)

    if refs is not None and tag in refs.tags:
        repo = RepoRef(bundle.adapter.publish.repo_id)
        if newest_version_tag(refs.tags) == tag and _drifted(client, repo, refs, tag):
            return state(State.DRIFTED, f"main no longer holds what {tag} promoted")
        return state(State.PROMOTED, f"{repo.repo_id}@{tag}")
    newer = (
        newest_version_tag(refs.tags, above=bundle.adapter.version) if refs is not None else None
    )
    if newer is not None:
        return state(State.SUPERSEDED, superseded_message(newer))
    location = candidate_location(bundle, rid)
    run = read_run(client, location, required=engine_for(bundle).required_files)
    if run is None:
        return state(State.NEEDS_TRAINING)
    if not run.is_candidate:
        return state(State.TRAINING_FAILED, run.error or "")
    report = read_report(client, location)
    if report is None:  # what a local `runner eval` found is not the state: the Hub is
        return state(
            State.NOT_EVALUATED,
            f"no eval report on the Hub at {location} (`runner eval` without --upload keeps "
            "its report local); `runner reconcile --apply` evaluates it and publishes the report",
        )
    if report.passed:
        return state(State.CANDIDATE_PASSED, str(location))
    failed = "; ".join(f"{c.name}: {c.detail}" for c in report.checks if not c.passed)
    return state(State.CANDIDATE_FAILED, f"failed its gate: {failed}")


def withdrawn(
    bundles: list[AdapterBundle], refs: dict[str, Refs | None], names: dict[str, str]
) -> list[AdapterState]:
    """Promoted versions (tags) whose adapter directory is gone from git."""
    in_git = {(b.adapter.publish.repo_id, version_tag(b.adapter.version)) for b in bundles}
    return [
        AdapterState(f"{names[repo_id]}-{tag}", None, State.WITHDRAWN, f"{repo_id}@{tag}")
        for repo_id, found in sorted(refs.items())
        if found is not None
        for tag in sorted(found.tags)
        if tag_version(tag) is not None and (repo_id, tag) not in in_git
    ]


def _drifted(client: HubClient, repo: RepoRef, refs: Refs, tag: str) -> bool:
    """main's files differ from the tag's, its card's release channels section aside (it
    moves with the channels). Same commit: no request; a repaired main is a new commit with
    the tag's content, so content decides."""
    main = refs.branches.get("main") or "main"
    promoted = refs.tags[tag]
    if main == promoted:
        return False
    tagged, now = client.file_oids(repo, revision=promoted), client.file_oids(repo, main)
    if tagged == now:
        return False
    if {**tagged, CARD: ""} != {**now, CARD: ""} or CARD not in now:
        return True
    cards = [
        client.download(repo, CARD, revision=at).read_text(encoding="utf-8")
        for at in (promoted, main)
    ]
    return cards[0] != without_channels_section(cards[1])
