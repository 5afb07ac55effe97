"""Hub features the runner does not use and the emulator does not have: each answers a 404
that names the feature, whatever the method, rather than a missing repo, an unknown repo type
or a 405 from the repo routes that would otherwise catch its paths.

Every path here is one only that feature uses (a literal segment where a repo's path could
be), so that these routes, included before the repo routes, never shadow a real one."""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

from fastapi import APIRouter

from runner.hub.emulator.context import ALL_METHODS, Caller, Ctx, readable, repo_type_of
from runner.hub.emulator.errors import NotServed

router = APIRouter()
# path -> the feature, as the answer names it
FEATURES = {
    "/api/collections": "collections",
    "/api/collections/{rest:path}": "collections",
    "/api/settings/webhooks": "webhooks",
    "/api/settings/webhooks/{rest:path}": "webhooks",
    "/api/papers/{rest:path}": "papers",
    "/api/daily_papers": "papers",
    "/api/users/{user}/overview": "user profiles",
    "/api/users/{user}/followers": "followers",
    "/api/users/{user}/following": "followers",
    "/api/users/{user}/likes": "likes",
    "/api/organizations/{org}/overview": "organization profiles",
    "/api/organizations/{org}/members": "organization members",
    "/api/organizations/{org}/followers": "followers",
    "/api/{plural}/{namespace}/{name}/likers": "likes",
    "/api/buckets": "buckets",
    "/api/buckets/{rest:path}": "buckets",
    "/buckets/{namespace}/{name}/resolve/{rest:path}": "buckets",
    "/api/kernels": "kernel repos",
    "/api/kernels/{rest:path}": "kernel repos",
    "/api/models-tags-by-type": "tag listings",
    "/api/datasets-tags-by-type": "tag listings",
    "/api/spaces/semantic-search": "Space search",
}


def _not_served(feature: str) -> Callable[[], None]:
    def answer() -> None:
        raise NotServed(feature)

    return answer


for _path, _feature in FEATURES.items():
    router.add_api_route(_path, _not_served(_feature), methods=ALL_METHODS, include_in_schema=False)


def _like(plural: str, repo_id: str, ctx: Ctx, identity: Caller) -> NoReturn:
    """(Un)liking a repo: as on the Hub, a repo the caller cannot see is not found first."""
    readable(ctx, repo_type_of(plural), repo_id, identity)
    raise NotServed("likes")


# POST and DELETE only: a GET of `/api/models/{namespace}/like` is the info of a repo named
# `like`. A repo id has one segment (a legacy model) or two, never more: a longer path is
# another route's (a commit to a branch named `like`).
@router.api_route("/api/{plural}/{name}/like", methods=["POST", "DELETE"])
def like_legacy(plural: str, name: str, ctx: Ctx, identity: Caller) -> None:
    _like(plural, name, ctx, identity)


@router.api_route("/api/{plural}/{namespace}/{name}/like", methods=["POST", "DELETE"])
def like(plural: str, namespace: str, name: str, ctx: Ctx, identity: Caller) -> None:
    _like(plural, f"{namespace}/{name}", ctx, identity)
