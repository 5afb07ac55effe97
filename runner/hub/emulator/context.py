"""What every route needs: the store, the Space runtimes, the jobs, and access checks on
repos."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from runner.hub.emulator.accounts import Accounts
from runner.hub.emulator.auth import Identity, caller, check_namespace, require_user
from runner.hub.emulator.errors import BadRequest, RepoMoved, RepoNotFound
from runner.hub.emulator.faults import FaultInjector, RequestLog
from runner.hub.emulator.jobs import JobManager
from runner.hub.emulator.spaces import SpaceManager
from runner.hub.emulator.storage import Repo, Store

# For routes that answer the same whatever the method.
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
# The API path of a repo; `plural` is its type's URL segment.
REPO = "/api/{plural}/{namespace}/{name}"
# URL segment -> repo type
PLURALS = {"models": "model", "datasets": "dataset", "spaces": "space"}


@dataclass
class Context:
    store: Store
    accounts: Accounts
    spaces: SpaceManager
    faults: FaultInjector
    log: RequestLog
    jobs: JobManager


def get_context(request: Request) -> Context:
    return request.app.state.ctx


Ctx = Annotated[Context, Depends(get_context)]
Caller = Annotated[Identity | None, Depends(caller)]


def repo_type_of(plural: str) -> str:
    if plural not in PLURALS:
        raise BadRequest(f"Unknown repo type {plural!r}; expected models, datasets or spaces")
    return PLURALS[plural]


def url_prefix(repo_type: str) -> str:
    """Web URLs of datasets and Spaces carry a prefix; models have none."""
    return "" if repo_type == "model" else f"{repo_type}s/"


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def visible(repo: Repo, identity: Identity | None) -> bool:
    """A private repo exists only for who may read it (its page, listings, redirects)."""
    return not repo.private or (identity is not None and identity.may_read(repo.namespace))


def readable(ctx: Context, repo_type: str, repo_id: str, identity: Identity | None) -> Repo:
    """The repo if the caller may read it. Like the Hub, an anonymous caller gets 401 for a
    private repo and a missing one alike, so existence does not leak."""
    repo = ctx.store.get(repo_type, repo_id)
    moved = ctx.store.moved_to(repo_type, repo_id) if repo is None else None
    if moved is not None and visible(moved, identity):
        raise RepoMoved(repo_id, moved.id)
    if repo is None or not visible(repo, identity):
        raise RepoNotFound(repo_id, status=401 if identity is None else 404)
    return repo


def writable(ctx: Context, repo_type: str, repo_id: str, identity: Identity | None) -> Repo:
    user = require_user(identity)
    repo = readable(ctx, repo_type, repo_id, user)
    check_namespace(user, repo.namespace)
    return repo
