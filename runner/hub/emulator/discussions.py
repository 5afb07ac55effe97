"""Discussions and pull requests of a repo, numbered from 1 in one sequence as on the Hub.

A pull request is a discussion with its own ref, `refs/pr/<num>`, made from the head of its
target branch; commits land on that ref, and merging applies the pull request's changes
since it was opened to the target branch. Each repo's discussions are kept, with their events
in the JSON shape the Hub sends, in `discussions.json` inside the repo's folder, so deleting
the repo deletes them."""

from __future__ import annotations

import html
import json
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from runner.hub.emulator.blobs import FileEntry, now_iso, write_json_atomic
from runner.hub.emulator.errors import BadRequest, Conflict, HubError, RevisionNotFound
from runner.hub.emulator.storage import Commit, Operation, Repo, Store

T = TypeVar("T")

Status = Literal["open", "closed", "merged", "draft"]
# The Hub's page size for discussion listings.
PAGE_SIZE = 50
MAX_TITLE_CHARS = 200
PR_REF_PREFIX = "refs/pr/"


class DiscussionNotFound(HubError):
    status = 404

    def __init__(self, num: int) -> None:
        super().__init__(f"Discussion #{num} not found")


def pr_ref(num: int) -> str:
    return f"{PR_REF_PREFIX}{num}"


def pr_num(ref: str) -> int | None:
    """The number of the pull request whose ref this is; None for any other revision."""
    tail = ref.removeprefix(PR_REF_PREFIX)
    return int(tail) if ref.startswith(PR_REF_PREFIX) and tail.isdigit() else None


# -- persistence ----------------------------------------------------------------------------


def _file(store: Store, repo: Repo) -> Path:
    return store.repo_dir(repo) / "discussions.json"


def _load(store: Store, repo: Repo) -> list[dict[str, Any]]:
    path = _file(store, repo)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def _save(store: Store, repo: Repo, discussions: list[dict[str, Any]]) -> None:
    write_json_atomic(_file(store, repo), discussions)


def _find(discussions: list[dict[str, Any]], num: int) -> dict[str, Any]:
    for discussion in discussions:
        if discussion["num"] == num:
            return discussion
    raise DiscussionNotFound(num)


def _with_discussion(
    store: Store, repo: Repo, num: int, change: Callable[[dict[str, Any]], T]
) -> T:
    """Apply `change(discussion)` under the store's lock and persist; returns its result."""
    with store.lock:
        discussions = _load(store, repo)
        result = change(_find(discussions, num))
        _save(store, repo, discussions)
        return result


# -- events ---------------------------------------------------------------------------------


def _event(kind: str, author: str, data: dict[str, Any]) -> dict[str, Any]:
    # Event ids are 24 hex digits on the Hub (database object ids).
    return {
        "id": secrets.token_hex(12),
        "type": kind,
        "createdAt": now_iso(),
        "author": {"name": author},
        "data": data,
    }


def _comment_version(text: str, author: str) -> dict[str, Any]:
    # The Hub renders markdown; escaped text in a paragraph is HTML a client can show.
    return {
        "raw": text,
        "html": f"<p>{html.escape(text)}</p>",
        "updatedAt": now_iso(),
        "author": {"name": author},
    }


def _comment(text: str, author: str) -> dict[str, Any]:
    latest = _comment_version(text, author)
    return _event(
        "comment", author, {"edited": False, "hidden": False, "latest": latest, "history": [latest]}
    )


def _add_event(discussion: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    discussion["events"].append(event)
    return event


# -- reading --------------------------------------------------------------------------------


def _summary(repo: Repo, discussion: dict[str, Any]) -> dict[str, Any]:
    return {
        "num": discussion["num"],
        "title": discussion["title"],
        "author": {"name": discussion["author"]},
        "createdAt": discussion["createdAt"],
        "status": discussion["status"],
        "isPullRequest": discussion["isPullRequest"],
        "repo": {"name": repo.id, "type": repo.type},
        "pinned": False,
        "numComments": sum(e["type"] == "comment" for e in discussion["events"]),
    }


def _matches(
    discussion: dict[str, Any], kind: str | None, status: str | None, author: str | None
) -> bool:
    is_pr = discussion["isPullRequest"]
    # A draft pull request is listed with the open ones.
    shown_status = "open" if discussion["status"] == "draft" else discussion["status"]
    return (
        kind in (None, "all", "pull_request" if is_pr else "discussion")
        and status in (None, "all", shown_status)
        and (author is None or author.lower() == discussion["author"].lower())
    )


def listing(
    store: Store,
    repo: Repo,
    *,
    kind: str | None,
    status: str | None,
    author: str | None,
    page: int,
) -> dict[str, Any]:
    """One page of the repo's discussions, newest first, with the total that match."""
    with store.lock:
        chosen = [d for d in _load(store, repo) if _matches(d, kind, status, author)]
    chosen.sort(key=lambda d: d["num"], reverse=True)
    start = max(page, 0) * PAGE_SIZE
    return {
        "discussions": [_summary(repo, d) for d in chosen[start : start + PAGE_SIZE]],
        "count": len(chosen),
        "start": start,
        "numClosedDiscussions": sum(d["status"] != "open" for d in chosen),
    }


def details(store: Store, repo: Repo, num: int) -> dict[str, Any]:
    with store.lock:
        discussion = _find(_load(store, repo), num)
        answer = _summary(repo, discussion) | {"events": discussion["events"], "locked": False}
        if discussion["isPullRequest"]:
            answer |= {
                "changes": {
                    "base": f"refs/heads/{discussion['base']}",
                    "mergeCommitId": discussion.get("mergeCommitId"),
                },
                "filesWithConflicts": _conflicts(store, repo, discussion),
                "diff": "",
            }
        return answer


# -- changes --------------------------------------------------------------------------------


def _clean_title(title: str) -> str:
    title = title.strip()
    if not title or len(title) > MAX_TITLE_CHARS:
        raise BadRequest(f"A title needs 1 to {MAX_TITLE_CHARS} characters")
    return title


def create(
    store: Store,
    repo: Repo,
    *,
    author: str,
    title: str,
    description: str,
    pull_request: bool,
    base: str = "main",
    status: Status = "open",
) -> dict[str, Any]:
    """A new discussion; a pull request also gets its ref, at the head of `base`."""
    title = _clean_title(title)
    with store.lock:
        if pull_request and base not in repo.branches:
            raise RevisionNotFound(base)  # a pull request targets a branch, never a commit
        discussions = _load(store, repo)
        num = max((d["num"] for d in discussions), default=0) + 1
        discussion: dict[str, Any] = {
            "num": num,
            "title": title,
            "author": author,
            "createdAt": now_iso(),
            "status": status,
            "isPullRequest": pull_request,
            "events": [_comment(description, author)],
        }
        if pull_request:
            fork = store.resolve(repo, base).id
            discussion |= {"base": base, "forkCommit": fork, "mergeCommitId": None}
            repo.pull_requests[pr_ref(num)] = fork
            store.save(repo)
        discussions.append(discussion)
        _save(store, repo, discussions)
        return discussion


def commit_in_new_pull_request(
    store: Store,
    repo: Repo,
    base: str,
    author: str,
    title: str,
    description: str,
    commit_to: Callable[[str], Commit],
) -> tuple[int, Commit]:
    """What a commit sent with `create_pr=1` does: open a pull request on `base`, titled with
    the commit's summary, and make `commit_to(its ref)` its first commit; both or neither."""
    with store.lock:
        created = create(
            store,
            repo,
            author=author,
            title=title,
            description=description,
            pull_request=True,
            base=base,
        )
        num = created["num"]
        try:
            return num, commit_and_record(store, repo, pr_ref(num), commit_to)
        except Exception:
            _discard(store, repo, num)
            raise


def commit_and_record(
    store: Store, repo: Repo, ref: str, commit_to: Callable[[str], Commit]
) -> Commit:
    """`commit_to(ref)`; a commit on `refs/pr/<num>` shows in that pull request's events."""
    with store.lock:
        commit = commit_to(ref)
        num = pr_num(ref)
        if num is not None:
            event = _event("commit", commit.author, {"subject": commit.title, "oid": commit.id})
            _with_discussion(store, repo, num, lambda d: _add_event(d, event))
        return commit


def _discard(store: Store, repo: Repo, num: int) -> None:
    with store.lock:
        _save(store, repo, [d for d in _load(store, repo) if d["num"] != num])
        repo.pull_requests.pop(pr_ref(num), None)
        store.save(repo)


def author_of(store: Store, repo: Repo, num: int) -> str:
    with store.lock:
        return _find(_load(store, repo), num)["author"].lower()


def comment(store: Store, repo: Repo, num: int, author: str, text: str) -> dict[str, Any]:
    if not text.strip():
        raise BadRequest("A comment cannot be empty")
    return _with_discussion(store, repo, num, lambda d: _add_event(d, _comment(text, author)))


def _comment_event(discussion: dict[str, Any], comment_id: str) -> dict[str, Any]:
    for event in discussion["events"]:
        if event["id"] == comment_id and event["type"] == "comment":
            return event
    raise BadRequest(f"No comment {comment_id!r} in discussion #{discussion['num']}")


def edit_comment(
    store: Store, repo: Repo, num: int, comment_id: str, author: str, text: str
) -> dict[str, Any]:
    def edit(discussion: dict[str, Any]) -> dict[str, Any]:
        event = _comment_event(discussion, comment_id)
        if event["data"]["hidden"]:
            raise BadRequest("A hidden comment cannot be edited")
        version = _comment_version(text, author)
        event["data"] |= {"edited": True, "latest": version}
        event["data"]["history"].insert(0, version)
        return event

    return _with_discussion(store, repo, num, edit)


def hide_comment(store: Store, repo: Repo, num: int, comment_id: str) -> dict[str, Any]:
    def hide(discussion: dict[str, Any]) -> dict[str, Any]:
        event = _comment_event(discussion, comment_id)
        # Hiding is irreversible on the Hub, and the content is gone for good.
        event["data"] |= {"hidden": True, "history": []}
        event["data"]["latest"] |= {"raw": "", "html": ""}
        return event

    return _with_discussion(store, repo, num, hide)


def rename(store: Store, repo: Repo, num: int, author: str, title: str) -> dict[str, Any]:
    title = _clean_title(title)

    def retitle(discussion: dict[str, Any]) -> dict[str, Any]:
        event = _event("title-change", author, {"from": discussion["title"], "to": title})
        discussion["title"] = title
        return _add_event(discussion, event)

    return _with_discussion(store, repo, num, retitle)


def change_status(
    store: Store, repo: Repo, num: int, author: str, status: str, text: str | None
) -> dict[str, Any]:
    if status not in ("open", "closed"):
        raise BadRequest(f"Invalid status {status!r}; expected 'open' or 'closed'")

    def move(discussion: dict[str, Any]) -> dict[str, Any]:
        if discussion["status"] == "merged":
            raise BadRequest("A merged pull request cannot change status")
        if text and text.strip():
            _add_event(discussion, _comment(text.strip(), author))
        discussion["status"] = status
        return _add_event(discussion, _event("status-change", author, {"status": status}))

    return _with_discussion(store, repo, num, move)


# -- merging --------------------------------------------------------------------------------


def _changed_paths(before: Mapping[str, FileEntry], after: Mapping[str, FileEntry]) -> set[str]:
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


def _three_trees(
    store: Store, repo: Repo, discussion: dict[str, Any]
) -> tuple[Mapping[str, FileEntry], Mapping[str, FileEntry], Mapping[str, FileEntry]]:
    """The trees where the pull request started, where it is now, and of its target now."""
    fork = store.resolve(repo, discussion["forkCommit"]).tree
    head = store.resolve(repo, pr_ref(discussion["num"])).tree
    target = store.resolve(repo, discussion["base"]).tree
    return fork, head, target


def _conflicts(store: Store, repo: Repo, discussion: dict[str, Any]) -> list[str]:
    """Files both the pull request and its target changed since it opened, differently."""
    if discussion["status"] == "merged" or discussion["base"] not in repo.branches:
        return []
    fork, head, target = _three_trees(store, repo, discussion)
    both = _changed_paths(fork, head) & _changed_paths(fork, target)
    return sorted(p for p in both if head.get(p) != target.get(p))


def merge(store: Store, repo: Repo, num: int, author: str, text: str | None) -> dict[str, Any]:
    """Apply the pull request's changes to its target in one commit, then mark it merged."""
    with store.lock:
        discussions = _load(store, repo)
        discussion = _find(discussions, num)
        _check_mergeable(store, repo, discussion)
        fork, head, _ = _three_trees(store, repo, discussion)
        operations: list[Operation] = [
            ("add", path, head[path]) if path in head else ("delete", path, None)
            for path in sorted(_changed_paths(fork, head))
        ]
        merged = store.commit(
            repo,
            discussion["base"],
            operations,
            title=discussion["title"],
            message=f"Merge pull request #{num} ({pr_ref(num)})",
            author=author,
        )
        if text and text.strip():
            _add_event(discussion, _comment(text.strip(), author))
        discussion |= {"status": "merged", "mergeCommitId": merged.id}
        _add_event(discussion, _event("status-change", author, {"status": "merged"}))
        _save(store, repo, discussions)
        return discussion


def _check_mergeable(store: Store, repo: Repo, discussion: dict[str, Any]) -> None:
    if not discussion["isPullRequest"]:
        raise BadRequest(f"#{discussion['num']} is a discussion, not a pull request")
    if discussion["status"] != "open":
        raise BadRequest(
            f"Only an open pull request can be merged; #{discussion['num']} is "
            f"{discussion['status']}"
        )
    conflicts = _conflicts(store, repo, discussion)
    if conflicts:
        raise Conflict(
            f"Pull request #{discussion['num']} has conflicts with "
            f"{discussion['base']!r}: {', '.join(conflicts[:20])}"
        )
