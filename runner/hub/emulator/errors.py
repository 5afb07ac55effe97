"""Errors the emulator answers with, shaped as the Hub shapes them.

`huggingface_hub.utils.hf_raise_for_status` picks the exception class from the
`X-Error-Code` header (RepoNotFound, RevisionNotFound, EntryNotFound) and the message from
`X-Error-Message` and the JSON `error` key, so every error carries all three."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse


class HubError(Exception):
    """An error with the status, error code and message the Hub would send."""

    status = 400
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


class BadRequest(HubError):
    status = 400


class Unauthorized(HubError):
    status = 401


class Forbidden(HubError):
    status = 403


class RepoNotFound(HubError):
    status = 404
    code = "RepoNotFound"

    def __init__(self, repo_id: str, *, status: int = 404) -> None:
        super().__init__(f"Repository not found: {repo_id}")
        self.status = status


class RevisionNotFound(HubError):
    status = 404
    code = "RevisionNotFound"

    def __init__(self, revision: str) -> None:
        super().__init__(f"Invalid rev id: {revision}")


class EntryNotFound(HubError):
    status = 404
    code = "EntryNotFound"

    def __init__(self, path: str, *, commit: str | None = None) -> None:
        # The client caches a file's absence under the commit it was looked up at, so the
        # commit goes back with the 404 just as with a 200.
        headers = {"X-Repo-Commit": commit} if commit else {}
        super().__init__(f"A file with this name doesn't exist: {path}", headers=headers)


class Conflict(HubError):
    status = 409


class StaleParent(HubError):
    status = 412


def _header_safe(text: str) -> str:
    """Headers are latin-1 and one line; the full message stays in the JSON body."""
    flat = " ".join(text.split())
    return flat.encode("latin-1", "replace").decode("latin-1")[:1000]


def error_response(error: HubError) -> JSONResponse:
    headers = {"X-Error-Message": _header_safe(error.message), **error.headers}
    if error.code:
        headers["X-Error-Code"] = error.code
    body: dict[str, object] = {"error": error.message, **error.extra}
    return JSONResponse(body, status_code=error.status, headers=headers)


async def hub_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HubError)
    return error_response(exc)
