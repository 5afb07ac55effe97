"""Errors the emulator answers with, shaped as the Hub shapes them.

`huggingface_hub.utils.hf_raise_for_status` picks the exception class from the
`X-Error-Code` header (RepoNotFound, RevisionNotFound, EntryNotFound) and the message from
`X-Error-Message` and the JSON `error` key, so every error carries all three."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException


class HubJSONResponse(JSONResponse):
    """Every JSON answer, ASCII-escaped: a lone surrogate that arrived in a request's JSON
    (`"\\ud800"`, which Python's parser lets through) can be echoed back as the same escape,
    where Starlette's UTF-8 rendering would fail with a 500. Clients parse the same values."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


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
        # The Hub's words exactly: clients keep them out of their own message, which already
        # says "Repository Not Found" and names the repo in its URL.
        super().__init__("Repository not found")
        self.repo_id = repo_id
        self.status = status


class RepoMoved(HubError):
    """A repo's old id after a move: the Hub sends its URLs on to the new id with a relative
    307 (huggingface_hub follows relative redirects only)."""

    status = 307

    def __init__(self, old_id: str, new_id: str) -> None:
        super().__init__(f"Repository moved to {new_id}")
        self.old_id, self.new_id = old_id, new_id

    def location(self, request: Request) -> str:
        path = request.url.path
        old = f"/{self.old_id}"
        at = path.lower().find(old.lower())
        if at >= 0:
            path = path[:at] + f"/{self.new_id}" + path[at + len(old) :]
        query = request.url.query
        return path + (f"?{query}" if query else "")


class GatedRepo(HubError):
    """A gated repo's files, for a caller without access: 401 when anonymous, else 403."""

    status = 403
    code = "GatedRepo"

    def __init__(self, message: str, *, status: int = 403) -> None:
        super().__init__(message)
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


class InvalidPath(BadRequest):
    """A path a commit may not hold. The Hub answers these with 422, not 400; a BadRequest
    still, so that a commit line's check can prefix its line number to any of them."""

    status = 422


class Conflict(HubError):
    status = 409


class StaleParent(HubError):
    status = 412


class PayloadTooLarge(HubError):
    status = 413


class NotServed(HubError):
    """A Hub feature the emulator does not have: a 404 that names it, so that a client sees
    what is missing here rather than a missing repo or a wrong method."""

    status = 404

    def __init__(self, feature: str) -> None:
        super().__init__(f"The Hub emulator does not serve {feature}")


# Control characters (C0, DEL, C1) end a header line or break the client's log output.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _header_safe(text: str) -> str:
    """Headers are latin-1 and one line; the full message stays in the JSON body."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat.encode("latin-1", "replace").decode("latin-1")[:1000]


# What a client may send as its own trace id (huggingface_hub sends a uuid4 in
# X-Amzn-Trace-Id): echoed back only when it is this plain, so no header can be forged.
_CLIENT_TRACE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


def new_request_id(client_trace_id: str | None = None) -> str:
    """A unique id for one request, shaped as the Hub's load balancer writes it
    (`Root=1-<epoch hex>-<24 hex>`, then `;<the client's trace id>` when it sent one): the id a
    user quotes to support, and the one that ties a client's log line to this answer."""
    request_id = f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    if client_trace_id and _CLIENT_TRACE_ID.fullmatch(client_trace_id):
        request_id += f";{client_trace_id}"
    return request_id


def request_id_for(client_request_id: str, client_trace_id: str) -> str:
    """The client's own `X-Request-Id` when it sent a plain one (the Hub keeps it, so that a
    caller can follow its own id), else a new one."""
    if _CLIENT_TRACE_ID.fullmatch(client_request_id):
        return client_request_id
    return new_request_id(client_trace_id)


def describe_problems(errors: Sequence[Mapping[str, Any]], whole: str = "body") -> str:
    """pydantic's errors as `where: what` (`whole` names the input itself); never the
    offending input, which may be huge."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())) or whole}: {e.get('msg')}" for e in errors
    )


def invalid_request(exc: ValidationError | RequestValidationError) -> BadRequest:
    return BadRequest(f"Invalid request: {describe_problems(exc.errors())}")


def error_response(error: HubError) -> JSONResponse:
    headers = {"X-Error-Message": _header_safe(error.message), **error.headers}
    if error.code:
        headers["X-Error-Code"] = error.code
    body: dict[str, object] = {"error": error.message, **error.extra}
    return HubJSONResponse(body, status_code=error.status, headers=headers)


async def hub_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HubError)
    if isinstance(exc, RepoMoved):
        exc.headers["Location"] = exc.location(request)
    return error_response(exc)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own answers (no such route, wrong method, a body it could not parse) in the
    Hub's shape, an `error` message, rather than FastAPI's `detail`."""
    assert isinstance(exc, StarletteHTTPException)
    error = HubError(str(exc.detail), headers=dict(exc.headers or {}))
    error.status = exc.status_code
    return error_response(error)
