"""Discussions and pull requests (`/api/{type}s/{id}/discussions/...`), and super-squash.

Anyone who can read a repo may open a discussion or a pull request on it and comment; its
author or a writer of the repo may rename, close or reopen it; only a writer may merge."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from runner.hub.emulator import discussions
from runner.hub.emulator.auth import Identity, check_namespace, require_user
from runner.hub.emulator.context import REPO, Caller, Context, Ctx, readable, repo_type_of, writable
from runner.hub.emulator.errors import Forbidden
from runner.hub.emulator.storage import Repo

router = APIRouter()
DISCUSSION = REPO + "/discussions/{num}"


def _participant(
    ctx: Context, plural: str, namespace: str, name: str, identity: Identity | None
) -> tuple[Repo, Identity]:
    """The repo and the signed-in caller, who must be able to read it."""
    user = require_user(identity)
    return readable(ctx, repo_type_of(plural), f"{namespace}/{name}", user), user


def _check_author_or_writer(user: Identity, repo: Repo, author: str, what: str) -> None:
    if user.name.lower() != author.lower() and user.write_refusal(repo.namespace) is not None:
        raise Forbidden(f"Only its author or a writer of {repo.id} may {what}")


@router.get(REPO + "/discussions")
def list_discussions(
    plural: str,
    namespace: str,
    name: str,
    ctx: Ctx,
    identity: Caller,
    type: str | None = None,
    status: str | None = None,
    author: str | None = None,
    p: int = 0,
) -> dict[str, Any]:
    repo = readable(ctx, repo_type_of(plural), f"{namespace}/{name}", identity)
    return discussions.listing(ctx.store, repo, kind=type, status=status, author=author, page=p)


class NewDiscussionBody(BaseModel):
    title: str
    description: str = ""
    pullRequest: bool = False


@router.post(REPO + "/discussions")
def create_discussion(
    plural: str, namespace: str, name: str, body: NewDiscussionBody, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    repo, user = _participant(ctx, plural, namespace, name, identity)
    # Opened on its own, a pull request is a draft until its author marks it open.
    created = discussions.create(
        ctx.store,
        repo,
        author=user.name,
        title=body.title,
        description=body.description,
        pull_request=body.pullRequest,
        status="draft" if body.pullRequest else "open",
    )
    return discussions.details(ctx.store, repo, created["num"])


@router.get(DISCUSSION)
def get_discussion(
    plural: str, namespace: str, name: str, num: int, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    repo = readable(ctx, repo_type_of(plural), f"{namespace}/{name}", identity)
    return discussions.details(ctx.store, repo, num)


class CommentBody(BaseModel):
    comment: str


@router.post(DISCUSSION + "/comment")
def comment(
    plural: str, namespace: str, name: str, num: int, body: CommentBody, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    repo, user = _participant(ctx, plural, namespace, name, identity)
    event = discussions.comment(ctx.store, repo, num, user.name, body.comment)
    return {"newMessage": event}


class EditCommentBody(BaseModel):
    content: str = Field(min_length=1)


@router.post(DISCUSSION + "/comment/{comment_id}/edit")
def edit_comment(
    plural: str,
    namespace: str,
    name: str,
    num: int,
    comment_id: str,
    body: EditCommentBody,
    ctx: Ctx,
    identity: Caller,
) -> dict[str, Any]:
    repo, user = _participant(ctx, plural, namespace, name, identity)
    event = discussions.edit_comment(ctx.store, repo, num, comment_id, user.name, body.content)
    return {"updatedComment": event}


@router.post(DISCUSSION + "/comment/{comment_id}/hide")
def hide_comment(
    plural: str, namespace: str, name: str, num: int, comment_id: str, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    repo, user = _participant(ctx, plural, namespace, name, identity)
    check_namespace(user, repo.namespace, "hide comments in")
    return {"updatedComment": discussions.hide_comment(ctx.store, repo, num, comment_id)}


class TitleBody(BaseModel):
    title: str


@router.post(DISCUSSION + "/title")
def rename(
    plural: str, namespace: str, name: str, num: int, body: TitleBody, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    repo, user = _participant(ctx, plural, namespace, name, identity)
    _check_author_or_writer(user, repo, discussions.author_of(ctx.store, repo, num), "rename it")
    return {"newTitle": discussions.rename(ctx.store, repo, num, user.name, body.title)}


class StatusBody(BaseModel):
    status: str
    comment: str | None = None


@router.post(DISCUSSION + "/status")
def change_status(
    plural: str, namespace: str, name: str, num: int, body: StatusBody, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    repo, user = _participant(ctx, plural, namespace, name, identity)
    _check_author_or_writer(
        user, repo, discussions.author_of(ctx.store, repo, num), "change its status"
    )
    event = discussions.change_status(ctx.store, repo, num, user.name, body.status, body.comment)
    return {"newStatus": event}


class MergeBody(BaseModel):
    comment: str | None = None


@router.post(DISCUSSION + "/merge")
def merge(
    plural: str,
    namespace: str,
    name: str,
    num: int,
    ctx: Ctx,
    identity: Caller,
    body: MergeBody | None = None,
) -> dict[str, Any]:
    repo = writable(ctx, repo_type_of(plural), f"{namespace}/{name}", identity)
    user = require_user(identity)
    merged = discussions.merge(ctx.store, repo, num, user.name, body.comment if body else None)
    if repo.type == "space":
        ctx.spaces.on_commit(repo)
    return {"mergeCommitId": merged["mergeCommitId"]}


class SquashBody(BaseModel):
    message: str = Field(min_length=1)


@router.post(REPO + "/super-squash/{ref:path}")
def super_squash(
    plural: str,
    namespace: str,
    name: str,
    ref: str,
    body: SquashBody,
    ctx: Ctx,
    identity: Caller,
) -> dict[str, Any]:
    repo = writable(ctx, repo_type_of(plural), f"{namespace}/{name}", identity)
    user = require_user(identity)
    squashed = ctx.store.squash(repo, ref, body.message, author=user.name)
    if repo.type == "space" and discussions.pr_num(ref) is None:
        ctx.spaces.on_commit(repo)
    return {"commitId": squashed.id}
