"""Repo ids without a namespace (`gpt2`, `repo-that-does-not-exist`).

On the Hub these name legacy canonical repos; none exist here (every repo the emulator holds
is `namespace/name`). Without these routes such a URL matches no route at all, and the bare
404 that answers it carries no `X-Error-Code`, so huggingface_hub cannot tell a missing repo
(`repo_exists` is False, `RepositoryNotFoundError`) from a missing route. Every repo route
answers here as the Hub does for an unknown repo: RepoNotFound, 401 for an anonymous caller.

Registered after every other router: a two-part id whose name happens to be an action
(`ns/tree`, `ns/resolve`) keeps its own routes.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter

from runner.hub.emulator.auth import Identity
from runner.hub.emulator.context import ALL_METHODS, PLURALS, Caller, Context, Ctx, readable

router = APIRouter()
# What follows the repo id in the Hub's repo routes (`/api/models/<id>/<action>/...`).
REPO_ACTIONS = (
    "auth-check",
    "branch",
    "commit",
    "commits",
    "dev-mode",
    "discussions",
    "hardware",
    "lfs-files",
    "logs",
    "paths-info",
    "pause",
    "preupload",
    "refs",
    "restart",
    "revision",
    "runtime",
    "secrets",
    "settings",
    "sleeptime",
    "super-squash",
    "tag",
    "tree",
    "user-access-request",
    "variables",
)


def _repo_not_found(repo_type: str) -> Callable[[str, Context, Identity | None], None]:
    def not_found(name: str, ctx: Ctx, identity: Caller) -> None:
        readable(ctx, repo_type, name, identity)  # raises: no repo without a namespace exists

    return not_found


def _add_routes() -> None:
    for plural, repo_type in PLURALS.items():
        answer = _repo_not_found(repo_type)
        api = f"/api/{plural}/{{name}}"
        router.add_api_route(api, answer, methods=["GET", "HEAD"])
        for action in REPO_ACTIONS:
            router.add_api_route(f"{api}/{action}", answer, methods=ALL_METHODS)
            router.add_api_route(f"{api}/{action}/{{rest:path}}", answer, methods=ALL_METHODS)
    # A model's download; `/datasets/<id>/resolve/...` already reaches the model download
    # route as the (missing) model `datasets/<id>`.
    model_download = _repo_not_found("model")
    router.add_api_route("/{name}/resolve/{rest:path}", model_download, methods=["GET", "HEAD"])


_add_routes()
