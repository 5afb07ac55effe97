"""Fault injection and the request log, as one ASGI wrapper around the whole app.

It sits outside FastAPI on purpose: a reset or a timeout must act on the raw connection,
before any route runs, and the log must see every request, including failed ones."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
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

from runner.hub.emulator.errors import new_request_id

# `rate_limit`: the Hub's 429 over a real window; `lost_reply`: the request is handled (a
# commit lands), then the connection drops before the answer.
FaultMode = Literal["status", "reset", "timeout", "random", "rate_limit", "lost_reply"]
FixedMode = Literal["status", "reset", "timeout", "lost_reply"]
CONTROL_PREFIX = "/_emulator/"
_REASONS = {429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
# What a `random` rule throws at the requests it hits, equally often: the faults a busy Hub
# and a flaky network produce.
RANDOM_KINDS = ("503", "429", "reset", "stall")
DEFAULT_RANDOM_RETRY_AFTER = 1
# The real Hub's policy for its "api" requests: 500 per fixed window of 5 minutes.
RATE_LIMIT_RESOURCE = "api"
RATE_LIMIT_POLICY = '"fixed window";"api";q=500;w=300'


@dataclass(frozen=True)
class Fault:
    """One fault to apply to one request."""

    mode: FixedMode
    status: int
    retry_after: int | None
    delay: float
    rate_limited: bool = False  # a 429 of a spent window: sent with the Hub's RateLimit headers

    def describe(self) -> str:
        """The request log's word for it: `status 503`, `reset`, `timeout` or `lost_reply`."""
        return f"status {self.status}" if self.mode == "status" else self.mode


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
    share: float | None = None  # random rules: the share of matching requests hit
    seed: int | None = None
    rng: random.Random | None = None
    hits: int = 0
    resets_at: float | None = None  # rate_limit rules: when the open window ends (monotonic)

    def hit(self, now: float) -> Fault | None:
        """The fault for the next matching request, or None when the rule lets it through
        (call with the injector's lock held)."""
        if self.mode == "rate_limit":
            fault = self._rate_limited(now)
        elif self._spent():
            return None
        else:
            fault = self.draw()
            if fault is not None and self.remaining is not None:
                self.remaining -= 1
        if fault is not None:
            self.hits += 1
        return fault

    def _rate_limited(self, now: float) -> Fault | None:
        """429 to every request until the open window resets, however many come; the first
        request after it opens the next window, while `times` (counting windows) allows."""
        if self.resets_at is None or now >= self.resets_at:
            if self._spent():
                return None
            self.resets_at = now + (self.retry_after or 0)
            if self.remaining is not None:
                self.remaining -= 1
        # Whole seconds, never early (rounded first: `now + 600 - now` may be 600.0000001).
        reset_in = math.ceil(round(self.resets_at - now, 3))
        return Fault("status", 429, reset_in, 0.0, rate_limited=True)

    def _spent(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def draw(self) -> Fault | None:
        """The fault for the next matching request (call with the injector's lock held):
        this rule's own, or for a random rule, with probability `share`, one of RANDOM_KINDS
        (a stall holds the request `delay` seconds, then drops it)."""
        if self.rng is None:
            return Fault(_fixed_mode(self.mode), self.status, self.retry_after, self.delay)
        if self.rng.random() >= (self.share or 0.0):
            return None
        kind = self.rng.choice(RANDOM_KINDS)
        if kind == "reset":
            return Fault("reset", 0, None, 0.0)
        if kind == "stall":
            return Fault("timeout", 0, None, self.delay)
        if kind == "429":
            wait = DEFAULT_RANDOM_RETRY_AFTER if self.retry_after is None else self.retry_after
            return Fault("status", 429, wait, 0.0)
        return Fault("status", 503, None, 0.0)

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
            "share": self.share,
            "seed": self.seed,
            "hits": self.hits,
        }


def _fixed_mode(mode: FaultMode) -> FixedMode:
    if mode in ("random", "rate_limit"):
        raise ValueError(f"a {mode} rule decides each fault: it has no fixed mode")
    return mode


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
        share: float | None = None,
        seed: int | None = None,
    ) -> FaultRule:
        """A rule for the requests matching `method` (None or `*`: any) and the regex `path`.
        `mode="random"` hits a `share` (0 to 1) of them, drawn from a RNG seeded with `seed`,
        each with one of RANDOM_KINDS; `times` then counts the hits. `mode="rate_limit"`
        answers 429 to all of them for `retry_after` seconds from the first; `times` then
        counts such windows."""
        _check_rule(mode, times, share, retry_after)
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
                share=share,
                seed=seed,
                rng=random.Random(seed) if mode == "random" else None,
            )
            self._next_id += 1
            self._rules.append(rule)
            return rule

    def take(self, method: str, path: str) -> Fault | None:
        """The fault of the first rule matching this request (method exact, path regex
        searched) that hits it, spending one of that rule's `times`."""
        now = time.monotonic()
        with self._lock:
            for rule in self._rules:
                if rule.method not in (None, method) or not rule.path.search(path):
                    continue
                fault = rule.hit(now)
                if fault is not None:
                    return fault
        return None

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_json() for r in self._rules]

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()


def _check_rule(
    mode: FaultMode, times: int | None, share: float | None, retry_after: int | None
) -> None:
    if mode not in ("status", "reset", "timeout", "random", "rate_limit", "lost_reply"):
        raise ValueError(
            "mode must be 'status', 'reset', 'timeout', 'random', 'rate_limit' or "
            f"'lost_reply', not {mode!r}"
        )
    if mode == "rate_limit" and not retry_after:
        raise ValueError("a rate_limit rule needs retry_after: the seconds its window lasts")
    if times is not None and times < 1:
        raise ValueError("times must be at least 1 (or None for every request)")
    if mode == "random" and (share is None or not 0 < share <= 1):
        raise ValueError("a random rule needs a share between 0 (excluded) and 1")
    if mode != "random" and share is not None:
        raise ValueError("share is for mode 'random' only")


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
        fault = self.faults.take(scope["method"], scope["path"])
        if fault is not None and fault.mode == "lost_reply":
            entry["fault"] = fault.describe()
            await self.app(scope, receive, _discard)
            await _drop_connection(send)
            return
        if fault is not None:
            entry["fault"] = fault.describe()
            await _drain(receive)
            if fault.mode == "status":
                entry["status"] = fault.status
                await _send_fault(send, fault)
            else:
                if fault.mode == "timeout":
                    await _stall(receive, fault.delay)
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


async def _discard(message: Message) -> None:
    """The answer to a request whose reply is lost: it was handled, nobody hears how."""


async def _stall(receive: Receive, seconds: float) -> None:
    """Hold the request `seconds`, or until the client gives up on it (its own timeout): a
    stall the client has left must not outlive it (nor hold the server's shutdown)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_disconnected(receive), timeout=seconds)


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_fault(send: Send, rule: Fault) -> None:
    reason = _REASONS.get(rule.status, "Injected fault")
    body = json.dumps({"error": f"{reason} (injected by the Hub emulator)"}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-error-message", reason.encode()),
        (b"x-request-id", new_request_id().encode()),
    ]
    if rule.retry_after is not None:
        headers.append((b"retry-after", str(rule.retry_after).encode()))
    if rule.rate_limited:
        window = f'"{RATE_LIMIT_RESOURCE}";r=0;t={rule.retry_after}'
        headers += [
            (b"ratelimit", window.encode()),
            (b"ratelimit-policy", RATE_LIMIT_POLICY.encode()),
        ]
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
