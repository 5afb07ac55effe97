"""`policies/repos.yaml`: the Hub repos a spec may aim at, and who owns a publish repo.

The runner creates, overwrites and wipes the repos a spec names, and hands our HF_TOKEN to
the training Space's app. So every repo a spec names (publish, candidates, Space, dataset)
must live under an owner the policy lists for its kind, and one publish repo belongs to one
adapter name: two names sharing it would promote over each other's card.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, ValidationError

from runner.errors import InputError, SpecError
from runner.findings import Finding, quote
from runner.repofiles import read_regular_bytes
from runner.specs.adapter import AdapterSpec, candidates_repo
from runner.specs.base import SpecModel, spec_error
from runner.specs.bundle import AdapterBundle
from runner.specs.load import load_model_file
from runner.specs.yamlio import Loc, load_yaml_text
from runner.workspace import Workspace

POLICY_PATH = "policies/repos.yaml"
DEFAULT_SPACE_NAME = "adapter-trainer"
_OWNER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")


def _owner(value: str) -> str:
    if not _OWNER.fullmatch(value):
        raise spec_error(
            "hub_owner",
            f"expected a Hub user or organisation name such as `ainative`, got {quote(value)} "
            "(no '/', no wildcards: each owner is listed by name)",
        )
    return value


Owner = Annotated[str, AfterValidator(_owner)]


class RepoPolicy(SpecModel):
    kind: Literal["repos"]
    publish: list[Owner]
    """Owners of publish repos (publish.repo_id), and so of their candidates repos."""
    spaces: list[Owner]
    """Owners of training Spaces (training.space_id or its default)."""
    datasets: list[Owner]
    """Owners of dataset repos (dataset.yaml's hub_repo)."""


def load_repo_policy(directory: Path) -> tuple[RepoPolicy | None, list[Finding]]:
    _, policy, found = load_model_file(directory / "repos.yaml", RepoPolicy, POLICY_PATH)
    # The loader's hint for a missing file speaks of spec files; this one is the allowlist.
    return policy, [
        replace(
            f,
            message="missing: it lists the Hub owners specs may write to; nothing is "
            "validated or written without it",
            hint="restore policies/repos.yaml from the adapters repository's main branch",
        )
        if f.rule_id == "spec.missing-file"
        else f
        for f in found
    ]


def space_id_of(adapter: AdapterSpec) -> str:
    """The training Space: `training.space_id`, else `<publish owner>/adapter-trainer`."""
    return adapter.training.space_id or f"{_owner_of(adapter.publish.repo_id)}/{DEFAULT_SPACE_NAME}"


@dataclass(frozen=True)
class _Target:
    what: str
    repo_id: str
    owners: list[str]
    spec_file: str
    loc: Loc


def _targets(policy: RepoPolicy, bundle: AdapterBundle) -> list[_Target]:
    adapter = bundle.adapter
    chosen = adapter.training.space_id is not None
    space_loc: Loc = ["training", "space_id"] if chosen else ["publish", "repo_id"]
    space = "training Space" if chosen else "default training Space"
    return [
        _Target(
            "publish repo",
            adapter.publish.repo_id,
            policy.publish,
            "adapter.yaml",
            ["publish", "repo_id"],
        ),
        _Target(space, space_id_of(adapter), policy.spaces, "adapter.yaml", space_loc),
        _Target(
            "dataset repo", bundle.dataset.hub_repo, policy.datasets, "dataset.yaml", ["hub_repo"]
        ),
    ]


def _outside(policy: RepoPolicy, bundle: AdapterBundle) -> list[_Target]:
    """The repos under an owner the policy does not list for their kind. Hub names are
    case-insensitive, so the comparison is too."""
    return [
        target
        for target in _targets(policy, bundle)
        if _owner_of(target.repo_id).casefold()
        not in {allowed.casefold() for allowed in target.owners}
    ]


def _owner_of(repo_id: str) -> str:
    return repo_id.split("/")[0]


def check_repo_owners(policy: RepoPolicy, bundle: AdapterBundle) -> list[Finding]:
    """An error at each spec line that names a repo outside the allowlist."""
    return [
        bundle.docs[target.spec_file].finding(
            target.loc,
            "repos.owner",
            f"{target.what} {quote(target.repo_id)} is under {quote(_owner_of(target.repo_id))}, "
            f"not an owner {POLICY_PATH} allows for it (allowed: "
            f"{', '.join(target.owners) or 'none'})",
            hint="aim it at a repo of an allowed owner, or add the owner to "
            f"{POLICY_PATH} in its own reviewed PR",
        )
        for target in _outside(policy, bundle)
    ]


def require_allowed_repos(policy: RepoPolicy | None, bundle: AdapterBundle) -> None:
    """Refuse, before anything reaches the Hub, a spec that skipped `runner validate` and
    names a repo outside the allowlist; a missing or broken allowlist allows nothing."""
    if policy is None:
        raise InputError(
            f"{POLICY_PATH} is missing or invalid; it lists the Hub owners specs may write to, "
            "so nothing is written without it (`runner validate` shows what is wrong)"
        )
    found = check_repo_owners(policy, bundle)
    if found:
        # The summary names the repos: `reconcile` reports it without the findings.
        repos = ", ".join(quote(target.repo_id) for target in _outside(policy, bundle))
        raise SpecError(
            f"{bundle.path} aims at Hub repos outside {POLICY_PATH} ({repos}); nothing was written",
            found,
        )


@dataclass(frozen=True)
class PublishClaim:
    """One adapter version's publish repo, where its adapter.yaml names it."""

    name: str
    repo_id: str
    location: str


def check_publish_claims(bundle: AdapterBundle, workspace: Workspace) -> list[Finding]:
    """An error at publish.repo_id when an adapter of another name in the repository
    publishes to the same repo (or one is the other's candidates repo). Every adapter is
    looked at, also when `runner validate` checks only the ones a change touches."""
    mine = _claimed(bundle.adapter.publish.repo_id)
    others: dict[str, PublishClaim] = {}
    for claim in publish_claims(workspace):
        if claim.name != bundle.adapter.name and mine & _claimed(claim.repo_id):
            others.setdefault(claim.name, claim)  # one finding per other name, not per version
    repo_id = bundle.adapter.publish.repo_id
    return [
        bundle.docs["adapter.yaml"].finding(
            ["publish", "repo_id"],
            "repos.publish-shared",
            f"publish repo {quote(repo_id)} is also claimed by adapter {quote(other.name)} "
            f"({other.location}: {other.repo_id}); one publish repo belongs to one adapter name",
            hint=f"give this adapter its own publish.repo_id, or make it the next version of "
            f"{other.name} (`runner new {other.name}-v<N> --from ...`)",
        )
        for other in others.values()
    ]


def _claimed(repo_id: str) -> set[str]:
    """The repos a publish repo id makes an adapter write to, as the Hub compares names."""
    return {repo_id.casefold(), candidates_repo(repo_id).casefold()}


def publish_claims(workspace: Workspace) -> list[PublishClaim]:
    """Every adapter version's publish repo. A directory whose adapter.yaml cannot be read or
    does not load is skipped: validating that adapter reports why."""
    claims = []
    for directory in workspace.list_adapter_dirs():
        if directory.is_symlink():
            continue
        try:
            raw = read_regular_bytes(directory / "adapter.yaml")
        except (OSError, InputError):
            continue
        claim = _claim_of(workspace.rel(directory / "adapter.yaml"), raw)
        if claim is not None:
            claims.append(claim)
    return claims


# `runner validate` asks for every adapter's claim once per adapter it validates: parsing
# each file once per content keeps that linear in the number of adapters.
@lru_cache(maxsize=1024)
def _claim_of(path: str, raw: bytes) -> PublishClaim | None:
    try:
        doc, _ = load_yaml_text(raw.decode("utf-8-sig"), path)
    except UnicodeDecodeError:
        return None
    if doc is None:
        return None
    try:
        spec = AdapterSpec.model_validate(doc.data)
    except ValidationError:
        return None
    line, _ = doc.position(["publish", "repo_id"])
    return PublishClaim(spec.name, spec.publish.repo_id, f"{path}:{line}")
