"""Repo listings as the Hub's `/api/models`, `/api/datasets` and `/api/spaces` answer them:
private repos only for who may read them, filtered and sorted as asked, in pages linked by a
`Link: <...>; rel="next"` header (what huggingface_hub's `paginate` follows), each item in the
shape the query asks for: the light default, `full=true`, `cardData=true` or `expand=...`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from runner.hub.emulator.auth import Identity
from runner.hub.emulator.context import visible
from runner.hub.emulator.errors import BadRequest, HubJSONResponse
from runner.hub.emulator.storage import Repo

# What an item holds when the query asks for nothing more, by repo type (the Hub's light
# listing; `ModelInfo` and its kin leave every other attribute None).
LIGHT_KEYS: dict[str, tuple[str, ...]] = {
    "model": (
        "_id",
        "id",
        "modelId",
        "likes",
        "downloads",
        "private",
        "tags",
        "pipeline_tag",
        "library_name",
        "createdAt",
    ),
    "dataset": (
        "_id",
        "id",
        "author",
        "sha",
        "lastModified",
        "private",
        "gated",
        "disabled",
        "downloads",
        "likes",
        "tags",
        "description",
        "createdAt",
    ),
    "space": ("_id", "id", "author", "sha", "lastModified", "private", "likes", "sdk", "tags",
              "createdAt"),
}  # fmt: skip
# The Hub's largest page; the client follows the `next` links for more.
PAGE_SIZE = 1000
SORTS = ("createdAt", "lastModified", "likes", "downloads", "trendingScore")
TRUE = ("1", "true")


@dataclass(frozen=True)
class ListingQuery:
    author: str | None
    search: str | None
    filters: tuple[str, ...]
    gated: bool | None
    sort: str
    full: bool
    card_data: bool
    expand: tuple[str, ...]
    page_size: int
    offset: int

    @classmethod
    def from_request(cls, request: Request) -> ListingQuery:
        params = request.query_params
        sort = params.get("sort") or "createdAt"
        if sort not in SORTS:
            raise BadRequest(f"Invalid sort {sort!r}; expected one of {', '.join(SORTS)}")
        gated = params.get("gated")
        limit = _count(params.get("limit"), "limit", minimum=1)
        return cls(
            author=params.get("author"),
            search=params.get("search"),
            filters=tuple(params.getlist("filter")),
            gated=None if gated is None else gated.lower() in TRUE,
            sort=sort,
            full=params.get("full", "").lower() in TRUE,
            card_data=params.get("cardData", "").lower() in TRUE,
            expand=tuple(params.getlist("expand") + params.getlist("expand[]")),
            page_size=min(limit or PAGE_SIZE, PAGE_SIZE),
            offset=_count(params.get("cursor"), "cursor", minimum=0) or 0,
        )


def _count(value: str | None, name: str, *, minimum: int) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) < minimum:
        raise BadRequest(f"Invalid {name} {value[:20]!r}: expected an integer >= {minimum}")
    return int(value)


def _named_as_asked(repo: Repo, query: ListingQuery) -> bool:
    if query.author and repo.namespace.lower() != query.author.lower():
        return False
    return not query.search or query.search.lower() in repo.id.lower()


def _described_as_asked(item: dict[str, Any], query: ListingQuery) -> bool:
    if query.gated is not None and bool(item.get("gated")) != query.gated:
        return False
    tags = set(item.get("tags") or ())
    return all(f in tags or f == item["id"] for f in query.filters)


def _sort_key(item: dict[str, Any], key: str) -> tuple[bool, Any]:
    value = item.get(key)
    return value is not None, value if value is not None else 0


def shaped(item: dict[str, Any], repo_type: str, query: ListingQuery) -> dict[str, Any]:
    """One listed repo with the keys the query asks for (`item` holds them all)."""
    if query.expand:
        keys: Iterable[str] = ("_id", "id", *query.expand)
    elif query.full:
        return item
    else:
        keys = LIGHT_KEYS[repo_type] + (("cardData",) if query.card_data else ())
    return {key: item[key] for key in keys if key in item}


def answer(
    request: Request,
    repo_type: str,
    repos: Iterable[Repo],
    identity: Identity | None,
    describe: Callable[[Repo], dict[str, Any]],
) -> HubJSONResponse:
    """One page of the listing; `describe` gives a repo's full item (its repo info)."""
    query = ListingQuery.from_request(request)
    chosen = [r for r in repos if visible(r, identity) and _named_as_asked(r, query)]
    items = [item for item in map(describe, chosen) if _described_as_asked(item, query)]
    # Newest (or most) first, as the Hub sorts; ties keep a stable order by id.
    items.sort(key=lambda item: item["id"])
    items.sort(key=lambda item: _sort_key(item, query.sort), reverse=True)
    end = query.offset + query.page_size
    page = [shaped(item, repo_type, query) for item in items[query.offset : end]]
    headers = {}
    if end < len(items):
        following = request.url.include_query_params(cursor=str(end))
        headers["Link"] = f'<{following}>; rel="next"'
    return HubJSONResponse(page, headers=headers)
