"""Retries with exponential backoff and jitter for Hub calls: on 429, 5xx, timeouts and
dropped connections, honouring Retry-After, within a bounded budget."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import httpx2  # huggingface_hub's HTTP stack: its transport errors are what a flaky Hub raises
from huggingface_hub.errors import HfHubHTTPError

T = TypeVar("T")
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0
    jitter: float = 0.25
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        backoff = min(self.base_delay * 2**attempt, self.max_delay)
        return backoff * (1 + random.uniform(-self.jitter, self.jitter))


def status_of(error: BaseException) -> int | None:
    for cause in _chain(error):
        if isinstance(cause, HfHubHTTPError) and cause.response is not None:
            return cause.response.status_code
    return None


def is_transient(error: BaseException) -> bool:
    status = status_of(error)
    if status is not None:
        return status in RETRY_STATUS
    return any(isinstance(cause, httpx2.TransportError) for cause in _chain(error))


def retry_after(error: BaseException) -> float | None:
    for cause in _chain(error):
        if isinstance(cause, HfHubHTTPError) and cause.response is not None:
            value = cause.response.headers.get("Retry-After")
            try:
                return float(value) if value is not None else None
            except ValueError:
                return None
    return None


def with_retries(call: Callable[[], T], policy: RetryPolicy) -> T:
    """`call()`, retried on transient failures; the last failure is re-raised."""
    for attempt in range(policy.attempts):
        try:
            return call()
        except Exception as error:
            if attempt == policy.attempts - 1 or not is_transient(error):
                raise
            policy.sleep(policy.delay(attempt, retry_after(error)))
    raise AssertionError("unreachable: the loop returns or raises")


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
