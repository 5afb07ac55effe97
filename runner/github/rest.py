"""One call to GitHub's REST API (standard library only), shared by the comments and the
deployments: the token is sent as a bearer and never appears in an error."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from runner.errors import RunnerError
from runner.hub.redact import redact

DEFAULT_API_URL = "https://api.github.com"
TIMEOUT_S = 30


class GitHubError(RunnerError):
    """A GitHub API call that failed; the token never appears in it."""


def github_call(
    api_url: str,
    token: str,
    method: str,
    path: str,
    payload: dict[str, Any] | None = None,
    *,
    needs: str,
) -> Any:
    """`method path` with `payload` as JSON; the decoded answer. `needs` names the job
    permission the call takes, for the message when GitHub refuses it."""
    request = urllib.request.Request(
        api_url.rstrip("/") + path,
        method=method,
        data=json.dumps(payload).encode() if payload is not None else None,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raise GitHubError(
            redact(
                f"GitHub answered {error.code} to {method} {path}: {error.reason}; the job "
                f"needs {needs} and a valid GITHUB_TOKEN"
            )
        ) from None
    except OSError as error:  # refused, reset, timed out, DNS: URLError is one too
        raise GitHubError(
            redact(f"GitHub could not be reached ({error}); run the job again")
        ) from None
