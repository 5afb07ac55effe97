"""Files: tree listings, preupload, LFS batch and uploads, NDJSON commits, card validation and
downloads."""

from __future__ import annotations

import hashlib
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, NonNegativeInt, StrictStr, ValidationError
from starlette.concurrency import run_in_threadpool

from runner.hub.emulator import discussions, trees
from runner.hub.emulator.access import check_gated
from runner.hub.emulator.auth import Identity, check_namespace, require_user
from runner.hub.emulator.blobs import SHA256_HEX, FileEntry
from runner.hub.emulator.cards import validation_errors, validation_warnings
from runner.hub.emulator.commits import Change, is_ignored, parse_commit
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
from runner.hub.emulator.errors import (
    BadRequest,
    EntryNotFound,
    HubJSONResponse,
    PayloadTooLarge,
    invalid_request,
)
from runner.hub.emulator.lfs import LfsObjectNotFound, lfs_entry, lfs_patterns, wants_lfs
from runner.hub.emulator.storage import Commit, Operation, Repo, check_path, check_path_form

router = APIRouter()


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
    """As on the Hub, binary files (a NUL in the sample), files over 10 MiB and files that
    the repo's `.gitattributes` sends through LFS go `lfs`, the rest `regular` (inline base64
    in the commit). The `oid` of the file already at each path lets the client drop unchanged
    files from the commit; `shouldIgnore` follows the `.gitignore` sent, else the repo's."""
    repo = _committable(
        ctx, repo_type_of(plural), f"{namespace}/{name}", revision, identity, _flag(create_pr)
    )
    commit = ctx.store.resolve(repo, revision)
    patterns = lfs_patterns(_repo_file(ctx, commit, ".gitattributes"))
    gitignore = body.gitIgnore
    if gitignore is None:
        gitignore = _repo_file(ctx, commit, ".gitignore").decode("utf-8", "replace")
    files = []
    for item in body.files:
        path = check_path(item.path)
        lfs = wants_lfs(path, item.size, item.sample, patterns)
        files.append(
            {
                "path": item.path,
                "uploadMode": "lfs" if lfs else "regular",
                "shouldIgnore": is_ignored(path, gitignore),
                "oid": _compared_oid(commit.tree.get(path)),
            }
        )
    return {"files": files, "commitOid": commit.id}


def _repo_file(ctx: Context, commit: Commit, path: str) -> bytes:
    entry = commit.tree.get(path)
    return ctx.store.blobs.read(entry.sha256) if entry else b""


def _committable(
    ctx: Context,
    repo_type: str,
    repo_id: str,
    revision: str,
    identity: Identity | None,
    create_pr: bool,
) -> Repo:
    """As on the Hub, anyone who can read a repo may open a pull request on it, and push to
    a pull request of theirs; every other commit needs write access."""
    pr_num = discussions.pr_num(revision)
    if not create_pr and pr_num is None:
        return writable(ctx, repo_type, repo_id, identity)
    user = require_user(identity)
    repo = readable(ctx, repo_type, repo_id, user)
    if pr_num is not None and user.name.lower() != discussions.author_of(ctx.store, repo, pr_num):
        check_namespace(user, repo.namespace)
    return repo


def _compared_oid(current: FileEntry | None) -> str | None:
    """What the client compares with its own file: the sha256 for an LFS file (it never
    hashes the pointer), the git blob id for a regular one."""
    if current is None:
        return None
    return current.sha256 if current.lfs else current.oid


# -- LFS: the batch API (basic transfer) and the object uploads it points to --------------


class LfsObject(BaseModel):
    oid: StrictStr
    size: NonNegativeInt


class LfsBatchBody(BaseModel):
    operation: Literal["upload"]
    objects: list[LfsObject]
    transfers: list[StrictStr] = ["basic"]
    hash_algo: Literal["sha256"] = "sha256"


LFS_MEDIA_TYPE = "application/vnd.git-lfs+json"
LFS_BATCH = "{namespace}/{name}.git/info/lfs/objects/batch"


@router.post("/" + LFS_BATCH)
async def lfs_batch_model(
    namespace: str, name: str, request: Request, ctx: Ctx, identity: Caller
) -> JSONResponse:
    return await _lfs_batch(ctx, identity, "model", f"{namespace}/{name}", request)


@router.post("/{plural}/" + LFS_BATCH)
async def lfs_batch(
    plural: str, namespace: str, name: str, request: Request, ctx: Ctx, identity: Caller
) -> JSONResponse:
    return await _lfs_batch(ctx, identity, repo_type_of(plural), f"{namespace}/{name}", request)


async def _lfs_batch(
    ctx: Context, identity: Identity | None, repo_type: str, repo_id: str, request: Request
) -> JSONResponse:
    """Upload instructions per object: none for an object the Hub already holds, else a PUT
    of the bytes to the emulator and a verify, as git-lfs's batch API answers them."""
    raw = await request.body()
    try:
        body = LfsBatchBody.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise invalid_request(exc) from None
    writable(ctx, repo_type, repo_id, identity)
    url = base_url(request)
    objects = [_lfs_instructions(ctx, item, url) for item in body.objects]
    payload = {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}
    return HubJSONResponse(payload, media_type=LFS_MEDIA_TYPE)


def _lfs_instructions(ctx: Context, item: LfsObject, url: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"oid": item.oid, "size": item.size}
    if not SHA256_HEX.fullmatch(item.oid):
        return answer | {"error": {"code": 422, "message": "oid must be a sha256 (64 hex)"}}
    if ctx.store.blobs.has(item.oid):
        return answer
    return answer | {
        "authenticated": True,
        "actions": {
            "upload": {"href": f"{url}/lfs/objects/{item.oid}", "header": {}},
            "verify": {"href": f"{url}/lfs/verify", "header": {}},
        },
    }


@router.put("/lfs/objects/{oid}")
async def lfs_upload(oid: str, request: Request, ctx: Ctx) -> Response:
    """Stands in for the storage URL the Hub's batch answer points to. Bytes are kept only
    under their own sha256, and reach a repo only through an authorized commit."""
    data = await request.body()
    if not SHA256_HEX.fullmatch(oid) or hashlib.sha256(data).hexdigest() != oid:
        raise BadRequest(
            f"The uploaded bytes do not have the sha256 {oid[:64]!r} they were sent as"
        )
    await run_in_threadpool(ctx.store.blobs.put, data)
    return Response(status_code=200)


@router.post("/lfs/verify")
def lfs_verify(item: LfsObject, ctx: Ctx) -> dict[str, Any]:
    if not ctx.store.blobs.has(item.oid) or ctx.store.blobs.size(item.oid) != item.size:
        raise LfsObjectNotFound(item.oid)
    return {"oid": item.oid, "size": item.size}


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
    """New files' bytes into the blob store, once the whole payload has been checked; an LFS
    file must name an object uploaded before the commit."""
    operations: list[Operation] = []
    for change in changes:
        match change:
            case ("add", path, bytes() as content):
                operations.append(("add", path, ctx.store.blobs.put(content)))
            case ("add_lfs", path, str() as sha256):
                operations.append(("add", path, _uploaded_object(ctx, path, sha256)))
            case ("delete" | "delete_folder" as kind, path, None):
                operations.append((kind, path, None))
    return operations


def _uploaded_object(ctx: Context, path: str, sha256: str) -> FileEntry:
    if not ctx.store.blobs.has(sha256):
        raise BadRequest(
            f"Your push was rejected because an LFS pointer pointed to a file that does not "
            f"exist: {path!r} (sha256 {sha256}); upload it through the LFS batch API first"
        )
    return lfs_entry(sha256, ctx.store.blobs.size(sha256))


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
    repo = _committable(ctx, repo_type, repo_id, revision, identity, create_pr)
    request = parse_commit(raw)
    operations = _store_contents(ctx, request.changes)
    author = identity.name if identity else "ainative"

    def commit_to(ref: str) -> Commit:
        return ctx.store.commit(
            repo,
            ref,
            operations,
            title=request.summary,
            message=request.description,
            parent=request.parent,
            author=author,
        )

    pr_num = None
    if create_pr:
        pr_num, new = discussions.commit_in_new_pull_request(
            ctx.store, repo, revision, author, request.summary, request.description, commit_to
        )
    else:
        new = discussions.commit_and_record(ctx.store, repo, revision, commit_to)
    if repo.type == "space" and pr_num is None and discussions.pr_num(revision) is None:
        ctx.spaces.on_commit(repo)
    web = f"{url}/{url_prefix(repo.type)}{repo.id}"
    return {
        "success": True,
        "commitOid": new.id,
        "commitUrl": f"{web}/commit/{new.id}",
        "hookOutput": "",
        "pullRequestUrl": None if pr_num is None else f"{web}/discussions/{pr_num}",
    }


# -- LFS files of a repo: listed, and deleted for good (history rewritten) -------------------


@router.get(REPO + "/lfs-files")
def list_lfs_files(
    plural: str, namespace: str, name: str, ctx: Ctx, identity: Caller
) -> list[dict[str, Any]]:
    """Every LFS file any ref's history holds, once, with the first ref (main first) that
    holds it and the date of the oldest commit there that does."""
    repo = writable(ctx, repo_type_of(plural), f"{namespace}/{name}", identity)
    found: dict[str, dict[str, Any]] = {}
    with ctx.store.lock:
        for ref, head in _refs_main_first(repo):
            history = reversed(list(ctx.store.history(repo, ctx.store.resolve(repo, head))))
            for commit in history:
                for path, entry in commit.tree.items():
                    if entry.lfs and entry.oid not in found:
                        found[entry.oid] = {
                            "filename": path,
                            "fileOid": entry.oid,
                            "oid": entry.sha256,
                            "size": entry.size,
                            "pushedAt": commit.date,
                            "ref": ref,
                        }
    return list(found.values())


def _refs_main_first(repo: Repo) -> list[tuple[str, str]]:
    branches = sorted(repo.branches.items(), key=lambda item: item[0] != "main")
    return [(f"refs/heads/{b}", head) for b, head in branches] + sorted(repo.pull_requests.items())


class LfsDeletions(BaseModel):
    sha: list[StrictStr]
    rewriteHistory: bool = True


class LfsDeletionsBody(BaseModel):
    deletions: LfsDeletions


@router.post(REPO + "/lfs-files/batch")
def delete_lfs_files(
    plural: str, namespace: str, name: str, body: LfsDeletionsBody, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    repo = writable(ctx, repo_type_of(plural), f"{namespace}/{name}", identity)
    if not body.deletions.rewriteHistory:
        # Deleting objects under live pointers leaves files no one can download.
        raise BadRequest("The Hub emulator deletes LFS files only with rewriteHistory=true")
    ctx.store.drop_files(repo, set(body.deletions.sha))
    return {}


class ValidateBody(BaseModel):
    content: str = ""
    repoType: str | None = None


@router.post("/api/validate-yaml", response_model=None)
def validate_yaml(body: ValidateBody, request: Request) -> dict[str, Any] | Response:
    errors = validation_errors(body.content)
    if not errors:
        warnings = [{"message": w} for w in validation_warnings(body.content)]
        return {"errors": [], "warnings": warnings}
    # `RepoCard.validate` asks for text and raises the body as is: the Hub's own wording.
    if "text/plain" in request.headers.get("accept", ""):
        text = "\n".join(["Invalid metadata in README.md.", *(f"- Error: {e}" for e in errors)])
        return Response(text, status_code=400, media_type="text/plain")
    payload = {"errors": [{"message": e} for e in errors], "warnings": []}
    return HubJSONResponse(payload, status_code=400)


# -- downloads ------------------------------------------------------------------------------


def _resolve(
    request: Request,
    ctx: Context,
    repo_type: str,
    repo_id: str,
    rest: str,
    identity: Identity | None,
) -> FileResponse:
    repo = readable(ctx, repo_type, repo_id, identity)
    check_gated(request, repo, identity)
    revision, path = ctx.store.split_revision(repo, rest)
    commit = ctx.store.resolve(repo, revision)
    entry = commit.tree.get(check_path_form(path))
    if entry is None:
        raise EntryNotFound(path, commit=commit.id)
    # X-Repo-Commit pins the download to a commit; the ETag (git blob id, quoted as the Hub
    # quotes it) names the blob in the client's cache. For an LFS file the Hub adds the
    # content's sha256 and size, which the client prefers. HEAD gets the same headers as GET.
    headers = {"X-Repo-Commit": commit.id, "ETag": f'"{entry.oid}"'}
    if entry.lfs:
        headers |= {"X-Linked-Etag": f'"{entry.sha256}"', "X-Linked-Size": str(entry.size)}
    return FileResponse(
        ctx.store.blobs.path(entry.sha256), headers=headers, media_type="application/octet-stream"
    )


@router.api_route("/datasets/{namespace}/{name}/resolve/{rest:path}", methods=["GET", "HEAD"])
def resolve_dataset(
    namespace: str, name: str, rest: str, request: Request, ctx: Ctx, identity: Caller
) -> FileResponse:
    return _resolve(request, ctx, "dataset", f"{namespace}/{name}", rest, identity)


@router.api_route("/spaces/{namespace}/{name}/resolve/{rest:path}", methods=["GET", "HEAD"])
def resolve_space(
    namespace: str, name: str, rest: str, request: Request, ctx: Ctx, identity: Caller
) -> FileResponse:
    return _resolve(request, ctx, "space", f"{namespace}/{name}", rest, identity)


@router.api_route("/{namespace}/{name}/resolve/{rest:path}", methods=["GET", "HEAD"])
def resolve_model(
    namespace: str, name: str, rest: str, request: Request, ctx: Ctx, identity: Caller
) -> FileResponse:
    return _resolve(request, ctx, "model", f"{namespace}/{name}", rest, identity)
