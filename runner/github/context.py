"""What a workflow step knows about its run: the event payload (`GITHUB_EVENT_PATH`), the
base ref (`GITHUB_BASE_REF`), the repository, and where outputs go (`GITHUB_OUTPUT`)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import InputError

_NO_COMMIT = "0" * 40


@dataclass(frozen=True)
class GitHubContext:
    event_name: str | None
    repository: str | None
    base_ref: str | None
    event: dict[str, Any] = field(default_factory=dict)
    server_url: str = "https://github.com"
    run_id: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> GitHubContext:
        path = env.get("GITHUB_EVENT_PATH")
        event: dict[str, Any] = {}
        if path:
            try:
                loaded = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise InputError(
                    f"GITHUB_EVENT_PATH={path}: not a readable event: {error}"
                ) from None
            event = loaded if isinstance(loaded, dict) else {}
        return cls(
            env.get("GITHUB_EVENT_NAME"),
            env.get("GITHUB_REPOSITORY"),
            env.get("GITHUB_BASE_REF") or None,
            event,
            env.get("GITHUB_SERVER_URL") or "https://github.com",
            env.get("GITHUB_RUN_ID") or None,
        )

    @property
    def run_url(self) -> str | None:
        """This workflow run's page, for links in comments and summaries."""
        if not (self.repository and self.run_id):
            return None
        return f"{self.server_url.rstrip('/')}/{self.repository}/actions/runs/{self.run_id}"

    def pushed_commit(self) -> str | None:
        """The commit a push event brought to its branch (None for other events)."""
        after = self.event.get("after")
        return after if isinstance(after, str) and after != _NO_COMMIT else None

    def base_commit(self) -> str | None:
        """What the change is compared with: the PR's base commit, or the commit a push
        replaced (None for a new branch)."""
        if "pull_request" in self.event:
            return self.event["pull_request"]["base"]["sha"]
        before = self.event.get("before")
        if isinstance(before, str) and before != _NO_COMMIT:
            return before
        return None

    def pr_number(self) -> int | None:
        if "pull_request" in self.event:
            return int(self.event["pull_request"]["number"])
        runs = (self.event.get("workflow_run") or {}).get("pull_requests") or []
        return int(runs[0]["number"]) if runs else None

    def from_fork(self) -> bool:
        """A PR whose head lives in another repository: it must never reach a secret."""
        pull = self.event.get("pull_request")
        if not pull:
            return False
        head = (pull.get("head") or {}).get("repo") or {}
        base = (pull.get("base") or {}).get("repo") or {}
        return head.get("full_name") != base.get("full_name")


def write_output(name: str, value: str, env: Mapping[str, str] = os.environ) -> bool:
    """Append `name` to the step's outputs; False outside GitHub Actions. Multi-line values
    use a random delimiter, so a value cannot inject another output."""
    path = env.get("GITHUB_OUTPUT")
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as stream:
        if "\n" in value:
            delimiter = f"EOF_{uuid.uuid4().hex}"
            stream.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
        else:
            stream.write(f"{name}={value}\n")
    return True
