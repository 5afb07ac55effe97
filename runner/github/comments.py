"""Sticky PR comments: one per adapter and kind (validation, plan, eval, promotion), found by
its hidden marker among the bot's own comments and edited in place, through GitHub's REST API
(standard library only)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runner.github.rest import DEFAULT_API_URL, github_call
from runner.hub.redact import register_secret
from runner.report.markdown import comment_marker, truncation_note

KINDS = ("validation", "plan", "eval", "promotion")

# The author of comments made with a workflow's GITHUB_TOKEN. A GitHub App or a machine user
# posts under its own login: set RUNNER_BOT_LOGIN to it.
DEFAULT_BOT_LOGIN = "github-actions[bot]"
BOT_LOGIN_ENV = "RUNNER_BOT_LOGIN"

# GitHub refuses a longer comment body (422). It is said to count characters (some measure
# 262,144 UTF-8 bytes); 65,536 code points are within both readings.
COMMENT_LIMIT = 65536
# GitHub lists at most 3,000 files of a pull request: 30 pages of 100.
PR_FILE_PAGES = 30
# Pages of a PR's comments read when looking for the bot's own (10,000 comments): past them a
# PR gets a second sticky comment rather than a listing without end.
COMMENT_PAGES = 100
# A body longer than this is cut without cleaning the rest: cleaning removes no more than an
# escape's backslash (and control characters, which no report holds), so it still fills one.
_READ_AHEAD = 4 * COMMENT_LIMIT
_NEEDS = "`pull-requests: write` (or `issues: write`)"

marker = comment_marker


def _as_is(text: str) -> str:
    return text


def sticky_text(
    kind: str,
    adapter: str,
    body: str,
    clean: Callable[[str], str] = _as_is,
    banner: str = "",
) -> str:
    """The comment as posted: the marker, `banner`, then `body` through `clean`, cut to fit
    GitHub's limit with a note at the top (a note at the end could land in an open fence or a
    collapsed `<details>`). `clean` must be idempotent: a cut body is cleaned again, since a
    cut can make a trusted link's host a different one."""
    tag = marker(kind, adapter)
    if body.startswith(tag):
        body = body[len(tag) :].removeprefix("\n")
    head = "".join(f"{part}\n" for part in (tag, banner) if part)
    cleaned = clean(body[:_READ_AHEAD])
    if len(body) <= _READ_AHEAD and len(head) + len(cleaned) <= COMMENT_LIMIT:
        return head + cleaned
    head += truncation_note(len(body), COMMENT_LIMIT) + "\n"
    return head + _cut(cleaned, COMMENT_LIMIT - len(head), clean)


def _cut(cleaned: str, room: int, clean: Callable[[str], str]) -> str:
    kept = cleaned[:room]
    while len(again := clean(kept)) > room:
        kept = kept[: len(kept) - (len(again) - room)]
    return again


@dataclass(frozen=True)
class PullFiles:
    """The paths a pull request changes, as GitHub lists them (renames: both paths);
    `complete` is False past the 3,000 files GitHub lists."""

    paths: tuple[str, ...]
    complete: bool


@dataclass
class GitHubComments:
    repository: str
    token: str
    api_url: str = DEFAULT_API_URL
    bot_login: str = DEFAULT_BOT_LOGIN

    def __post_init__(self) -> None:
        register_secret(self.token)

    def upsert(self, pr: int, kind: str, adapter: str, text: str) -> str:
        """Edit the bot's comment of this kind for this adapter, or create it; `text` is
        what `sticky_text` made. Returns what was done."""
        tag = marker(kind, adapter)
        existing = next((c for c in self._comments(pr) if self._is_sticky(c, tag)), None)
        if existing is None:
            self._call("POST", f"/repos/{self.repository}/issues/{pr}/comments", {"body": text})
            return "created"
        if existing["body"] == text:
            return "unchanged"
        path = f"/repos/{self.repository}/issues/comments/{existing['id']}"
        self._call("PATCH", path, {"body": text})
        return "updated"

    def _is_sticky(self, comment: dict[str, Any], tag: str) -> bool:
        """Ours: the bot wrote it (anyone can start a comment with the marker) and it starts
        with the marker."""
        author = (comment.get("user") or {}).get("login") or ""
        body = comment.get("body") or ""
        return author.casefold() == self.bot_login.casefold() and body.startswith(tag)

    def pr_head(self, pr: int) -> str:
        """The commit at the head of the PR now."""
        return str(self._call("GET", f"/repos/{self.repository}/pulls/{pr}")["head"]["sha"])

    def pr_files(self, pr: int) -> PullFiles:
        """The paths the PR changes, from GitHub (not from anything the PR's run wrote)."""
        listed, complete = self._paged(f"/repos/{self.repository}/pulls/{pr}/files", PR_FILE_PAGES)
        paths = [
            str(entry[key]) for entry in listed for key in ("filename", "previous_filename")
            if entry.get(key)
        ]  # fmt: skip
        return PullFiles(tuple(dict.fromkeys(paths)), complete)

    def merged_pulls(self, commit: str) -> list[int]:
        """The merged PRs that brought `commit` (a merge, squash or rebase) to its branch."""
        pulls = self._call("GET", f"/repos/{self.repository}/commits/{commit}/pulls")
        return [int(p["number"]) for p in pulls if p.get("merged_at")]

    def _comments(self, pr: int) -> list[dict[str, Any]]:
        return self._paged(f"/repos/{self.repository}/issues/{pr}/comments", COMMENT_PAGES)[0]

    def _paged(self, path: str, pages: int) -> tuple[list[dict[str, Any]], bool]:
        """A listing, 100 a page, at most `pages` pages; and whether that was all of it."""
        found: list[dict[str, Any]] = []
        for page in range(1, pages + 1):
            batch = self._call("GET", f"{path}?per_page=100&page={page}")
            found += batch
            if len(batch) < 100:
                return found, True
        return found, False

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        return github_call(self.api_url, self.token, method, path, payload, needs=_NEEDS)
