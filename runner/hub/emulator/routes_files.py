"""Files: tree listings, preupload, NDJSON commits, card validation and downloads."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, NonNegativeInt, StrictStr, ValidationError
from starlette.concurrency import run_in_threadpool

from runner.hub.emulator import trees
from runner.hub.emulator.auth import Identity
from runner.hub.emulator.cards import validation_errors
from runner.hub.emulator.commits import Change, parse_commit
from runner.hub.emulator.context import (
    Caller,
    Context,
    Ctx,
    base_url,
    readable,
    repo_type_of,
    url_prefix,
    writable,
)
from runner.hub.emulator.errors import (
    BadRequest,
    EntryNotFound,
    HubJSONResponse,
    PayloadTooLarge,
    invalid_request,
)
from runner.hub.emulator.storage import Operation, check_path, check_path_form

router = APIRouter()
REPO = "/api/{plural}/{namespace}/{name}"
NO_PULL_REQUESTS = (
    "Pull requests are not supported by the Hub emulator: commit to a branch instead "
    "(create_pr=False)"
)


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


@router.get(REPO + "/tree/{rest:path}")
def list_tree(
    plural: str,
    namespace: str,
    name: str,
    rest: str,
    ctx: Ctx,
    identity: Caller,
    recursive: bool = False,
    expand: bool = False,
) -> list[dict[str, Any]]:
    repo = readable(ctx, repo_type_of(plural), f"{namespace}/{name}", identity)
    revision, path = ctx.store.split_revision(repo, rest)
    commit = ctx.store.resolve(repo, revision)
    items = trees.list_tree(commit, path, recursive=recursive)
    if expand:
        trees.add_last_commits(ctx.store, repo, commit, items)
    return items


class PathsInfoBody(BaseModel):
    paths: list[StrictStr] = []
    expand: bool = False


# The Hub answers 413 "too many parameters" above this; the client sends batches of 500.
MAX_PATHS_INFO = 1000


def _paths_info_body(raw: bytes, content_type: str) -> PathsInfoBody:
    """The client posts a form (`paths=a&paths=b&expand=false`); JSON is accepted as well."""
    try:
        if "json" in content_type:
            body = PathsInfoBody.model_validate_json(raw or b"{}")
        else:
            form = parse_qs(raw.decode("utf-8"))
            body = PathsInfoBody.model_validate(
                {"paths": form.get("paths", []), "expand": form.get("expand", ["false"])[0]}
            )
    except UnicodeDecodeError as exc:
        raise BadRequest("Invalid request: the paths-info form is not UTF-8") from exc
    except ValidationError as exc:
        raise invalid_request(exc) from None
    if len(body.paths) > MAX_PATHS_INFO:
        raise PayloadTooLarge(
            f"Too many parameters: {len(body.paths)} paths; ask for at most {MAX_PATHS_INFO} "
            "at a time"
        )
    return body


@router.post(REPO + "/paths-info/{revision:path}")
async def paths_info(
    plural: str,
    namespace: str,
    name: str,
    revision: str,
    request: Request,
    ctx: Ctx,
    identity: Caller,
) -> list[dict[str, Any]]:
    body = _paths_info_body(await request.body(), request.headers.get("content-type", ""))

    def answer() -> list[dict[str, Any]]:
        repo = readable(ctx, repo_type_of(plural), f"{namespace}/{name}", identity)
        commit = ctx.store.resolve(repo, revision)
        items = trees.paths_info(commit, body.paths)
        if body.expand:
            trees.add_last_commits(ctx.store, repo, commit, items)
        return items

    return await run_in_threadpool(answer)


class PreuploadFile(BaseModel):
    path: str
    size: NonNegativeInt = 0
    sample: str = ""


class PreuploadBody(BaseModel):
    files: list[PreuploadFile]
    gitIgnore: str | None = None


@router.post(REPO + "/preupload/{revision:path}")
def preupload(
    plural: str,
    namespace: str,
    name: str,
    revision: str,
    body: PreuploadBody,
    ctx: Ctx,
    identity: Caller,
    create_pr: str | None = None,
) -> dict[str, Any]:
    """Every file goes `regular` (inline base64 in the commit): the client's Xet and LFS paths
    talk to storage services the emulator does not have, with no fallback. The `oid` of the
    file already at each path lets the client drop unchanged files from the commit."""
    if _flag(create_pr):
        raise BadRequest(NO_PULL_REQUESTS)
    repo = writable(ctx, repo_type_of(plural), f"{namespace}/{name}", identity)
    commit = ctx.store.resolve(repo, revision)
    files = []
    for item in body.files:
        current = commit.tree.get(check_path(item.path))
        files.append(
            {
                "path": item.path,
                "uploadMode": "regular",
                "shouldIgnore": False,
                "oid": current.oid if current else None,
            }
        )
    return {"files": files, "commitOid": commit.id}


@router.post(REPO + "/commit/{revision:path}")
async def commit(
    plural: str,
    namespace: str,
    name: str,
    revision: str,
    request: Request,
    ctx: Ctx,
    identity: Caller,
    create_pr: str | None = None,
) -> dict[str, Any]:
    raw = await request.body()
    url = base_url(request)
    return await run_in_threadpool(
        _commit, ctx, identity, repo_type_of(plural), f"{namespace}/{name}", revision, raw, url,
        _flag(create_pr),
    )  # fmt: skip


def _store_contents(ctx: Context, changes: list[Change]) -> list[Operation]:
    """New files' bytes into the blob store, once the whole payload has been checked."""
    return [
        ("add", path, ctx.store.blobs.put(content)) if content is not None else (kind, path, None)
        for kind, path, content in changes
    ]


def _commit(
    ctx: Context,
    identity: Identity | None,
    repo_type: str,
    repo_id: str,
    revision: str,
    raw: bytes,
    url: str,
    create_pr: bool,
) -> dict[str, Any]:
    if create_pr:
        raise BadRequest(NO_PULL_REQUESTS)
    repo = writable(ctx, repo_type, repo_id, identity)
    request = parse_commit(raw)
    new = ctx.store.commit(
        repo,
        revision,
        _store_contents(ctx, request.changes),
        title=request.summary,
        message=request.description,
        parent=request.parent,
        author=identity.name if identity else "ainative",
    )
    if repo.type == "space":
        ctx.spaces.on_commit(repo)
    return {
        "success": True,
        "commitOid": new.id,
        "commitUrl": f"{url}/{url_prefix(repo.type)}{repo.id}/commit/{new.id}",
        "hookOutput": "",
        "pullRequestUrl": None,
    }


class ValidateBody(BaseModel):
    content: str = ""
    repoType: str | None = None


@router.post("/api/validate-yaml", response_model=None)
def validate_yaml(body: ValidateBody) -> dict[str, Any] | JSONResponse:
    errors = validation_errors(body.content)
    if errors:
        payload = {"errors": [{"message": e} for e in errors], "warnings": []}
        return HubJSONResponse(payload, status_code=400)
    return {"errors": [], "warnings": []}


# -- downloads ------------------------------------------------------------------------------


def _resolve(
    ctx: Context, repo_type: str, repo_id: str, rest: str, identity: Identity | None
) -> FileResponse:
    repo = readable(ctx, repo_type, repo_id, identity)
    revision, path = ctx.store.split_revision(repo, rest)
    commit = ctx.store.resolve(repo, revision)
    entry = commit.tree.get(check_path_form(path))
    if entry is None:
        raise EntryNotFound(path, commit=commit.id)
    # X-Repo-Commit pins the download to a commit; the ETag (git blob id, quoted as the Hub
    # quotes it) names the blob in the client's cache. HEAD gets the same headers as GET.
    headers = {"X-Repo-Commit": commit.id, "ETag": f'"{entry.oid}"'}
    return FileResponse(
        ctx.store.blobs.path(entry.sha256), headers=headers, media_type="application/octet-stream"
    )


@router.api_route("/datasets/{namespace}/{name}/resolve/{rest:path}", methods=["GET", "HEAD"])
def resolve_dataset(
    namespace: str, name: str, rest: str, ctx: Ctx, identity: Caller
) -> FileResponse:
    return _resolve(ctx, "dataset", f"{namespace}/{name}", rest, identity)


@router.api_route("/spaces/{namespace}/{name}/resolve/{rest:path}", methods=["GET", "HEAD"])
def resolve_space(namespace: str, name: str, rest: str, ctx: Ctx, identity: Caller) -> FileResponse:
    return _resolve(ctx, "space", f"{namespace}/{name}", rest, identity)


@router.api_route("/{namespace}/{name}/resolve/{rest:path}", methods=["GET", "HEAD"])
def resolve_model(namespace: str, name: str, rest: str, ctx: Ctx, identity: Caller) -> FileResponse:
    return _resolve(ctx, "model", f"{namespace}/{name}", rest, identity)
