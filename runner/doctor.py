"""`runner doctor`: a read-only preflight of the Hub account the runner will act with, before
the first merge spends anything. Against whatever `HF_ENDPOINT`/`HF_TOKEN` point at (the real
Hub by default) it checks the token and its role, write access to every namespace the specs
name (publish, candidates, dataset and Space repos), each base model at its pinned revision
(gated access included) and each training Space. Nothing is written.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from runner.backends import training_repos
from runner.engines import engine_for
from runner.hub.client import (
    DEFAULT_ENDPOINT,
    Account,
    GatedError,
    HubClient,
    HubSetupError,
    NotFoundError,
    RepoRef,
)
from runner.policy.access import (
    TOKENS_PAGE,
    base_model_page,
    gated_fix,
    namespace_of,
    write_fix,
    written_repos,
)
from runner.policy.loading import Policies
from runner.space.render import render_space
from runner.space.sync import SPACE_TOKEN_SECRET, space_made_by_runner
from runner.specs.bundle import AdapterBundle

NOT_CREATED = "does not exist yet: the first sync creates it"


@dataclass(frozen=True)
class Check:
    area: str  # token, namespace, base model, Space
    subject: str
    passed: bool
    detail: str
    fix: str = ""


def run_doctor(bundles: list[AdapterBundle], policies: Policies, client: HubClient) -> list[Check]:
    """Every check, in the order a reader fixes them: without a usable token the rest would
    only repeat its failure, so they are not run."""
    token, account = _token(client)
    if account is None:
        return [token]
    return [
        token,
        *_namespaces(bundles, account),
        *_base_models(bundles, client, account),
        *_spaces(bundles, policies, client),
    ]


def _token(client: HubClient) -> tuple[Check, Account | None]:
    subject = f"HF_TOKEN at {client.endpoint}"
    if not client.has_token:
        fix = f"create a token with write access ({TOKENS_PAGE}) and set HF_TOKEN"
        return Check("token", subject, False, "no token is set", fix), None
    try:
        account = client.account()
    except HubSetupError as error:
        return Check("token", subject, False, str(error), "set HF_TOKEN to a valid token"), None
    if account.token_role == "read":
        fix = f"a read token cannot promote: create one with write access ({TOKENS_PAGE})"
        return Check("token", subject, False, f"{account.name}: a read token", fix), account
    role = account.token_role or "unknown role"
    return Check("token", subject, True, f"{account.name}, {role} token"), account


def _namespaces(bundles: list[AdapterBundle], account: Account) -> list[Check]:
    uses: dict[str, set[str]] = defaultdict(set)
    for bundle in bundles:
        for use, repo_id in written_repos(bundle, training_repos(bundle)):
            uses[namespace_of(repo_id)].add(f"{use} {repo_id}")
    checks = []
    for namespace, needs in sorted(uses.items()):
        writable = account.can_write(namespace)
        detail = f"{'' if writable else 'not '}writable: {', '.join(sorted(needs))}"
        fix = "" if writable else write_fix(account, namespace)
        checks.append(Check("namespace", namespace, writable, detail, fix))
    return checks


def _base_models(bundles: list[AdapterBundle], client: HubClient, account: Account) -> list[Check]:
    pinned = sorted({(b.adapter.base_model.id, b.adapter.base_model.revision) for b in bundles})
    return [_base_model(client, account, repo_id, revision) for repo_id, revision in pinned]


def _base_model(client: HubClient, account: Account, repo_id: str, revision: str) -> Check:
    subject = f"{repo_id}@{revision[:12]}"
    page = base_model_page(client, repo_id)
    try:
        gated = client.check_read_access(RepoRef(repo_id), revision)
    except NotFoundError:
        detail = f"not on the Hub at {client.endpoint} at revision {revision}"
        fix = f"check base_model.id and base_model.revision ({page}); a private base needs access"
        if client.endpoint.rstrip("/") != DEFAULT_ENDPOINT:
            fix += (
                f"; to serve it from this Hub: `runner hub seed --from-folder DIR --repo-id "
                f"{repo_id} --revision {revision}`"
            )
        return Check("base model", subject, False, detail, fix)
    except GatedError:
        detail = f"gated: {account.name} has not been granted access"
        return Check("base model", subject, False, detail, gated_fix(client, account.name, repo_id))
    if gated:
        return Check("base model", subject, True, f"gated, access granted to {account.name}")
    return Check("base model", subject, True, "reachable at the pinned revision")


def _spaces(bundles: list[AdapterBundle], policies: Policies, client: HubClient) -> list[Check]:
    found: dict[str, AdapterBundle] = {}
    for bundle in bundles:
        for use, repo_id in training_repos(bundle):
            if use == "Space":  # the Space its backend trains in
                found.setdefault(repo_id, bundle)
    checks = []
    for space_id, bundle in sorted(found.items()):
        checks.append(_hardware(bundle, policies))
        space = _space(client, space_id, bundle)
        checks.append(space)
        if space.passed and space.detail != NOT_CREATED:
            checks.append(_secrets(client, space_id))
    return checks


def _secrets(client: HubClient, space_id: str) -> Check:
    """Every secret of the Space reaches the training app as an environment variable: only
    the one the runner sets belongs there."""
    names = client.space_secret_names(space_id)
    subject = f"{space_id} secrets"
    stray = [name for name in names if name != SPACE_TOKEN_SECRET]
    if stray:
        fix = "delete them in the Space's settings (its app sees every secret as a variable)"
        return Check("Space", subject, False, f"not set by the runner: {', '.join(stray)}", fix)
    if SPACE_TOKEN_SECRET in names:
        return Check("Space", subject, True, f"{SPACE_TOKEN_SECRET} only (set again at each sync)")
    return Check("Space", subject, True, f"none yet: the next sync sets {SPACE_TOKEN_SECRET}")


def _hardware(bundle: AdapterBundle, policies: Policies) -> Check:
    flavor = bundle.adapter.training.hardware
    subject = f"{bundle.dirname} hardware {flavor}"
    rates = policies.training.hardware if policies.training is not None else {}
    if flavor not in rates:
        fix = f"add its price to policies/training.yaml (hardware.{flavor}.usd_per_hour)"
        return Check("Space", subject, False, "no price in policies/training.yaml", fix)
    return Check("Space", subject, True, f"known, ${rates[flavor].usd_per_hour:.2f}/h")


def _space(client: HubClient, space_id: str, bundle: AdapterBundle) -> Check:
    repo = RepoRef(space_id, "space")
    try:
        sdk = client.space_sdk(space_id)
    except NotFoundError:
        return Check("Space", space_id, True, NOT_CREATED)
    if sdk != "docker":
        fix = "set training.space_id to a new Space name (the runner creates a docker one)"
        return Check("Space", space_id, False, f"sdk {sdk}, not docker", fix)
    files = set(client.file_oids(repo))
    if not space_made_by_runner(client, repo, files):
        fix = "set training.space_id to a new Space name, or delete this Space"
        return Check("Space", space_id, False, "exists and was not made by the runner", fix)
    stray = sorted(files - set(render_space(bundle.dirname, engine_for(bundle).space_app)))
    if stray:
        fix = "the next `runner space sync` deletes them"
        return Check("Space", space_id, False, f"stray files: {', '.join(stray)}", fix)
    return Check("Space", space_id, True, "docker, made by the runner, no stray files")
