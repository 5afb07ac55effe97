"""The lock recorded on the Hub: one holder at a time, even when two processes race for it,
stale locks taken over, and releases that never remove someone else's lock."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from runner.errors import RunnerError
from runner.hub.client import HubClient, RepoRef, StaleParentError
from runner.promote.lock import HubLock, LockHeld, LockRecord, default_owner

REPO = RepoRef("ainative/x-candidates")
TOKEN = "hf_" + "l0ck" * 9


class Clock:
    """An injected clock: tests move time instead of sleeping through a TTL."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make_client(hub, tmp_path: Path):
    made = iter(range(1000))

    def make() -> HubClient:
        return HubClient(hub.endpoint, token=TOKEN, cache_dir=tmp_path / f"cache-{next(made)}")

    return make


@pytest.fixture
def client(make_client) -> HubClient:
    client = make_client()
    client.ensure_repo(REPO)
    return client


@pytest.fixture
def clock() -> Clock:
    return Clock()


def lock_for(client: HubClient, owner: str, clock: Clock, name: str = "reconcile") -> HubLock:
    return HubLock(client, REPO, name, owner=owner, ttl_s=600, clock=clock)


def test_acquire_then_release_leaves_no_lock_file(client, clock):
    lock = lock_for(client, "alice", clock)
    assert lock.acquire()
    assert lock.current() == LockRecord("alice", clock.now, clock.now + 600)
    assert "locks/reconcile.json" in client.file_oids(REPO)
    lock.release()
    assert lock.current() is None
    assert "locks/reconcile.json" not in client.file_oids(REPO)


def test_a_second_owner_is_refused_while_the_lock_is_live(client, clock):
    assert lock_for(client, "alice", clock).acquire()
    clock.now += 599
    bob = lock_for(client, "bob", clock)
    assert not bob.acquire()
    assert bob.holder is not None
    assert bob.holder.owner == "alice"
    with pytest.raises(LockHeld) as raised, bob.held():
        pytest.fail("bob must not enter the block")
    message = str(raised.value)
    assert "alice" in message
    assert "locks/reconcile.json" in message
    assert "UTC" in message
    assert "1 s from now" in message
    assert "run again" in message
    assert isinstance(raised.value, RunnerError)
    assert lock_for(client, "alice", clock).current().owner == "alice"


def test_a_stale_lock_is_taken_over(client, clock):
    assert lock_for(client, "alice", clock).acquire()
    clock.now += 600
    bob = lock_for(client, "bob", clock)
    assert bob.acquire()
    assert bob.current() == LockRecord("bob", clock.now, clock.now + 600)


def test_release_by_a_non_owner_does_nothing(client, clock):
    alice = lock_for(client, "alice", clock)
    assert alice.acquire()
    head = client.head(REPO)
    lock_for(client, "bob", clock).release()
    assert client.head(REPO) == head
    assert alice.current().owner == "alice"


def test_release_after_a_takeover_leaves_the_new_owners_lock(client, clock):
    alice = lock_for(client, "alice", clock)
    assert alice.acquire()
    clock.now += 601
    assert lock_for(client, "bob", clock).acquire()
    alice.release()
    assert alice.current().owner == "bob"


def test_release_of_a_lock_that_is_gone_does_not_raise(client, clock):
    lock = lock_for(client, "alice", clock)
    lock.release()
    assert lock.acquire()
    lock.release()
    lock.release()
    assert lock.current() is None


def test_acquiring_a_lock_we_hold_renews_it(client, clock):
    lock = lock_for(client, "alice", clock)
    assert lock.acquire()
    clock.now += 500
    assert lock.acquire()
    assert lock.current().expires_at == clock.now + 600


def test_held_releases_when_the_block_raises(client, clock):
    lock = lock_for(client, "alice", clock)
    seen: list[str] = []

    def fail_while_holding() -> None:
        with lock.held():
            seen.append(lock.current().owner)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_while_holding()
    assert seen == ["alice"]
    assert lock.current() is None
    with lock_for(client, "bob", clock).held() as held:
        assert held.current().owner == "bob"


def test_locks_with_different_names_do_not_exclude_each_other(client, clock):
    assert lock_for(client, "alice", clock, name="demo-v1").acquire()
    assert lock_for(client, "bob", clock, name="demo-v2").acquire()


def test_a_commit_to_another_file_in_between_does_not_lose_the_lock(client, clock, monkeypatch):
    """The parent check refuses our commit when anything moved; the retry re-reads and wins,
    because the other commit did not touch the lock."""
    lock = lock_for(client, "alice", clock)
    original = client.commit
    interfered: list[str] = []

    def commit_after_someone_else(*args, **kwargs):
        if not interfered:
            interfered.append(original(REPO, {"run.json": b"{}"}, "unrelated"))
        return original(*args, **kwargs)

    monkeypatch.setattr(client, "commit", commit_after_someone_else)
    assert lock.acquire()
    assert interfered
    assert client.head(REPO) != interfered[0]
    assert lock.current().owner == "alice"


def test_a_commit_whose_reply_was_lost_still_counts_as_ours(client, clock, monkeypatch):
    """The commit landed but its reply did not; the retried request then met a 412. The
    re-read finds exactly the record we wrote: we hold the lock, with no second commit."""
    lock = lock_for(client, "alice", clock)
    original = client.commit
    commits: list[str] = []

    def commit_then_lose_the_reply(*args, **kwargs):
        commits.append(original(*args, **kwargs))
        if len(commits) == 1:
            raise StaleParentError("commit to", str(REPO), "HTTP 412", status=412)
        return commits[-1]

    monkeypatch.setattr(client, "commit", commit_then_lose_the_reply)
    assert lock.acquire()
    assert len(commits) == 1
    assert client.head(REPO) == commits[0]
    assert lock.current().owner == "alice"


def race(make_client, clock: Clock, name: str, contenders: int) -> list[bool]:
    """`contenders` owners, each with its own client, call acquire() at the same moment."""
    locks = [
        HubLock(make_client(), REPO, name, owner=default_owner(), ttl_s=600, clock=clock)
        for _ in range(contenders)
    ]
    start = threading.Barrier(contenders)
    results: list[bool | BaseException] = [False] * contenders

    def contend(i: int) -> None:
        start.wait()
        try:
            results[i] = locks[i].acquire()
        except BaseException as error:  # surfaced by the assertion below, not lost in a thread
            results[i] = error

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(isinstance(r, bool) for r in results), results
    winners = [lock for lock, won in zip(locks, results, strict=True) if won]
    assert len(winners) == 1, results
    assert winners[0].current().owner == winners[0].owner
    return [bool(r) for r in results]


def refused_commits(hub) -> int:
    return sum(1 for r in hub.requests() if r["method"] == "POST" and r["status"] == 412)


@pytest.mark.parametrize("contenders", [2, 4])
def test_owners_racing_for_a_free_lock_exactly_one_wins(
    hub, make_client, client, clock, contenders
):
    hub.clear_requests()
    for round_ in range(10):
        race(make_client, clock, f"race-{round_}", contenders)
    # The contenders really overlapped: the Hub's parent check refused the losers' commits.
    assert refused_commits(hub) > 0


def test_owners_racing_to_take_over_a_stale_lock_exactly_one_wins(make_client, client, clock):
    for round_ in range(10):
        name = f"stale-{round_}"
        assert lock_for(client, "dead-process", clock, name=name).acquire()
        clock.now += 601
        race(make_client, clock, name, 3)


def test_default_owners_are_unique_and_name_the_host_and_process():
    first, second = default_owner(), default_owner()
    assert first != second
    host, pid, _ = first.rsplit(":", 2)
    assert host == socket.gethostname()
    assert pid == str(os.getpid())


def test_a_lock_name_cannot_escape_the_locks_folder(client):
    with pytest.raises(ValueError, match="lock name"):
        HubLock(client, REPO, "../README", owner="alice")


def test_a_lock_left_by_a_dead_process_on_this_host_is_free_at_once(client, clock):
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    assert lock_for(client, f"{socket.gethostname()}:{dead}:cafe", clock).acquire()
    assert lock_for(client, default_owner(), clock).acquire()  # long before the TTL


def test_a_live_process_on_this_host_keeps_its_lock(client, clock):
    assert lock_for(client, f"{socket.gethostname()}:{os.getpid()}:cafe", clock).acquire()
    assert not lock_for(client, default_owner(), clock).acquire()
