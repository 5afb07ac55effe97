"""Identity, repo lifecycle, repo info, refs and history."""

from __future__ import annotations

import hashlib
import html
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from runner.hub.emulator import listing
from runner.hub.emulator.auth import check_namespace, require_user, whoami_payload
from runner.hub.emulator.cards import card_data_or_none
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
from runner.hub.emulator.errors import BadRequest, Conflict
from runner.hub.emulator.lfs import pointer
from runner.hub.emulator.space_settings import KeyValue, Sdk, SleepTime, default_settings
from runner.hub.emulator.storage import REPO_TYPES, Commit, Repo

router = APIRouter()
# "protected" is a Space's; the emulator serves it as public.
Visibility = Literal["public", "private", "protected"]


@router.get("/api/whoami-v2")
def whoami(ctx: Ctx, identity: Caller) -> dict[str, Any]:
    return whoami_payload(require_user(identity), ctx.accounts)


class CreateRepoBody(BaseModel):
    name: str
    organization: str | None = None
    type: str | None = None
    private: bool | None = None
    visibility: Visibility | None = None
    sdk: Sdk | None = None
    hardware: str | None = None
    sleepTimeSeconds: SleepTime | None = None
    secrets: list[KeyValue] = []
    variables: list[KeyValue] = []


def _private(ctx: Context, body: CreateRepoBody, namespace: str) -> bool:
    """The visibility asked for, else the namespace's default (an Enterprise org's may be
    private)."""
    if body.private is not None:
        return body.private
    if body.visibility is not None:
        return body.visibility == "private"
    return ctx.accounts.org(namespace).private_by_default


def _space_readme(name: str, sdk: str) -> bytes:
    """The README the Hub writes into a new Space: its config lives in the front matter."""
    return (
        f"---\ntitle: {name}\nemoji: 🚀\ncolorFrom: blue\ncolorTo: green\nsdk: {sdk}\n"
        f"pinned: false\n---\n\nCheck out the configuration reference at "
        "https://huggingface.co/docs/hub/spaces-config-reference\n"
    ).encode()


@router.post("/api/repos/create")
def create_repo(
    body: CreateRepoBody, request: Request, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    user = require_user(identity)
    namespace = body.organization or user.name
    check_namespace(user, namespace, "create repos in")
    repo_type = body.type or "model"
    if repo_type not in REPO_TYPES:
        raise BadRequest(f"Invalid repo type {repo_type!r}; expected one of {REPO_TYPES}")
    repo_id = f"{namespace}/{body.name}"
    url = f"{base_url(request)}/{url_prefix(repo_type)}{repo_id}"
    if ctx.store.get(repo_type, repo_id) is not None:
        # The client's `exist_ok=True` turns exactly this 409 into success.
        raise Conflict(f"You already created this {repo_type} repo", extra={"url": url})
    private = _private(ctx, body, namespace)
    files: dict[str, bytes] = {}
    space = None
    if repo_type == "space":
        if not body.sdk:
            raise BadRequest("A Space needs an sdk (docker, gradio, streamlit or static)")
        space = default_settings(
            body.sdk,
            hardware=body.hardware,
            sleep_time=body.sleepTimeSeconds,
            secrets=body.secrets,
            variables=body.variables,
        )
        files["README.md"] = _space_readme(body.name, body.sdk)
    repo = ctx.store.create(
        repo_type, repo_id, private=private, initial_files=files, space=space, author=user.name
    )
    if repo.type == "space":
        ctx.spaces.on_commit(repo)
    return {"url": url, "name": repo_id, "id": repo_id}


class DeleteRepoBody(BaseModel):
    name: str
    organization: str | None = None
    type: str | None = None


@router.delete("/api/repos/delete")
def delete_repo(body: DeleteRepoBody, ctx: Ctx, identity: Caller) -> dict[str, Any]:
    user = require_user(identity)
    repo_id = f"{body.organization or user.name}/{body.name}"
    repo = writable(ctx, body.type or "model", repo_id, user)
    if repo.type == "space":
        ctx.spaces.forget(repo.id)
    ctx.store.delete(repo)
    return {}


class MoveBody(BaseModel):
    fromRepo: str
    toRepo: str
    type: str | None = None


@router.post("/api/repos/move")
def move_repo(body: MoveBody, ctx: Ctx, identity: Caller) -> dict[str, Any]:
    repo_type = body.type or "model"
    repo = writable(ctx, repo_type, body.fromRepo, identity)
    user = require_user(identity)
    check_namespace(user, body.toRepo.split("/", 1)[0], "create repos in")
    if ctx.store.get(repo_type, body.toRepo) is not None:
        raise Conflict(f"A {repo_type} repository called {body.toRepo} already exists")
    if repo.type == "space":  # its runtime is keyed by the old id
        ctx.spaces.forget(repo.id)
    ctx.store.move(repo, body.toRepo)
    if repo.type == "space":
        ctx.spaces.on_commit(repo)
    return {}


class SettingsBody(BaseModel):
    private: bool | None = None
    visibility: Visibility | None = None
    gated: Literal["auto", "manual", False] | None = None


@router.put(REPO + "/settings")
def update_settings(
    plural: str, namespace: str, name: str, body: SettingsBody, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    repo = writable(ctx, repo_type_of(plural), f"{namespace}/{name}", identity)
    private = body.private if body.private is not None else None
    if private is None and body.visibility is not None:
        private = body.visibility == "private"
    with ctx.store.lock:
        if private is not None:
            repo.private = private
        if body.gated is not None:
            repo.gated = body.gated
        ctx.store.save(repo)
    return {"private": repo.private, "gated": repo.gated}


# -- repo info ------------------------------------------------------------------------------


def _tags(card: dict[str, Any]) -> list[str]:
    tags = [str(t) for t in card.get("tags") or [] if isinstance(t, str | int | float)]
    for key, prefix in (("license", "license:"), ("base_model", "base_model:")):
        values = card.get(key)
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, str):
                tags.append(prefix + value)
    if isinstance(card.get("library_name"), str):
        tags.append(card["library_name"])
    return list(dict.fromkeys(tags))


def _object_id(repo: Repo) -> str:
    """A stable 24-hex id, shaped like the Hub's database ids."""
    return hashlib.sha1(f"{repo.type}/{repo.id}".encode(), usedforsecurity=False).hexdigest()[:24]


def info_payload(
    ctx: Context, repo: Repo, commit: Commit, *, blobs: bool, expand: list[str]
) -> dict[str, Any]:
    readme = commit.tree.get("README.md")
    card = None
    if readme is not None:
        card = card_data_or_none(ctx.store.blobs.read(readme.sha256).decode("utf-8", "replace"))
    siblings = []
    for path, entry in sorted(commit.tree.items()):
        sibling: dict[str, Any] = {"rfilename": path}
        if blobs:
            sibling.update(size=entry.size, blobId=entry.oid)
            if entry.lfs:
                sibling["lfs"] = {
                    "sha256": entry.sha256,
                    "size": entry.size,
                    "pointerSize": len(pointer(entry.sha256, entry.size)),
                }
        siblings.append(sibling)
    data: dict[str, Any] = {
        "_id": _object_id(repo),
        "id": repo.id,
        "author": repo.namespace,
        "sha": commit.id,
        "lastModified": commit.date,
        "createdAt": repo.created_at,
        "private": repo.private,
        "gated": repo.gated,
        "disabled": False,
        "likes": 0,
        "tags": _tags(card or {}),
        "siblings": siblings,
        "usedStorage": sum(e.size for e in commit.tree.values()),
        "xetEnabled": False,  # no Xet storage here: the client uploads through LFS
    }
    if card:
        data["cardData"] = card
    if repo.type == "model":
        data.update(modelId=repo.id, downloads=0, spaces=[])
        for key in ("library_name", "pipeline_tag", "model-index"):
            if card and key in card:
                data[key] = card[key]
    elif repo.type == "dataset":
        data.update(downloads=0, description=None)
    else:
        namespace, name = repo.id.split("/", 1)
        data.update(
            sdk=(repo.space or {}).get("sdk"),
            runtime=ctx.spaces.runtime(repo),
            subdomain=f"{namespace}-{name}",
            host=f"https://{namespace}-{name}.hf.space",
            models=[],
            datasets=[],
        )
    if expand:
        data = {k: v for k, v in data.items() if k in ("_id", "id", *expand)}
    return data


def _info(
    ctx: Context, request: Request, plural: str, repo_id: str, revision: str, identity: Caller
) -> dict[str, Any]:
    repo = readable(ctx, repo_type_of(plural), repo_id, identity)
    commit = ctx.store.resolve(repo, revision)
    params = request.query_params
    blobs = params.get("blobs", "").lower() in ("1", "true")
    expand = params.getlist("expand") + params.getlist("expand[]")
    return info_payload(ctx, repo, commit, blobs=blobs, expand=expand)


@router.get(REPO)
def repo_info(
    plural: str, namespace: str, name: str, request: Request, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    return _info(ctx, request, plural, f"{namespace}/{name}", "main", identity)


@router.get(REPO + "/revision/{revision:path}")
def repo_info_at(
    plural: str,
    namespace: str,
    name: str,
    revision: str,
    request: Request,
    ctx: Ctx,
    identity: Caller,
) -> dict[str, Any]:
    return _info(ctx, request, plural, f"{namespace}/{name}", revision, identity)


@router.get("/api/models")
@router.get("/api/datasets")
@router.get("/api/spaces")
def list_repos(request: Request, ctx: Ctx, identity: Caller) -> Response:
    """`list_models` and its kin (listing.py): each item is the repo's info at main."""
    repo_type = repo_type_of(request.url.path.rsplit("/", 1)[-1])

    def describe(repo: Repo) -> dict[str, Any]:
        head = ctx.store.resolve(repo, "main")
        return info_payload(ctx, repo, head, blobs=False, expand=[])

    return listing.answer(request, repo_type, ctx.store.repos(repo_type), identity, describe)


# -- refs and history -----------------------------------------------------------------------


@router.get(REPO + "/refs")
def list_refs(
    plural: str, namespace: str, name: str, ctx: Ctx, identity: Caller, include_prs: bool = False
) -> dict[str, Any]:
    repo = readable(ctx, repo_type_of(plural), f"{namespace}/{name}", identity)
    with ctx.store.lock:
        branches = sorted(repo.branches.items())
        tags = sorted(repo.tags.items())
        # Only when asked for, as on the Hub: a busy repo has thousands.
        pulls = sorted(repo.pull_requests.items()) if include_prs else []
    return {
        "branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": c} for n, c in branches],
        "converts": [],
        "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": c} for n, c in tags],
        "pullRequests": [{"name": r, "ref": r, "targetCommit": c} for r, c in pulls],
    }


@router.get(REPO + "/commits/{revision:path}")
def list_commits(
    plural: str,
    namespace: str,
    name: str,
    revision: str,
    ctx: Ctx,
    identity: Caller,
    expand: Annotated[list[str] | None, Query(alias="expand[]")] = None,
) -> list[dict[str, Any]]:
    repo = readable(ctx, repo_type_of(plural), f"{namespace}/{name}", identity)
    head = ctx.store.resolve(repo, revision)
    formatted = "formatted" in (expand or [])
    return [_commit_item(c, formatted) for c in ctx.store.history(repo, head)]


def _commit_item(commit: Commit, formatted: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": commit.id,
        "title": commit.title,
        "message": commit.message,
        "date": commit.date,
        "authors": [{"user": commit.author, "avatar": ""}],
    }
    if formatted:  # the Hub renders both as HTML; escaped text is HTML a client can show
        item["formatted"] = {
            "title": html.escape(commit.title),
            "message": html.escape(commit.message),
        }
    return item


class BranchBody(BaseModel):
    startingPoint: str | None = None


@router.post(REPO + "/branch/{branch:path}")
def create_branch(
    plural: str,
    namespace: str,
    name: str,
    branch: str,
    ctx: Ctx,
    identity: Caller,
    body: BranchBody | None = None,
) -> dict[str, Any]:
    repo = writable(ctx, repo_type_of(plural), f"{namespace}/{name}", identity)
    ctx.store.create_branch(repo, branch, body.startingPoint if body else None)
    return {}


@router.delete(REPO + "/branch/{branch:path}")
def delete_branch(
    plural: str, namespace: str, name: str, branch: str, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    repo = writable(ctx, repo_type_of(plural), f"{namespace}/{name}", identity)
    ctx.store.delete_branch(repo, branch)
    return {}


class TagBody(BaseModel):
    tag: str
    message: str | None = None


@router.post(REPO + "/tag/{revision:path}")
def create_tag(
    plural: str,
    namespace: str,
    name: str,
    revision: str,
    body: TagBody,
    ctx: Ctx,
    identity: Caller,
) -> dict[str, Any]:
    repo = writable(ctx, repo_type_of(plural), f"{namespace}/{name}", identity)
    ctx.store.create_tag(repo, body.tag, revision)
    return {}


@router.delete(REPO + "/tag/{tag:path}")
def delete_tag(
    plural: str, namespace: str, name: str, tag: str, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    repo = writable(ctx, repo_type_of(plural), f"{namespace}/{name}", identity)
    ctx.store.delete_tag(repo, tag)
    return {}
