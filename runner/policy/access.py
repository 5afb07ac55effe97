"""The Hub account's rights against what a spec writes. Checked before anything is spent: a
read token, or a namespace the account may not write, fails at once with the fix, not at the
first upload after a GPU run. `runner doctor` shows the same checks, read-only."""

from __future__ import annotations

from collections.abc import Sequence

from runner.hub.client import Account, GatedError, HubClient, HubSetupError, RepoRef
from runner.policy.repos import RepoPolicy, require_allowed_repos
from runner.specs.bundle import AdapterBundle

TOKENS_PAGE = "https://huggingface.co/settings/tokens"


class MissingRights(HubSetupError):
    """The token cannot write a repo the spec makes the runner write: like a refused token,
    the environment must change, so every verb (reconcile included) stops with exit 2."""


def written_repos(
    bundle: AdapterBundle, backend_repos: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """(use, repo id) of every repo the runner writes for this adapter version;
    `backend_repos` are those of its training backend (`runner.backends.training_repos`)."""
    publish = bundle.adapter.publish
    return [
        ("publish", publish.repo_id),
        ("candidates", publish.candidates_repo_id),
        ("dataset", bundle.dataset.hub_repo),
        *backend_repos,
    ]


def namespace_of(repo_id: str) -> str:
    return repo_id.split("/")[0]


def write_fix(account: Account, namespace: str) -> str:
    """What gives `account` write access to `namespace`."""
    if account.token_role == "read":
        return f"a read token cannot write: create one with write access ({TOKENS_PAGE})"
    if account.token_role == "fineGrained":
        return f"give the fine-grained token write access to {namespace} ({TOKENS_PAGE})"
    if namespace in account.org_roles:
        role = account.org_roles[namespace]
        return f"{account.name} is `{role}` in {namespace}: an admin of it can give write access"
    return (
        f"ask an admin of {namespace} to add {account.name} with the write role, or name "
        "repos in a namespace this token may write (adapter.yaml, dataset.yaml)"
    )


def require_write_access(
    client: HubClient, bundle: AdapterBundle, backend_repos: Sequence[tuple[str, str]]
) -> None:
    """Refuse, before anything is spent, when the token may not write a repo `bundle` makes
    the runner write."""
    account = client.account()
    blocked = [
        (use, repo_id)
        for use, repo_id in written_repos(bundle, backend_repos)
        if not account.can_write(namespace_of(repo_id))
    ]
    if not blocked:
        return
    shown = ", ".join(f"{use} {repo_id}" for use, repo_id in blocked)
    role = account.token_role or "unknown role"
    raise MissingRights(
        f"{bundle.path}: the token ({account.name}, {role} token) cannot write {shown}; "
        f"nothing was spent or written; {write_fix(account, namespace_of(blocked[0][1]))}"
    )


def base_model_page(client: HubClient, repo_id: str) -> str:
    """Where a gated base model's terms are accepted: its page on the Hub the runner uses."""
    return f"{client.endpoint.rstrip('/')}/{repo_id}"


def gated_fix(client: HubClient, account_name: str, repo_id: str) -> str:
    """What gives the token's account (and the training run's token) a gated base's files."""
    return (
        f"the account {account_name} (the token's) must accept its terms at "
        f"{base_model_page(client, repo_id)}; the Space or Job downloads it with its HF_TOKEN "
        "secret, so that token's account needs access too"
    )


def require_base_access(client: HubClient, bundle: AdapterBundle) -> None:
    """Refuse, before anything is spent, a base model this token may not download at its
    pinned revision (gated and not granted; missing or private is a NotFoundError)."""
    base = bundle.adapter.base_model
    try:
        client.check_read_access(RepoRef(base.id), base.revision)
    except GatedError:
        account = client.account()
        raise MissingRights(
            f"{bundle.path}: the base model {base.id} is gated and the token "
            f"({account.name}) has not been granted access; nothing was spent or written; "
            f"{gated_fix(client, account.name, base.id)}"
        ) from None


def require_writable(
    policy: RepoPolicy | None,
    client: HubClient,
    bundle: AdapterBundle,
    backend_repos: Sequence[tuple[str, str]],
) -> None:
    """Before the first write of an operation: every repo `bundle` names is one the allowlist
    gives it and one the token may write."""
    require_allowed_repos(policy, bundle)
    require_write_access(client, bundle, backend_repos)
