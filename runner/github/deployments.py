"""Channel moves as GitHub deployments: one per move, environment `<adapter>-<channel>`, so
GitHub's deployments view is each channel's release history. The move's payload is made here
once, for the deployment and the webhook alike."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from runner.github.rest import DEFAULT_API_URL, GitHubError, github_call
from runner.hub.redact import register_secret
from runner.promote.result import ReconcileResult

EVENT = "channel.moved"
STABLE = "stable"
_NEEDS = "`deployments: write`"
# GitHub keeps a status description to 140 characters; the deployment's is cut alike.
DESCRIPTION_LIMIT = 140
# Deployments of one environment at one commit: a handful (one per channel move); a page of
# 100 holds them all.
_PAGE = 100


@dataclass(frozen=True)
class Move:
    """A channel that moved in a reconcile run, with what announces it."""

    payload: dict[str, Any]

    @property
    def title(self) -> str:
        """`kwanzaa-mini stable: v2 → v1`."""
        p = self.payload
        before = f"v{p['from']}" if p["from"] is not None else "(none)"
        return f"{p['adapter']} {p['channel']}: {before} → v{p['to']}"


def moves(result: ReconcileResult, run_url: str | None) -> list[Move]:
    """The channels `result` moved, each with its payload: what the deployment carries and
    the webhook receives. `id` is the same on every run that announces the move, so a
    receiver can tell a move it has heard before."""
    found = []
    for row in result.moves():
        payload = {
            "event": EVENT,
            "id": f"{row.environment}@{result.commit}:v{row.to_version}",
            "adapter": row.adapter,
            "channel": row.channel,
            "environment": row.environment,
            "from": row.from_version,
            "to": row.to_version,
            "repo_id": row.repo_id,
            "revision": row.channel,
            "hub_commit": row.commit,
            "commit": result.commit,
            "link": row.link,
            "eval": row.eval,
            "run_url": run_url,
        }
        found.append(Move(payload))
    return found


@dataclass
class GitHubDeployments:
    repository: str
    token: str
    api_url: str = DEFAULT_API_URL

    def __post_init__(self) -> None:
        register_secret(self.token)

    def announce(self, move: Move) -> str:
        """Create the move's deployment at its git commit and mark it successful; a move
        already deployed (a rerun of the job) is not deployed twice. Returns what was done."""
        existing = self._deployment_of(move)
        if existing is None:
            created = self._call("POST", f"/repos/{self.repository}/deployments", _request(move))
            if not isinstance(created, dict) or "id" not in created:
                raise GitHubError(f"GitHub did not create the deployment of {move.title}")
            self._succeed(created["id"], move)
            return f"deployment {created['id']} created" + self._retire_earlier(move, created["id"])
        if not self._succeeded(existing["id"]):  # the job stopped between the two calls
            self._succeed(existing["id"], move)
            done = self._retire_earlier(move, existing["id"])
            return f"deployment {existing['id']} completed{done}"
        return f"already announced (deployment {existing['id']})"

    def _retire_earlier(self, move: Move, current: int) -> str:
        """Mark the environment's earlier successful deployments inactive, newest first, up to
        the first one already inactive: GitHub's `auto_inactive` leaves those of a production
        environment (`stable`) active, and the view should show one active version."""
        query = f"environment={quote(move.payload['environment'])}&per_page={_PAGE}"
        listed = self._call("GET", f"/repos/{self.repository}/deployments?{query}")
        retired = []
        for deployment in (d for d in listed if d["id"] != current):
            path = f"/repos/{self.repository}/deployments/{deployment['id']}/statuses"
            statuses = self._call("GET", f"{path}?per_page=1")  # newest first
            latest = statuses[0].get("state") if statuses else None
            if latest == "inactive":
                break
            if latest == "success":
                replaced = f"replaced by {move.title}"[:DESCRIPTION_LIMIT]
                self._call("POST", path, {"state": "inactive", "description": replaced})
                retired.append(str(deployment["id"]))
        return f"; {', '.join(retired)} now inactive" if retired else ""

    def _deployment_of(self, move: Move) -> dict[str, Any] | None:
        p = move.payload
        query = f"environment={quote(p['environment'])}&sha={p['commit']}&per_page={_PAGE}"
        listed = self._call("GET", f"/repos/{self.repository}/deployments?{query}")
        return next((d for d in listed if _announces(d, move)), None)

    def _succeeded(self, deployment: int) -> bool:
        path = f"/repos/{self.repository}/deployments/{deployment}/statuses?per_page={_PAGE}"
        return any(status.get("state") == "success" for status in self._call("GET", path))

    def _succeed(self, deployment: int, move: Move) -> None:
        status = {
            "state": "success",
            "environment_url": move.payload["link"] or "",
            "log_url": move.payload["run_url"] or "",
            "description": move.title[:DESCRIPTION_LIMIT],
            # GitHub marks the environment's earlier deployments inactive: one active
            # version per channel in the deployments view.
            "auto_inactive": True,
        }
        path = f"/repos/{self.repository}/deployments/{deployment}/statuses"
        self._call("POST", path, status)

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        return github_call(self.api_url, self.token, method, path, payload, needs=_NEEDS)


def _request(move: Move) -> dict[str, Any]:
    p = move.payload
    return {
        "ref": p["commit"],
        "environment": p["environment"],
        "description": move.title[:DESCRIPTION_LIMIT],
        "payload": p,
        # A channel move is already done on the Hub: GitHub must neither merge the default
        # branch into the commit nor wait for its checks (it refuses while they are pending).
        "auto_merge": False,
        "required_contexts": [],
        "production_environment": p["channel"] == STABLE,
        "transient_environment": False,
    }


def _announces(deployment: dict[str, Any], move: Move) -> bool:
    """A deployment made for this very move: same channel, same version."""
    payload = deployment.get("payload")
    if isinstance(payload, str):  # GitHub returns a payload posted as JSON text as text
        try:
            payload = json.loads(payload)
        except ValueError:
            return False
    if not isinstance(payload, dict):
        return False
    wanted = (EVENT, move.payload["channel"], move.payload["to"])
    return (payload.get("event"), payload.get("channel"), payload.get("to")) == wanted
