"""A mutual-exclusion lock recorded on the Hub, so two reconciles (two CI jobs, a scheduled
run and a merge) never promote the same adapter twice.

The lock is a file `locks/<name>.json` holding `{owner, acquired_at, expires_at}` (unix
seconds). Taking it is one commit made with `parent_commit` set to the head the lock was
read at: if anything was committed in between, the Hub refuses the commit and we read
again, so two processes can never both believe they won. A holder that died leaves a lock
that expires after `ttl_s`; the next process takes it over, through the same parent check.
A lock whose work is already on the Hub (`work_done`) guards nothing: it is taken over at
once, live or not, so a holder killed after its work (while releasing) blocks nobody.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from uuid import uuid4

from runner.errors import RunnerError
from runner.hub.client import HubClient, NotFoundError, RepoRef, StaleParentError

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class LockHeld(RunnerError):
    """Someone else holds a live lock."""


class LockContended(RunnerError):
    """The repo kept changing under us; we could not tell whether the lock is free."""


def default_owner() -> str:
    """Host, process and a random suffix: unique even for two locks in one process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"


def owner_died_here(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, owned by another user
    return False


@dataclass(frozen=True)
class LockRecord:
    owner: str
    acquired_at: float
    expires_at: float

    def live(self, now: float) -> bool:
        """Not expired, and not held by a process of this host that has died: a reconcile
        killed here frees its lock for the next run at once; elsewhere the TTL does."""
        return now < self.expires_at and not owner_died_here(self.owner)

    def to_bytes(self) -> bytes:
        return (json.dumps(asdict(self), indent=2) + "\n").encode()

    @classmethod
    def parse(cls, raw: bytes) -> LockRecord | None:
        """None for a file that is not a lock record."""
        try:
            data = json.loads(raw)
            return cls(str(data["owner"]), float(data["acquired_at"]), float(data["expires_at"]))
        except (ValueError, KeyError, TypeError):
            return None


class HubLock:
    """`locks/<name>.json` in `repo`. `work_done()` says whether what the lock guards is on
    the Hub already; `wait()` asks again every `poll_s` (`clock` and `sleep` are injectable,
    so tests move time instead of sleeping)."""

    def __init__(
        self,
        client: HubClient,
        repo: RepoRef,
        name: str,
        *,
        owner: str,
        ttl_s: float = 1800.0,
        clock: Callable[[], float] = time.time,
        attempts: int = 8,
        work_done: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], None] = time.sleep,
        poll_s: float = 5.0,
    ) -> None:
        if not _NAME.match(name):
            raise ValueError(f"lock name {name!r}: use letters, digits, '.', '_' or '-'")
        self.client, self.repo, self.name, self.owner = client, repo, name, owner
        self.ttl_s, self.clock, self.attempts = ttl_s, clock, attempts
        self.work_done, self.sleep, self.poll_s = work_done, sleep, poll_s
        self.path = f"locks/{name}.json"
        # The live lock of someone else seen by the last refused acquire(), for messages.
        self.holder: LockRecord | None = None

    def __repr__(self) -> str:
        return f"HubLock({self.repo}:{self.path}, owner={self.owner!r})"

    def current(self, revision: str = "main") -> LockRecord | None:
        """The lock record at `revision`; None when there is no lock file."""
        try:
            raw = self.client.download(self.repo, self.path, revision=revision).read_bytes()
        except NotFoundError:
            return None
        record = LockRecord.parse(raw)
        if record is None:
            # A corrupt lock must not block every reconcile forever: treat it as stale.
            log.warning("%s on %s is not a lock record; treating it as stale", self.path, self.repo)
            return LockRecord("<unreadable>", 0.0, 0.0)
        return record

    def acquire(self) -> bool:
        """True when we now hold the lock (acquiring a lock we hold renews it); False when
        someone else holds a live one (see `holder`)."""
        attempted: LockRecord | None = None
        for _ in range(self.attempts):
            head = self.client.head(self.repo)
            found = self.current(head)
            now = self.clock()
            # Our previous commit landed but its reply was lost (then retried into a 412).
            if attempted is not None and found == attempted and found.live(now):
                return True
            if self._blocks(found, now):
                self.holder = found
                return False
            attempted = LockRecord(self.owner, now, now + self.ttl_s)
            if self._commit(head, attempted, taking_over=found):
                self.holder = None
                return True
        raise self._contended("acquire")

    def release(self) -> None:
        """Delete the lock file if we still own it; a lock that is gone or that someone
        else took over (ours went stale) is left alone."""
        for _ in range(self.attempts):
            head = self.client.head(self.repo)
            found = self.current(head)
            if found is None or found.owner != self.owner:
                return
            try:
                message = f"Release lock {self.name} ({self.owner})"
                self.client.commit(self.repo, {}, message, parent_commit=head, delete=[self.path])
                return
            except StaleParentError:
                continue  # something else was committed: re-read, it may not be the lock
        raise self._contended("release")

    def wait(self, timeout_s: float, on_wait: Callable[[LockRecord], None]) -> bool:
        """acquire(), tried again every `poll_s` while someone else holds a live lock, for at
        most `timeout_s`; `on_wait` hears of each holder we start waiting for."""
        deadline = self.clock() + timeout_s
        waited_for: LockRecord | None = None
        while not self.acquire():
            if self.holder is not None and self.holder != waited_for:
                waited_for = self.holder
                on_wait(self.holder)
            left = deadline - self.clock()
            if left <= 0:
                return False
            self.sleep(min(self.poll_s, left))
        return True

    def clear_abandoned(self) -> LockRecord | None:
        """Delete a lock that guards nothing any more (stale, its holder dead, or its work
        done), whoever wrote it; the record deleted, or None when there was none to delete."""
        for _ in range(self.attempts):
            head = self.client.head(self.repo)
            found = self.current(head)
            if found is None or self._blocks(found, self.clock()):
                return None
            try:
                message = f"Clear abandoned lock {self.name} ({found.owner})"
                self.client.commit(self.repo, {}, message, parent_commit=head, delete=[self.path])
                return found
            except StaleParentError:
                continue
        raise self._contended("clear")

    @contextmanager
    def held(
        self, wait_s: float = 0.0, on_wait: Callable[[LockRecord], None] = lambda _: None
    ) -> Iterator[HubLock]:
        """Hold the lock for the block (waiting up to `wait_s` for it), released even when
        the block raises."""
        if not self.wait(wait_s, on_wait):
            raise self._held_error()
        try:
            yield self
        finally:
            self.release()

    def describe(self, holder: LockRecord) -> str:
        """Which lock and who holds it until when, for messages."""
        left = max(0, round(holder.expires_at - self.clock()))
        return (
            f"lock {self.path} on {self.repo} is held by {holder.owner} until "
            f"{_iso(holder.expires_at)} ({left} s from now)"
        )

    def _blocks(self, found: LockRecord | None, now: float) -> bool:
        """Someone else's live lock whose work is not on the Hub yet: we may not take it."""
        if found is None or found.owner == self.owner or not found.live(now):
            return False
        return not self.work_done()

    def _commit(self, head: str, record: LockRecord, *, taking_over: LockRecord | None) -> bool:
        """Write `record` on top of `head`; False if the branch moved since."""
        verb = "Take over" if taking_over and taking_over.owner != self.owner else "Take"
        message = f"{verb} lock {self.name} ({self.owner})"
        try:
            self.client.commit(
                self.repo, {self.path: record.to_bytes()}, message, parent_commit=head
            )
        except StaleParentError:
            return False
        return True

    def _held_error(self) -> LockHeld:
        holder = self.holder
        assert holder is not None, "acquire() returned False without recording the holder"
        return LockHeld(
            f"{self.describe(holder)}: another reconcile is running. "
            "Wait for it to finish and run again; if that process died, the lock goes stale "
            "then and the next run takes it over."
        )

    def _contended(self, operation: str) -> LockContended:
        return LockContended(
            f"could not {operation} lock {self.path} on {self.repo}: the repo changed "
            f"{self.attempts} times while we tried; run again"
        )


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
