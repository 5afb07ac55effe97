"""Gated repos and their access requests, as the Hub keeps them.

A repo's `gated` setting is False, "auto" or "manual". Its files (downloads, and the
auth-check route) then answer 403 `GatedRepo` to a caller who is neither a member of the
repo's namespace nor granted access, and 401 `GatedRepo` to an anonymous one; its info, tree
and refs stay readable, as on the Hub. A user asks for access on the repo's web page (no
API): here `POST /_emulator/access` stands for that click. "auto" accepts a request at once,
"manual" leaves it pending for the repo's owners (the `user-access-request` routes).
"""

from __future__ import annotations

import secrets
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from runner.hub.emulator.blobs import now_iso
from runner.hub.emulator.context import (
    REPO,
    Caller,
    Context,
    Ctx,
    base_url,
    readable,
    repo_type_of,
    url_prefix,
    writable,
)
from runner.hub.emulator.errors import BadRequest, GatedRepo, HubError
from runner.hub.emulator.storage import Repo

router = APIRouter()
RequestStatus = Literal["pending", "accepted", "rejected"]


class UserNotFound(HubError):
    status = 404


# -- who may read a gated repo's files --------------------------------------------------------


def has_access(repo: Repo, identity: Caller) -> bool:
    if not repo.gated:
        return True
    if identity is None:
        return False
    if identity.may_read(repo.namespace):  # its owners never ask for access
        return True
    request = repo.access_requests.get(identity.name)
    granted = request is not None and request["status"] == "accepted"
    return granted and identity.can_read_gated_repos


def check_gated(request: Request, repo: Repo, identity: Caller) -> None:
    """Refuse a gated repo's files as the Hub does (huggingface_hub raises GatedRepoError)."""
    if has_access(repo, identity):
        return
    kind = repo.type
    if identity is None:
        raise GatedRepo(
            f"Access to {kind} {repo.id} is restricted. You must have access to it and be "
            "authenticated to access it. Please log in.",
            status=401,
        )
    page = f"{base_url(request)}/{url_prefix(repo.type)}{repo.id}"
    if identity.can_read_gated_repos:
        reason = "you are not in the authorized list"
    else:
        reason = "this fine-grained token may not read gated repos"
    raise GatedRepo(
        f"Access to {kind} {repo.id} is restricted and {reason}. Visit {page} to ask for access."
    )


@router.get(REPO + "/auth-check")
def auth_check(
    plural: str, namespace: str, name: str, request: Request, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    repo = readable(ctx, repo_type_of(plural), f"{namespace}/{name}", identity)
    check_gated(request, repo, identity)
    return {}


@router.get(REPO + "/auth-check/write")
def auth_check_write(
    plural: str, namespace: str, name: str, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    writable(ctx, repo_type_of(plural), f"{namespace}/{name}", identity)
    return {}


# -- access requests ------------------------------------------------------------------------


def _gated_repo(ctx: Context, plural: str, repo_id: str, identity: Caller) -> Repo:
    """A repo whose requests the caller manages: they must write to it, and it must be gated."""
    repo = writable(ctx, repo_type_of(plural), repo_id, identity)
    if not repo.gated:
        raise BadRequest(f"Repo {repo_id} is not gated")
    return repo


def _known_user(ctx: Context, user: str) -> str:
    fullname = ctx.accounts.fullname(user)
    if fullname is None:
        raise UserNotFound(f"User {user!r} not found")
    return fullname


def _set_status(
    ctx: Context, repo: Repo, user: str, status: RequestStatus, info: dict[str, Any] | None = None
) -> None:
    """Record `user`'s request in `status`, keeping its id (the Hub's id outlives a change)."""
    with ctx.store.lock:
        previous = repo.access_requests.get(user) or {}
        repo.access_requests[user] = {
            "requestId": previous.get("requestId") or secrets.token_hex(12),
            "status": status,
            "timestamp": now_iso(),
            "user": previous.get("user") or info or {"user": user},
        }
        ctx.store.save(repo)


def ask_access(ctx: Context, repo: Repo, user: str) -> RequestStatus:
    """`user` accepted the repo's terms on its page: accepted at once when gated "auto"."""
    fullname = _known_user(ctx, user)
    if not repo.gated:
        raise BadRequest(f"Repo {repo.id} is not gated")
    status: RequestStatus = "accepted" if repo.gated == "auto" else "pending"
    # A requester shares their email with the repo's owners; a manual grant does not.
    info = {"user": user, "fullname": fullname, "email": f"{user}@example.invalid"}
    _set_status(ctx, repo, user, status, info)
    return status


@router.get(REPO + "/user-access-request/{status}")
def list_access_requests(
    plural: str, namespace: str, name: str, status: RequestStatus, ctx: Ctx, identity: Caller
) -> list[dict[str, Any]]:
    repo = _gated_repo(ctx, plural, f"{namespace}/{name}", identity)
    with ctx.store.lock:
        return [r for r in repo.access_requests.values() if r["status"] == status]


class HandleBody(BaseModel):
    user: str | None = None
    requestId: str | None = None
    status: RequestStatus
    rejectionReason: str | None = None


def _requester(repo: Repo, body: HandleBody) -> str:
    """The user a handle call names, by name or by request id; 404 when there is no request."""
    for user, record in repo.access_requests.items():
        if user == body.user or (body.requestId and record["requestId"] == body.requestId):
            return user
    raise UserNotFound(f"No access request from {body.user or body.requestId!r} on {repo.id}")


@router.post(REPO + "/user-access-request/handle")
def handle_access_request(
    plural: str, namespace: str, name: str, body: HandleBody, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    repo = _gated_repo(ctx, plural, f"{namespace}/{name}", identity)
    user = _requester(repo, body)
    if repo.access_requests[user]["status"] == body.status:
        raise BadRequest(f"The access request of {user!r} is already {body.status}")
    _set_status(ctx, repo, user, body.status)
    return {}


class GrantBody(BaseModel):
    user: str


@router.post(REPO + "/user-access-request/grant")
def grant_access(
    plural: str, namespace: str, name: str, body: GrantBody, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    repo = _gated_repo(ctx, plural, f"{namespace}/{name}", identity)
    fullname = _known_user(ctx, body.user)
    if (repo.access_requests.get(body.user) or {}).get("status") == "accepted":
        raise BadRequest(f"User {body.user!r} already has access to {repo.id}")
    _set_status(ctx, repo, body.user, "accepted", {"user": body.user, "fullname": fullname})
    return {}
