"""A small stand-in for the parts of GitHub's REST API the runner calls (GitHub itself cannot
be reached from here): issue comments and their authors, a PR's head and changed files, the
merged PRs of a commit, deployments and their statuses."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

TOKEN = "ghs_workflowTokenValue123"
REPO = "ainative/adapters"


def event(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, payload: dict[str, Any]
) -> Path:
    """The environment of a workflow step run by event `name`; returns its GITHUB_OUTPUT."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(payload))
    outputs = tmp_path / "outputs.txt"
    monkeypatch.setenv("GITHUB_EVENT_NAME", name)
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(path))
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    return outputs


def push(root: Path, before: str) -> dict[str, Any]:
    """A push event that moved main from `before` to the checkout's HEAD."""

    def commit(revision: str) -> str:
        done = subprocess.run(
            ["git", "rev-parse", revision], cwd=root, check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    return {"ref": "refs/heads/main", "before": commit(before), "after": commit("HEAD")}


BOT = {"login": "github-actions[bot]", "type": "Bot"}  # who a workflow's token posts as
BODY_LIMIT = 65536  # GitHub answers 422 to a longer comment body


class FakeGitHub(BaseHTTPRequestHandler):
    """Issue comments: list (paged), create, edit, each with its author; a PR's head and its
    changed files (paged); the PRs of a commit; deployments (created, listed by environment and
    sha) and their statuses. Every call needs the bearer token."""

    comments: dict[int, dict[str, Any]]
    calls: list[tuple[str, str]]
    pulls_of_commit: list[dict[str, Any]]  # what /commits/{sha}/pulls answers
    pr_files: list[str]  # what /pulls/{n}/files lists
    head_sha: str  # the head of every PR
    author: dict[str, str]  # the user the token posts as
    deployments: dict[int, dict[str, Any]]  # by id: what each create request sent
    deployment_statuses: dict[int, list[dict[str, Any]]]  # by deployment id, as sent

    def _reply(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _page(self, items: list[Any]) -> None:
        page = int(parse_qs(urlsplit(self.path).query)["page"][0])
        self._reply(200, items[(page - 1) * 100 : page * 100])

    def _handle(self) -> None:
        self.calls.append((self.command, self.path))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._reply(401, {"message": "Bad credentials"})
        length = int(self.headers.get("Content-Length") or 0)
        data = json.loads(self.rfile.read(length) or b"{}")
        path = urlsplit(self.path).path
        if "/deployments" in path:
            return self._deployments(path.split("/deployments", 1)[1].strip("/"), data)
        if self.command == "GET" and "/commits/" in path:
            return self._reply(200, self.pulls_of_commit)
        if self.command == "GET" and path.endswith("/files"):
            return self._page([{"filename": f, "status": "modified"} for f in self.pr_files])
        if self.command == "GET" and "/pulls/" in path:
            return self._reply(200, {"head": {"sha": self.head_sha}})
        if self.command == "GET":
            return self._page(sorted(self.comments.values(), key=lambda c: c["id"]))
        if len(data["body"]) > BODY_LIMIT:
            message = f"Body is too long (maximum is {BODY_LIMIT} characters)"
            return self._reply(422, {"message": "Validation Failed", "errors": [message]})
        if self.command == "POST":
            number = len(self.comments) + 1
            self.comments[number] = {"id": number, "body": data["body"], "user": self.author}
            return self._reply(201, self.comments[number])
        number = int(path.rsplit("/", 1)[1])
        self.comments[number]["body"] = data["body"]
        return self._reply(200, self.comments[number])

    def _deployments(self, rest: str, data: dict[str, Any]) -> None:
        """`rest`: "" for the deployments, "{id}/statuses" for one's statuses."""
        if rest:
            number = int(rest.split("/")[0])
            if self.command == "GET":  # newest first, as GitHub lists them
                return self._reply(200, self.deployment_statuses.get(number, [])[::-1])
            self.deployment_statuses.setdefault(number, []).append(data)
            return self._reply(201, data)
        if self.command == "POST":
            number = len(self.deployments) + 1
            self.deployments[number] = data
            return self._reply(201, self._deployment(number))
        query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        listed = [self._deployment(n) for n in sorted(self.deployments, reverse=True)]
        wanted = [
            d for d in listed
            if all(d[key] == query[key] for key in ("environment", "sha") if key in query)
        ]  # fmt: skip
        return self._reply(200, wanted)

    def _deployment(self, number: int) -> dict[str, Any]:
        """A deployment as GitHub shows it: its id and commit besides what was sent."""
        return {**self.deployments[number], "id": number, "sha": self.deployments[number]["ref"]}

    do_GET = do_POST = do_PATCH = _handle

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeGitHub]]:
    merged = [{"number": 12, "merged_at": "2026-11-22T10:00:00Z"}]
    attributes = {
        "comments": {},
        "calls": [],
        "pulls_of_commit": merged,
        "pr_files": [],
        "head_sha": "c" * 40,
        "author": BOT,
        "deployments": {},
        "deployment_statuses": {},
    }
    handler = type("Handler", (FakeGitHub,), attributes)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    yield handler
    server.shutdown()
