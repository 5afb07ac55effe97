"""The Hub as it limits and loses: a 429 over a rate-limit window (`RateLimit: "api";r=0;t=N`,
as the real Hub sends it) is waited out when the deadline allows, with a warning saying how
long, and ends the command at once with when it resets otherwise; a commit whose reply is lost
is found on the branch, not sent twice, and never reported as "nothing was written"."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx2
import pytest
from huggingface_hub import HfApi

from runner.hub.client import HubClient, HubError, RepoRef
from runner.hub.retry import RetryPolicy
from tests.conftest import ADAPTER, TOKEN, RunCli, copy_repo

DATASET = "ainative/kwanzaa-grounded-chat"
MODEL = RepoRef("ainative/lost-reply-lora")


def dataset_commits(hub: Any) -> list[str]:
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    return [c.title for c in api.list_repo_commits(DATASET, repo_type="dataset")]


def refs_answers(hub: Any) -> list[int | None]:
    return [r["status"] for r in hub.requests() if r["path"].endswith("/refs")]


def test_a_rate_limit_window_is_waited_out_and_the_push_succeeds_saying_how_long(
    env: Any, tmp_path: Path, run_cli: RunCli, caplog: pytest.LogCaptureFixture
) -> None:
    root = copy_repo(tmp_path / "repo")
    env.fail(method="GET", path=r"/refs$", mode="rate_limit", retry_after=2)
    code, out, err = run_cli("dataset", "push", f"adapters/{ADAPTER}", "--repo", root)
    assert code == 0, out + err
    assert "pushed and tagged" in out
    assert "the Hub's rate limit for api resets in 2 s; waiting" in caplog.text
    # One 429, then the first request after the window is answered: no attempt spent inside it.
    assert refs_answers(env)[:2] == [429, 200]


def test_a_rate_limit_window_past_the_deadline_ends_at_once_saying_when_it_resets(
    env: Any, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_HUB_DEADLINE", "20")
    root = copy_repo(tmp_path / "repo")
    env.fail(method="GET", path=r"/refs$", mode="rate_limit", retry_after=600)
    code, out, err = run_cli("dataset", "push", f"adapters/{ADAPTER}", "--repo", root)
    assert code == 1, out + err
    assert "Traceback" not in out + err
    assert re.search(
        r"the Hub's rate limit for api is spent and resets in 600 s, at \d\d:\d\d:\d\d UTC, "
        r"past this operation's deadline",
        err,
    ), err
    assert "try again after" in err
    assert re.search(r"set RUNNER_HUB_DEADLINE above 6\d\d to wait it out", err), err
    assert refs_answers(env) == [429]  # failed at once: no retry inside the window


def test_retrying_inside_a_rate_limit_window_meets_429_until_it_resets(
    hub: Any, tmp_path: Path
) -> None:
    """The window is a time, not a number of requests: a client that does not wait (here its
    sleep does nothing) spends its attempts on 429s."""
    policy = RetryPolicy(deadline=3600, sleep=lambda _: None)
    client = HubClient(hub.endpoint, token=TOKEN, retry=policy)
    client.ensure_repo(MODEL)
    hub.fail(method="GET", path=r"/refs$", mode="rate_limit", retry_after=600)
    with pytest.raises(HubError, match=r"HTTP 429"):
        client.refs(MODEL)
    assert refs_answers(hub) == [429] * policy.attempts


def test_a_dataset_push_whose_commit_reply_is_lost_succeeds_with_one_commit(
    env: Any, tmp_path: Path, run_cli: RunCli
) -> None:
    root = copy_repo(tmp_path / "repo")
    env.fail(method="POST", path=r"/commit/main$", mode="lost_reply")
    code, out, err = run_cli("dataset", "push", f"adapters/{ADAPTER}", "--repo", root)
    assert code == 0, out + err
    assert "pushed and tagged" in out
    assert "nothing was written" not in out + err
    pushed = [title for title in dataset_commits(env) if title.startswith("Dataset ")]
    assert len(pushed) == 1, dataset_commits(env)
    assert [r["fault"] for r in env.requests() if r["path"].endswith("/commit/main")] == [
        "lost_reply"
    ]


def test_a_commit_whose_reply_is_lost_is_not_made_twice(hub: Any, tmp_path: Path) -> None:
    client = HubClient(hub.endpoint, token=TOKEN, retry=RetryPolicy(sleep=lambda _: None))
    client.ensure_repo(MODEL)
    before = len(HfApi(endpoint=hub.endpoint, token=TOKEN).list_repo_commits(MODEL.repo_id))
    hub.fail(method="POST", path=r"/commit/main$", mode="lost_reply")
    commit = client.commit(MODEL, {"weights.txt": b"w"}, "Add weights")
    history = HfApi(endpoint=hub.endpoint, token=TOKEN).list_repo_commits(MODEL.repo_id)
    assert len(history) == before + 1
    assert commit == history[0].commit_id == client.head(MODEL)


def test_the_emulators_rate_limit_answer_carries_the_hubs_headers(hub: Any) -> None:
    hub.fail(method="GET", path=r"/api/whoami", mode="rate_limit", retry_after=30)
    bearer = {"authorization": f"Bearer {TOKEN}"}
    answer = httpx2.get(f"{hub.endpoint}/api/whoami-v2", headers=bearer)
    assert answer.status_code == 429
    assert answer.headers["ratelimit"] == '"api";r=0;t=30'
    assert answer.headers["ratelimit-policy"] == '"fixed window";"api";q=500;w=300'
    assert answer.headers["retry-after"] == "30"


def test_a_commit_whose_reply_is_lost_on_its_last_attempt_is_reported_as_made(
    hub: Any, tmp_path: Path
) -> None:
    client = HubClient(hub.endpoint, token=TOKEN, retry=RetryPolicy(attempts=1))
    client.ensure_repo(MODEL)
    head = client.head(MODEL)
    hub.fail(method="POST", path=r"/commit/main$", mode="lost_reply")
    commit = client.commit(MODEL, {"weights.txt": b"w"}, "Add weights", parent_commit=head)
    assert commit == client.head(MODEL) != head
