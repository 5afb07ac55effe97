"""Bounds on request bodies. Every route reads its body whole, so a body is read here first,
up to its route's bound, and one over it is answered 413 before any route runs: an endless or
hostile upload cannot fill the emulator's memory."""

from __future__ import annotations

import re
from collections import deque

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runner.hub.emulator.errors import PayloadTooLarge, error_response

# A commit carries its regular files inline, base64, and an LFS upload one whole file, so
# theirs is the largest bound: several times the largest thing this project commits
# (SmolLM2-135M's full weights are 270 MB).
COMMIT_BODY_LIMIT = 1 << 30
# Everything else is small JSON or a form: a preupload batch of 256 files with their 512-byte
# samples, or 1,000 paths-info paths of up to 4 KiB each, URL-quoted, fits with room to spare.
BODY_LIMIT = 16 << 20
_UPLOAD_ROUTE = re.compile(
    r"^(?:/api/(?:models|datasets|spaces)/[^/]+/[^/]+/commit/|/lfs/objects/)"
)


def body_limit(path: str) -> int:
    return COMMIT_BODY_LIMIT if _UPLOAD_ROUTE.match(path) else BODY_LIMIT


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _mebibytes(size: int) -> str:
    return f"{size / (1 << 20):g} MiB"


class BodyLimitMiddleware:
    """Reads each request body up to its bound, then hands the route the same messages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"])
        declared = _declared_length(scope)
        # A declared size over the bound is refused before a byte of it is read.
        over = declared is not None and declared > limit
        messages = None if over else await _read(receive, limit)
        if messages is None:
            message = f"Request body too large: {scope['path']} takes at most {_mebibytes(limit)}"
            await error_response(PayloadTooLarge(message))(scope, receive, send)
            return
        await self.app(scope, _replay(messages, receive), send)


async def _read(receive: Receive, limit: int) -> deque[Message] | None:
    """The body's messages, or None once they add up to more than `limit` bytes."""
    messages: deque[Message] = deque()
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages  # the client went away; the route sees that as it would have
        size += len(message.get("body", b""))
        if size > limit:
            return None
        if not message.get("more_body", False):
            return messages


def _replay(pending: deque[Message], receive: Receive) -> Receive:
    """The buffered messages first, each let go once read (a commit's body is not held twice);
    after them the connection's own (a disconnect, say)."""

    async def replayed() -> Message:
        return pending.popleft() if pending else await receive()

    return replayed
