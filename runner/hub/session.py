"""The HTTP session huggingface_hub sends every request through, with no request waiting
forever: huggingface_hub creates its client with `timeout=None` and passes `timeout=None`
itself on most API calls, so a Hub that accepts a connection and never answers would hold a
run (and the promote queue) indefinitely.

Installed with huggingface_hub's `set_client_factory`. Each request gets a timeout on every
silence (the policy's, where huggingface_hub left it unset), never past the deadline of the
operation it works for; a failure it ends with is counted against that operation's budget,
and the failure that spends the budget ends the operation there, whichever layer would have
retried it (see `runner.hub.retry`)."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator
from typing import Any

import httpx2
from huggingface_hub import get_session, set_client_factory

from runner.hub.retry import (
    RETRY_STATUS,
    Failure,
    GaveUp,
    Operation,
    RetryPolicy,
    answer_failure,
    current_operation,
)

_install_lock = threading.Lock()
# Requests that work for no operation (a log stream, huggingface_hub used directly) get the
# default timeouts: a process-wide setting that no one HubClient's policy should change.
_OUTSIDE = RetryPolicy()


class BoundedClient(httpx2.Client):
    """huggingface_hub's own client (same hooks, same redirects) whose requests end."""

    def send(
        self, request: httpx2.Request, *, stream: bool = False, **kwargs: Any
    ) -> httpx2.Response:
        operation = current_operation()
        if operation is not None:
            operation.admit()
        _bound_timeouts(request, operation)
        if operation is not None:
            request.stream = _Watched(request.stream, operation)
        try:
            response = super().send(request, stream=True, **kwargs)
        except httpx2.TransportError as error:
            foreign = operation is not None and operation.host not in (None, request.url.host)
            _fail(operation, Failure(error=error, foreign=foreign), error)
            raise
        if operation is not None:
            _check_status(response, operation)
            response.stream = _Watched(response.stream, operation)
        if not stream:
            try:
                response.read()
            except BaseException:
                response.close()
                raise
        return response


def install() -> None:
    """Make huggingface_hub's session a BoundedClient (once per process: replacing it closes
    the connections it pools)."""
    with _install_lock:
        hf_default = get_session()
        if isinstance(hf_default, BoundedClient):
            return
        # Its hooks, redirects and timeouts (none: the policy's fill them in, per request).
        settings = {
            "event_hooks": hf_default.event_hooks,
            "follow_redirects": hf_default.follow_redirects,
            "timeout": hf_default.timeout,
        }
        set_client_factory(lambda: BoundedClient(**settings))


def _bound_timeouts(request: httpx2.Request, operation: Operation | None) -> None:
    policy = operation.policy if operation is not None else _OUTSIDE
    asked = request.extensions.get("timeout") or {}
    bounded = {
        kind: asked.get(kind) if asked.get(kind) is not None else policy.timeout
        for kind in ("connect", "read", "write", "pool")
    }
    if operation is not None:
        # Silence may not outlast the operation; bytes still moving may (see _Watched).
        left = max(operation.time_left(), 0.001)
        bounded = {kind: min(seconds, left) for kind, seconds in bounded.items()}
    request.extensions = {**request.extensions, "timeout": bounded}


def _check_status(response: httpx2.Response, operation: Operation) -> None:
    if response.status_code not in RETRY_STATUS:
        return
    ending = operation.record(answer_failure(response.status_code, response.headers))
    if ending is not None:
        response.close()
        raise ending


def _fail(operation: Operation | None, failure: Failure, error: BaseException) -> None:
    if operation is None:
        return
    ending = operation.record(failure)
    if ending is not None:
        raise ending from error


class _Watched(httpx2.SyncByteStream):
    """A request or response body that ends at the operation's deadline, between chunks; a
    transfer that fails after moving bytes costs no attempt (huggingface_hub resumes it)."""

    def __init__(self, inner: Any, operation: Operation) -> None:
        self._inner = inner
        self._operation = operation

    def __iter__(self) -> Iterator[bytes]:
        moved = False
        try:
            for chunk in self._inner:
                if self._operation.time_left() <= 0:
                    raise GaveUp("deadline", self._operation)
                moved = moved or bool(chunk)
                yield chunk
        except httpx2.TransportError as error:
            if not moved:
                _fail(self._operation, Failure(error=error), error)
            raise

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()

    @property
    def elapsed(self) -> datetime.timedelta | None:
        return getattr(self._inner, "elapsed", None)
