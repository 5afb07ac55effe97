"""Sticky PR comments: one per adapter and kind (validation, plan, eval, promotion), found by a
hidden marker and edited in place, through GitHub's REST API (standard library only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from runner.errors import RunnerError
from runner.hub.redact import redact, register_secret
from runner.report.markdown import comment_marker

KINDS = ("validation", "plan", "eval", "promotion")


marker = comment_marker


def with_marker(kind: str, adapter: str, body: str) -> str:
    tag = marker(kind, adapter)
    return body if body.startswith(tag) else f"{tag}\n{body}"


class GitHubError(RunnerError):
    """A GitHub API call that failed; the token never appears in it."""


@dataclass
class GitHubComments:
    repository: str
    token: str
    api_url: str = "https://api.github.com"

    def __post_init__(self) -> None:
        register_secret(self.token)

    def upsert(self, pr: int, kind: str, adapter: str, body: str) -> str:
        """Edit this adapter's comment of this kind, or create it. Returns what was done."""
        text = with_marker(kind, adapter, body)
        tag = marker(kind, adapter)
        existing = next((c for c in self._comments(pr) if c["body"].startswith(tag)), None)
        if existing is None:
            self._call("POST", f"/repos/{self.repository}/issues/{pr}/comments", {"body": text})
            return "created"
        if existing["body"] == text:
            return "unchanged"
        path = f"/repos/{self.repository}/issues/comments/{existing['id']}"
        self._call("PATCH", path, {"body": text})
        return "updated"

    def pr_head(self, pr: int) -> str:
        """The commit at the head of the PR now."""
        return str(self._call("GET", f"/repos/{self.repository}/pulls/{pr}")["head"]["sha"])

    def merged_pulls(self, commit: str) -> list[int]:
        """The merged PRs that brought `commit` (a merge, squash or rebase) to its branch."""
        pulls = self._call("GET", f"/repos/{self.repository}/commits/{commit}/pulls")
        return [int(p["number"]) for p in pulls if p.get("merged_at")]

    def _comments(self, pr: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            path = f"/repos/{self.repository}/issues/{pr}/comments?per_page=100&page={page}"
            batch = self._call("GET", path)
            found += batch
            if len(batch) < 100:
                return found
            page += 1

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            self.api_url.rstrip("/") + path,
            method=method,
            data=json.dumps(payload).encode() if payload is not None else None,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise GitHubError(
                redact(
                    f"GitHub answered {error.code} to {method} {path}: {error.reason}; the job "
                    "needs `pull-requests: write` (or `issues: write`) and a valid GITHUB_TOKEN"
                )
            ) from None
        except OSError as error:  # refused, reset, timed out, DNS: URLError is one too
            raise GitHubError(
                redact(f"GitHub could not be reached ({error}); run the job again")
            ) from None
