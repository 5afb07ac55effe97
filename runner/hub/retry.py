"""How long and how often a Hub operation may try: retries with backoff and jitter on 429,
5xx, timeouts and dropped connections, a timeout on every silence and a deadline on the whole.

One `Operation` (one HubClient call) holds one budget: `attempts` failed requests and a
deadline, retries included. huggingface_hub retries some requests itself (uploads, commits,
downloads) and `with_retries` retries the rest; both spend the same budget (the HTTP session
in `runner.hub.session` counts every failure), so attempts never multiply. A refused
connection or a host name that does not resolve means no Hub is there to answer: the
operation ends at the first one (GaveUp "unreachable"), since no retry within seconds would
find one. A 429 is waited out when the deadline allows (saying so in a warning), and ends
the operation at once otherwise: the Hub's `RateLimit: "api";r=0;t=N` (its windows last
minutes) is read first, as huggingface_hub does, then `Retry-After`.

Timeouts are about silence (connecting, or the next bytes of a request or an answer): a
transfer that keeps moving bytes is never cut by one. The deadline is about the whole
operation: short for reads of metadata, generous for uploads and downloads of weights.
"""

from __future__ import annotations

import logging
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
from huggingface_hub.utils import RateLimitInfo, parse_ratelimit_headers

from runner.errors import InputError

T = TypeVar("T")
log = logging.getLogger(__name__)
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})

# The knobs, in seconds; tests set them small, a slow network sets them large.
ENV_TIMEOUT = "RUNNER_HUB_TIMEOUT"
ENV_DEADLINE = "RUNNER_HUB_DEADLINE"
ENV_TRANSFER_DEADLINE = "RUNNER_HUB_TRANSFER_DEADLINE"
# The Hub gives a window's reset in whole seconds: a retry that arrives early costs an attempt.
WINDOW_MARGIN = 1.0


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    unreachable_attempts: int = 1  # refused or unresolvable: retrying finds no Hub either
    base_delay: float = 0.5
    max_delay: float = 8.0
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
    the wait the Hub asked for (`window`: the spent rate limit it comes from, if it said)."""

    status: int | None = None
    error: BaseException | None = None
    wait: float | None = None
    window: RateLimitInfo | None = None
    request_id: str | None = None  # the Hub's id for the failed answer, for support
    # To another host than the operation's Hub (huggingface_hub's own side requests, such as
    # its agent registry at huggingface.co): that host being unreachable says nothing of ours.
    foreign: bool = False

    @property
    def unreachable(self) -> bool:
        if self.foreign or self.error is None:
            return False
        return unreachable_cause(self.error) is not None

    @property
    def timed_out(self) -> bool:
        return isinstance(self.error, httpx2.TimeoutException)

    def __str__(self) -> str:
        return f"HTTP {self.status}" if self.status else type(self.error).__name__

    def waiting(self) -> str:
        """The warning for a wait about to be waited out."""
        if self.window is not None:
            return (
                f"the Hub's rate limit for {self.window.resource_type} resets in "
                f"{self.window.reset_in_seconds} s; waiting"
            )
        return f"the Hub asks to wait {self.wait:g} s ({self}); waiting"


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
        self.max_wait = math.floor(max(operation.time_left(), 0.0))
        self.transfer = operation.transfer
        self.at = time.time()  # a wait the Hub asked for runs from here: when it ends
        super().__init__(f"gave up ({reason}) after {self.failures} failed attempts")

    @property
    def status(self) -> int | None:
        return self.last.status if self.last else None

    @property
    def env_var(self) -> str:
        """The setting that allows this operation more time."""
        return ENV_TRANSFER_DEADLINE if self.transfer else ENV_DEADLINE


@dataclass(eq=False)  # one operation is only ever itself
class Operation:
    """The budget of one operation, shared by every thread and retry loop working for it."""

    policy: RetryPolicy
    transfer: bool = False
    host: str | None = None  # the Hub's; None: every request counts as the Hub's
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
        if failure.wait is not None and failure.wait >= self.time_left():
            return GaveUp("wait", self)
        if failure.wait:
            log.warning(failure.waiting())
        return None

    def pause(self) -> None:
        """Wait before the next attempt: what the Hub asked for, else our backoff; raises
        GaveUp when the deadline would pass first."""
        last = self.last
        asked = last is not None and last.wait is not None
        wait = last.wait if last and last.wait is not None else self.policy.backoff(self.failures)
        if wait >= self.time_left():
            raise GaveUp("wait" if asked else "deadline", self)
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
def operation(
    policy: RetryPolicy, *, transfer: bool = False, host: str | None = None
) -> Iterator[Operation]:
    """Make this thread's requests (and its helpers') spend one new budget."""
    current = Operation(policy, transfer, host)
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


def with_retries(
    call: Callable[[], T], policy: RetryPolicy, *, transfer: bool = False, host: str | None = None
) -> T:
    """`call()` as one operation against the Hub at `host`, retried on transient failures
    within its budget; the last failure is re-raised, or GaveUp when the budget ended it."""
    with operation(policy, transfer=transfer, host=host) as current:
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
            return answer_failure(cause.response.status_code, cause.response.headers)
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


def answer_failure(status: int, headers: Mapping[str, str]) -> Failure:
    """A failed answer, the wait it asks for and the rate-limit window it comes from."""
    return Failure(
        status=status,
        wait=wait_hint(status, headers),
        window=spent_window(status, headers),
        request_id=headers.get("X-Request-Id"),
    )


def spent_window(status: int, headers: Mapping[str, str]) -> RateLimitInfo | None:
    """The Hub's rate-limit window that a 429 says is spent (`RateLimit: "api";r=0;t=55`).
    The Hub sends `RateLimit` on every answer: only a 429 makes it the reason."""
    window = parse_ratelimit_headers(headers) if status == 429 else None
    return window if window is not None and window.remaining == 0 else None


def wait_hint(status: int, headers: Mapping[str, str]) -> float | None:
    """Seconds the Hub asks us to wait: until a spent window resets (read first, as
    huggingface_hub does), else `Retry-After`."""
    window = spent_window(status, headers)
    if window is not None:
        return window.reset_in_seconds + WINDOW_MARGIN
    return _retry_after(headers)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    retry_after = headers.get("Retry-After")
    if retry_after is None:
        return None
    try:
        return max(float(retry_after), 0.0)
    except ValueError:
        return None  # an HTTP date: rare enough to fall back on our backoff


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
