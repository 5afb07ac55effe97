"""How long and how often a Hub operation may try: retries with backoff and jitter on 429,
5xx, timeouts and dropped connections, a timeout on every silence and a deadline on the whole.

One `Operation` (one HubClient call) holds one budget: `attempts` failed requests and a
deadline, retries included. huggingface_hub retries some requests itself (uploads, commits,
downloads) and `with_retries` retries the rest; both spend the same budget (the HTTP session
in `runner.hub.session` counts every failure), so attempts never multiply. A refused
connection or a host name that does not resolve means no Hub is there to answer: the
operation ends at the first one (GaveUp "unreachable"), since no retry within seconds would
find one. A 429's `Retry-After` (or, without it, the `t` of its `RateLimit` header) is
waited for when the deadline allows, and ends the operation at once otherwise.

Timeouts are about silence (connecting, or the next bytes of a request or an answer): a
transfer that keeps moving bytes is never cut by one. The deadline is about the whole
operation: short for reads of metadata, generous for uploads and downloads of weights.
"""

from __future__ import annotations

import math
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import httpx2  # huggingface_hub's HTTP stack: its transport errors are what a flaky Hub raises
from huggingface_hub.errors import HfHubHTTPError

from runner.errors import InputError

T = TypeVar("T")
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})

# The knobs, in seconds; tests set them small, a slow network sets them large.
ENV_TIMEOUT = "RUNNER_HUB_TIMEOUT"
ENV_DEADLINE = "RUNNER_HUB_DEADLINE"
ENV_TRANSFER_DEADLINE = "RUNNER_HUB_TRANSFER_DEADLINE"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    unreachable_attempts: int = 1  # refused or unresolvable: retrying finds no Hub either
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 300.0  # one rate-limit window of the real Hub
    jitter: float = 0.25
    timeout: float = 60.0  # of silence: to connect, or between bytes sent or received
    deadline: float = 600.0  # a whole read of metadata, retries included
    transfer_deadline: float = 4 * 3600.0  # a whole upload or download (weights)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> RetryPolicy:
        """The defaults, with each knob that is set in `env` instead."""
        knobs = {
            "timeout": ENV_TIMEOUT,
            "deadline": ENV_DEADLINE,
            "transfer_deadline": ENV_TRANSFER_DEADLINE,
        }
        return cls(**{name: _seconds(env, var) for name, var in knobs.items() if env.get(var)})

    def backoff(self, failures: int) -> float:
        delay = min(self.base_delay * 2 ** max(failures - 1, 0), self.max_delay)
        return delay * (1 + random.uniform(-self.jitter, self.jitter))


def _seconds(env: Mapping[str, str], name: str) -> float:
    text = env[name]
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{name} is {text!r}: set it to a number of seconds above 0, or unset it")
    return value


@dataclass(frozen=True)
class Failure:
    """One failed request: its transient status, or the transport error it ended with, and
    the wait the Hub asked for."""

    status: int | None = None
    error: BaseException | None = None
    wait: float | None = None

    @property
    def unreachable(self) -> bool:
        return self.error is not None and unreachable_cause(self.error) is not None

    @property
    def timed_out(self) -> bool:
        return isinstance(self.error, httpx2.TimeoutException)

    def __str__(self) -> str:
        return f"HTTP {self.status}" if self.status else type(self.error).__name__


GiveUpReason = Literal["attempts", "unreachable", "deadline", "wait"]
Unreachable = Literal["refused", "unresolvable"]


class GaveUp(Exception):
    """An operation that may not try again: its attempts or its time are spent, or the Hub
    asked for a longer wait than it has. Not an httpx2 error, so that huggingface_hub's own
    retry loops let it through instead of trying again."""

    def __init__(self, reason: GiveUpReason, operation: Operation) -> None:
        self.reason = reason
        self.failures = operation.failures
        self.last = operation.last
        self.limit = operation.limit
        # The longest wait the operation could still have afforded, for the message.
        self.max_wait = math.floor(
            min(operation.policy.max_retry_after, max(operation.time_left(), 0.0))
        )
        self.transfer = operation.transfer
        super().__init__(f"gave up ({reason}) after {self.failures} failed attempts")

    @property
    def status(self) -> int | None:
        return self.last.status if self.last else None


@dataclass(eq=False)  # one operation is only ever itself
class Operation:
    """The budget of one operation, shared by every thread and retry loop working for it."""

    policy: RetryPolicy
    transfer: bool = False
    started: float = field(default_factory=time.monotonic)
    failures: int = 0
    unreachable: int = 0
    last: Failure | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def limit(self) -> float:
        return self.policy.transfer_deadline if self.transfer else self.policy.deadline

    def time_left(self) -> float:
        return self.limit - (time.monotonic() - self.started)

    def admit(self) -> None:
        """Before each request: raises GaveUp when no attempt is left, or no time."""
        if self._spent():
            raise GaveUp(self._spent_reason(), self)
        if self.time_left() <= 0:
            raise GaveUp("deadline", self)

    def record(self, failure: Failure) -> GaveUp | None:
        """Count a failed request; the GaveUp to raise when it was the operation's last."""
        with self._lock:
            self.failures += 1
            self.unreachable += failure.unreachable
            self.last = failure
        if self._spent():
            return GaveUp(self._spent_reason(), self)
        if failure.wait is not None and failure.wait > min(
            self.policy.max_retry_after, self.time_left()
        ):
            return GaveUp("wait", self)
        return None

    def pause(self) -> None:
        """Wait before the next attempt: what the Hub asked for, else our backoff; raises
        GaveUp when the deadline would pass first."""
        last = self.last
        wait = last.wait if last and last.wait is not None else self.policy.backoff(self.failures)
        if wait >= self.time_left():
            raise GaveUp("deadline", self)
        self.policy.sleep(wait)

    def _spent(self) -> bool:
        return self.failures >= self.policy.attempts or self._unreachable_spent()

    def _unreachable_spent(self) -> bool:
        return self.unreachable >= self.policy.unreachable_attempts

    def _spent_reason(self) -> GiveUpReason:
        return "unreachable" if self._unreachable_spent() else "attempts"


# The operation each thread works for. huggingface_hub's worker threads (parallel uploads
# and downloads) start with none: they work for the one operation in flight, if only one is.
_local = threading.local()
_in_flight: list[Operation] = []
_in_flight_lock = threading.Lock()
_INDEPENDENT = "independent"


def current_operation() -> Operation | None:
    mine = getattr(_local, "operation", None)
    if isinstance(mine, Operation):
        return mine
    if mine == _INDEPENDENT:
        return None
    with _in_flight_lock:
        return _in_flight[0] if len(_in_flight) == 1 else None


@contextmanager
def operation(policy: RetryPolicy, *, transfer: bool = False) -> Iterator[Operation]:
    """Make this thread's requests (and its helpers') spend one new budget."""
    current = Operation(policy, transfer)
    previous = getattr(_local, "operation", None)
    _local.operation = current
    with _in_flight_lock:
        _in_flight.append(current)
    try:
        yield current
    finally:
        _local.operation = previous
        with _in_flight_lock:
            _in_flight.remove(current)


@contextmanager
def independent_requests() -> Iterator[None]:
    """This thread's requests belong to no operation: a log stream that lasts as long as a
    training run, read beside the operations that poll the Space."""
    previous = getattr(_local, "operation", None)
    _local.operation = _INDEPENDENT
    try:
        yield
    finally:
        _local.operation = previous


def with_retries(call: Callable[[], T], policy: RetryPolicy, *, transfer: bool = False) -> T:
    """`call()` as one operation, retried on transient failures within its budget; the last
    failure is re-raised, or GaveUp when the budget ended it."""
    with operation(policy, transfer=transfer) as current:
        while True:
            counted = current.failures
            try:
                return call()
            except Exception as error:
                if not is_transient(error):
                    raise
                # A failure our session did not see (it never reached the network) counts here.
                if current.failures == counted and (ending := current.record(failure_of(error))):
                    raise ending from error
                current.pause()


def failure_of(error: BaseException) -> Failure:
    for cause in _chain(error):
        if isinstance(cause, HfHubHTTPError) and cause.response is not None:
            response = cause.response
            return Failure(status=response.status_code, wait=wait_hint(response.headers))
        if isinstance(cause, httpx2.TransportError):
            return Failure(error=cause)
    return Failure(error=error)


def status_of(error: BaseException) -> int | None:
    for cause in _chain(error):
        if isinstance(cause, GaveUp):
            return cause.status
        if isinstance(cause, HfHubHTTPError) and cause.response is not None:
            return cause.response.status_code
    return None


def is_transient(error: BaseException) -> bool:
    if gave_up(error) is not None:
        return False
    status = status_of(error)
    if status is not None:
        return status in RETRY_STATUS
    return any(isinstance(cause, httpx2.TransportError) for cause in _chain(error))


def unreachable_cause(error: BaseException) -> Unreachable | None:
    """Why no Hub can answer at all, when that is what `error` says: nothing listens at the
    address (refused), or the host name does not resolve (no network, or a typo in
    HF_ENDPOINT); None for any other failure, a reset or a timeout included."""
    for cause in _chain(error):
        if isinstance(cause, socket.gaierror):
            return "unresolvable"
        if isinstance(cause, ConnectionRefusedError):
            return "refused"
    return None


def gave_up(error: BaseException) -> GaveUp | None:
    return next((cause for cause in _chain(error) if isinstance(cause, GaveUp)), None)


def timed_out(error: BaseException) -> bool:
    return any(isinstance(cause, httpx2.TimeoutException) for cause in _chain(error))


def wait_hint(headers: Mapping[str, str]) -> float | None:
    """Seconds the Hub asks us to wait: `Retry-After`, else the `t` of a spent `RateLimit`
    window (`"api";r=0;t=55`, the real Hub's 429)."""
    retry_after = headers.get("Retry-After")
    if retry_after is not None:
        try:
            return max(float(retry_after), 0.0)
        except ValueError:
            return None  # an HTTP date: rare enough to fall back on our backoff
    window = dict(
        part.strip().split("=", 1)
        for part in headers.get("RateLimit", "").split(";")
        if "=" in part
    )
    if window.get("r") == "0" and window.get("t", "").isdigit():
        return float(window["t"])
    return None


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
