"""What a workflow step knows about its run: the event payload (`GITHUB_EVENT_PATH`), the
base ref (`GITHUB_BASE_REF`), the repository, and where outputs go (`GITHUB_OUTPUT`)."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import InputError

_NO_COMMIT = "0" * 40
_COMMIT = re.compile(r"[0-9a-f]{40}")
# Issue and PR numbers are 32-bit on GitHub; anything past that is not a PR of any repository.
_MAX_NUMBER = 2**31 - 1


def positive_number(value: object) -> int | None:
    """`value` when it is a PR number as JSON writes one (1, 2, ...), else None: `true`,
    `1.0`, `1e400`, `"7"` and `-1` are not."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 < value <= _MAX_NUMBER else None


@dataclass(frozen=True)
class GitHubContext:
    event_name: str | None
    repository: str | None
    base_ref: str | None
    event: dict[str, Any] = field(default_factory=dict)
    server_url: str = "https://github.com"
    run_id: str | None = None
    event_path: str | None = None

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
            path or None,
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
        """The PR of a `pull_request` event, or the first PR of a `workflow_run` (none for a
        fork's PR: GitHub lists only the repository's own)."""
        pull = self.event.get("pull_request")
        if isinstance(pull, dict):
            return positive_number(pull.get("number"))
        runs = self._workflow_run().get("pull_requests")
        first = runs[0] if isinstance(runs, list) and runs else None
        return positive_number(first.get("number")) if isinstance(first, dict) else None

    def built_commit(self) -> str:
        """The commit the run behind this `workflow_run` event built: what the comment job
        checks the PR's head against. Without it nothing may be posted."""
        if self.event_path is None:
            raise InputError(
                "GITHUB_EVENT_PATH is not set: this step runs in a `workflow_run` job, whose "
                "event names the commit the PR checks built; nothing was posted"
            )
        if "workflow_run" not in self.event:
            raise InputError(
                f"{self.event_path}: not a `workflow_run` event; run this step from "
                "pr-comment.yml; nothing was posted"
            )
        sha = self._workflow_run().get("head_sha")
        if not isinstance(sha, str) or not _COMMIT.fullmatch(sha):
            shown = json.dumps(sha)[:60] if sha is not None else "missing"
            raise InputError(
                f"{self.event_path}: workflow_run.head_sha is {shown}, not a 40-hex commit id: "
                "the commit the PR checks built is unknown, so nothing was posted"
            )
        return sha

    def _workflow_run(self) -> dict[str, Any]:
        run = self.event.get("workflow_run")
        return run if isinstance(run, dict) else {}

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
