"""Concurrent reconciles agree: one promotes, the others wait for its lock and report what it
did; a lock whose promotion is already on the Hub blocks nobody, whether its holder was
killed while releasing it or died before tagging on another machine."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from runner.hub.client import HubClient
from runner.promote.lock import HubLock, LockHeld
from tests.conftest import ADAPTER, TOKEN, RunCli
from tests.test_hub_lock import REPO, Clock
from tests.test_reconcile import PUBLISH, lenient
from tests.test_reconcile_faults import CANDIDATES, held, promotions, reconcile

LOCK = f"locks/{ADAPTER}.json"
# How long the winner's promotion commit is held: the others start with it, so by then
# they have found its lock taken.
HOLD_S = 20.0


@pytest.fixture
def passed(tiny_repo: Path, env: Any, run_cli: RunCli, tmp_path: Path) -> Path:
    """The repository, with a candidate on the Hub that passed its gate."""
    lenient(tiny_repo)
    assert run_cli("train", f"adapters/{ADAPTER}", "--repo", tiny_repo)[0] == 0
    code, _, err = run_cli(
        "eval", f"adapters/{ADAPTER}", "--upload", "--out", tmp_path / "eval", "--repo", tiny_repo
    )
    assert code == 0, err[-2000:]
    return tiny_repo


def locks(api: HfApi) -> list[str]:
    return [f for f in api.list_repo_files(CANDIDATES) if f.startswith("locks/")]


def test_three_reconciles_at_once_all_succeed_and_promote_once(passed: Path, env: Any) -> None:
    env.fail("POST", rf"{PUBLISH}/commit/", mode="timeout", delay=HOLD_S, times=1)

    processes = [reconcile(env, passed) for _ in range(3)]
    outputs = [p.communicate(timeout=600)[0] for p in processes]

    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    assert promotions(api) == 1
    assert [t.name for t in api.list_repo_refs(PUBLISH).tags] == ["v1"]
    assert locks(api) == []
    joined = "\n".join(outputs)
    assert f"ok   {ADAPTER}: promoted: {PUBLISH}@v1" in joined
    assert f"ok   {ADAPTER}: already promoted: {PUBLISH}@v1" in joined
    assert f"{ADAPTER}: lock {LOCK} on {CANDIDATES} is held by {socket.gethostname()}:" in joined
    assert "waiting for that reconcile" in joined
    assert "Traceback" not in joined


def test_a_reconcile_killed_while_releasing_its_lock_blocks_no_later_run(
    passed: Path, env: Any, run_cli: RunCli
) -> None:
    # The tag is held a moment, long enough to hold the next commit to the candidates repo:
    # the lock's release.
    env.fail("POST", rf"{PUBLISH}/tag/", mode="timeout", delay=3.0, times=1)
    process = reconcile(env, passed)
    try:
        held(env, f"{PUBLISH}/tag/")
        env.fail("POST", rf"{CANDIDATES}/commit/", mode="timeout", delay=120.0, times=1)
        held(env, f"{CANDIDATES}/commit/")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    assert locks(api) == [LOCK]  # promoted and tagged, but the lock stayed
    assert [t.name for t in api.list_repo_refs(PUBLISH).tags] == ["v1"]

    code, out, err = run_cli("reconcile", "--apply", "--repo", passed)

    assert code == 0, out + err[-3000:]
    assert f"ok   {ADAPTER}: removed {LOCK} left by {socket.gethostname()}:" in out
    assert "waiting" not in out + err
    assert locks(api) == []
    assert promotions(api) == 1
    code, out, _ = run_cli("reconcile", "--apply", "--repo", passed)
    assert "nothing to do" in out


def test_a_promotion_whose_holder_died_before_tagging_elsewhere_is_finished_at_once(
    passed: Path, env: Any, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its lock is live for another 10 minutes, but its promotion commit is on main: the next
    run, on another machine as in CI, tags it instead of waiting for the lock to go stale."""
    env.fail("POST", rf"{PUBLISH}/tag/", mode="timeout", delay=120.0, times=1)
    process = reconcile(env, passed)
    try:
        held(env, f"{PUBLISH}/tag/")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    assert locks(api) == [LOCK]
    monkeypatch.setattr(socket, "gethostname", lambda: "another-ci-runner")

    code, out, err = run_cli("reconcile", "--apply", "--repo", passed)

    assert code == 0, out + err[-3000:]
    assert f"ok   {ADAPTER}: promoted: {PUBLISH}@v1" in out
    assert "waiting" not in out + err
    assert promotions(api) == 1
    assert [t.name for t in api.list_repo_refs(PUBLISH).tags] == ["v1"]
    assert locks(api) == []


def waiting_lock(client: HubClient, clock: Clock, sleep: Any, owner: str = "bob") -> HubLock:
    return HubLock(client, REPO, "demo-v1", owner=owner, ttl_s=600, clock=clock, sleep=sleep)


def test_a_waiting_owner_takes_the_lock_once_its_holder_lets_go(hub: Any, tmp_path: Path) -> None:
    client = HubClient(hub.endpoint, token=TOKEN, cache_dir=tmp_path / "cache")
    client.ensure_repo(REPO)
    clock = Clock()
    alice = waiting_lock(client, clock, sleep=None, owner="alice")
    assert alice.acquire()
    slept: list[float] = []

    def alice_finishes(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds
        alice.release()

    heard: list[str] = []
    bob = waiting_lock(client, clock, alice_finishes)
    assert bob.wait(60, lambda holder: heard.append(holder.owner))
    assert heard == ["alice"]
    assert slept == [bob.poll_s]
    assert bob.current().owner == "bob"


def test_a_waiting_owner_gives_up_after_its_bound_and_names_the_holder(
    hub: Any, tmp_path: Path
) -> None:
    client = HubClient(hub.endpoint, token=TOKEN, cache_dir=tmp_path / "cache")
    client.ensure_repo(REPO)
    clock = Clock()
    assert waiting_lock(client, clock, sleep=None, owner="alice").acquire()
    slept: list[float] = []

    def time_passes(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    heard: list[str] = []
    bob = waiting_lock(client, clock, time_passes)
    waited = bob.held(12, lambda holder: heard.append(holder.owner))
    with pytest.raises(LockHeld, match="held by alice"), waited:
        pytest.fail("bob must not enter the block")
    assert sum(slept) == 12
    assert heard == ["alice"]  # one message per holder, not one per poll
