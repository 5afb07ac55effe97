"""Fault injection and the request log, as one ASGI wrapper around the whole app.

It sits outside FastAPI on purpose: a reset or a timeout must act on the raw connection,
before any route runs, and the log must see every request, including failed ones."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FaultMode = Literal["status", "reset", "timeout"]
CONTROL_PREFIX = "/_emulator/"
_REASONS = {429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass
class FaultRule:
    id: int
    method: str | None
    path: re.Pattern[str]
    mode: FaultMode
    status: int
    remaining: int | None  # None: every matching request, until cleared
    retry_after: int | None
    delay: float
    hits: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "path": self.path.pattern,
            "mode": self.mode,
            "status": self.status,
            "remaining": self.remaining,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "hits": self.hits,
        }


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._next_id = 1

    def add(
        self,
        *,
        method: str | None,
        path: str,
        mode: FaultMode = "status",
        status: int = 500,
        times: int | None = 1,
        retry_after: int | None = None,
        delay: float = 30.0,
    ) -> FaultRule:
        if mode not in ("status", "reset", "timeout"):
            raise ValueError(f"mode must be 'status', 'reset' or 'timeout', not {mode!r}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for every request)")
        with self._lock:
            rule = FaultRule(
                id=self._next_id,
                method=method.upper() if method and method != "*" else None,
                path=re.compile(path),
                mode=mode,
                status=status,
                remaining=times,
                retry_after=retry_after,
                delay=delay,
            )
            self._next_id += 1
            self._rules.append(rule)
            return rule

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first rule matching this request (method exact, path regex searched), spending
        one of its `times`."""
        with self._lock:
            for rule in self._rules:
                if rule.method not in (None, method) or not rule.path.search(path):
                    continue
                if rule.remaining is not None:
                    if rule.remaining <= 0:
                        continue
                    rule.remaining -= 1
                rule.hits += 1
                return rule
        return None

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_json() for r in self._rules]

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()


def redact_headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name in ("authorization", "cookie", "proxy-authorization"):
            scheme = value.split(" ", 1)[0] if " " in value else ""
            value = f"{scheme} <redacted>".strip()
        out[name] = value
    return out


class RequestLog:
    def __init__(self, maxlen: int = 20_000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class FaultMiddleware:
    """Logs every request and applies the first matching fault rule. `/_emulator/` control
    calls are neither logged nor faulted."""

    def __init__(self, app: ASGIApp, faults: FaultInjector, log: RequestLog) -> None:
        self.app = app
        self.faults = faults
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        entry: dict[str, Any] = {
            "time": time.time(),
            "method": scope["method"],
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode("latin-1"),
            "status": None,
            "fault": None,
            "headers": redact_headers(scope.get("headers", [])),
        }
        self.log.add(entry)
        rule = self.faults.take(scope["method"], scope["path"])
        if rule is not None:
            entry["fault"] = rule.mode if rule.mode != "status" else f"status {rule.status}"
            await _drain(receive)
            if rule.mode == "status":
                entry["status"] = rule.status
                await _send_fault(send, rule)
            else:
                if rule.mode == "timeout":
                    await asyncio.sleep(rule.delay)
                await _drop_connection(send)
            return

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                # An exact Date (uvicorn's own is cached for up to a second, so it is turned
                # off): the client stops replaying Space logs at the first event after it.
                date = formatdate(usegmt=True).encode()
                message = {**message, "headers": [*message.get("headers", []), (b"date", date)]}
            await send(message)

        await self.app(scope, receive, logging_send)


async def _drain(receive: Receive) -> None:
    """Read the request body first, so a faulted upload fails where a real one would: after
    the bytes left the client."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _send_fault(send: Send, rule: FaultRule) -> None:
    reason = _REASONS.get(rule.status, "Injected fault")
    body = json.dumps({"error": f"{reason} (injected by the Hub emulator)"}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-error-message", reason.encode()),
    ]
    if rule.retry_after is not None:
        headers.append((b"retry-after", str(rule.retry_after).encode()))
    await send({"type": "http.response.start", "status": rule.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drop_connection(send: Send) -> None:
    """Close the TCP connection with no response (an RST, so the client sees a reset).

    ASGI has no message for this; uvicorn's `send` is a bound method of its per-request
    cycle, which holds the transport. Marking the cycle disconnected stops uvicorn from
    answering 500 for a handler that returned without a response."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionResetError("injected reset (no transport to close)")
    if getattr(cycle, "disconnected", False) or transport.is_closing():
        return  # the client gave up first (its own timeout): nothing left to drop
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            # SO_LINGER with a zero timeout turns close() into a reset.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    cycle.disconnected = True
