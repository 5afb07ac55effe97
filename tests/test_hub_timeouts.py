"""No Hub call waits forever: a Hub that accepts a connection and never answers ends a command
with one clear error within its deadline, a one-off stall is retried, and however many layers
retry, one operation makes at most its budget of attempts.

The knobs are environment variables, in seconds: RUNNER_HUB_TIMEOUT (silence before a
request gives up), RUNNER_HUB_DEADLINE (a whole read of metadata, retries included) and
RUNNER_HUB_TRANSFER_DEADLINE (a whole upload or download). The tests set them small; each
command still gets a hang guard many times longer, so that a regression fails instead of
hanging the suite."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner.hub.client import HubClient, HubError, HubSetupError, RepoRef
from runner.hub.retry import RetryPolicy, answer_failure
from tests.conftest import REPO_ROOT, TOKEN, RunCli

MODEL = RepoRef("ainative/stalled-lora")
HANG_GUARD_S = 60.0  # many times any deadline below: reached only by a request with none


def finishes(call: Callable[[], Any]) -> Any:
    """`call()`'s result, failing the test if it is still waiting after HANG_GUARD_S."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_GUARD_S)
    assert not thread.is_alive(), f"still waiting on the Hub after {HANG_GUARD_S} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@pytest.fixture
def short_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNNER_HUB_TIMEOUT", "0.5")
    monkeypatch.setenv("RUNNER_HUB_DEADLINE", "2")


def test_status_against_a_hub_that_never_answers_ends_with_one_clear_error(
    env: Any, demo_repo: Path, run_cli: RunCli, short_limits: None
) -> None:
    env.fail(path=".", mode="timeout", delay=600, times=None)
    code, out, err = finishes(lambda: run_cli("status", "--repo", demo_repo))
    assert code == 1, out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: list refs of ")
    assert "no result within 2 s" in lines[0]
    assert "RUNNER_HUB_DEADLINE" in lines[0]
    assert "Traceback" not in out + err


def test_status_retries_a_request_that_stalled_once_and_succeeds(
    env: Any, demo_repo: Path, run_cli: RunCli, short_limits: None
) -> None:
    env.fail(path=r"/api/models/.+/refs", mode="timeout", delay=600, times=1)
    code, out, err = finishes(lambda: run_cli("status", "--repo", demo_repo))
    assert code == 0, out + err
    assert "demo" in out
    refs = [r for r in env.requests() if r["path"].endswith("/refs")]
    assert [r["fault"] for r in refs][:2] == ["timeout", None]
    assert refs[1]["status"] == 404  # the retry was answered: the publish repo is not there yet


def test_a_bad_timeout_setting_is_a_usage_error_naming_the_variable(
    env: Any, demo_repo: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_HUB_TIMEOUT", "soon")
    code, _, err = run_cli("status", "--repo", demo_repo)
    assert code == 2
    assert "RUNNER_HUB_TIMEOUT is 'soon': set it to a number of seconds above 0" in err


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(hub: Any, tmp_path: Path, waits: list[float]) -> HubClient:
    policy = RetryPolicy(attempts=3, sleep=waits.append)
    return HubClient(hub.endpoint, token=TOKEN, retry=policy, cache_dir=tmp_path / "cache")


def test_a_commit_retried_by_huggingface_hub_and_by_us_makes_its_budget_of_attempts_only(
    hub: Any, client: HubClient
) -> None:
    client.ensure_repo(MODEL)
    # The preupload call is retried inside huggingface_hub too: two layers, one budget.
    hub.fail(method="POST", path=r"/preupload/", status=503, retry_after=0, times=None)
    with pytest.raises(HubError, match=r"kept failing \(HTTP 503\) after retries"):
        finishes(lambda: client.commit(MODEL, {"a.txt": b"a"}, "a"))
    assert sum(bool(r.get("fault")) for r in hub.requests()) == 3


def test_a_refused_connection_is_tried_once_by_every_layer_together(
    tmp_path: Path, waits: list[float]
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
    client = HubClient(endpoint, token=TOKEN, retry=RetryPolicy(sleep=waits.append))
    with pytest.raises(HubSetupError, match=rf"cannot reach the Hub at {endpoint}: connection"):
        finishes(lambda: client.head(MODEL))
    assert waits == []


def test_a_rate_limit_wait_within_the_deadline_is_honoured_in_full(
    hub: Any, client: HubClient, waits: list[float]
) -> None:
    client.ensure_repo(MODEL)
    # Two minutes: retrying sooner would only spend attempts inside the Hub's window.
    hub.fail(method="GET", path=r"/refs", status=429, retry_after=120, times=1)
    assert client.refs(MODEL).branches
    assert waits == [120]


def test_a_rate_limit_wait_past_the_deadline_ends_at_once_saying_when_to_try_again(
    hub: Any, client: HubClient, waits: list[float]
) -> None:
    client.ensure_repo(MODEL)
    hub.fail(method="GET", path=r"/refs", status=429, retry_after=3600, times=None)
    with pytest.raises(HubError) as caught:
        client.refs(MODEL)
    assert "the Hub asks to wait 3600 s, until " in str(caught.value)
    assert "try again after " in str(caught.value)
    assert waits == []
    assert sum(bool(r.get("fault")) for r in hub.requests()) == 1


def test_the_real_hubs_rate_limit_window_is_read_before_retry_after() -> None:
    def wait(status: int, headers: dict[str, str]) -> float | None:
        return answer_failure(status, headers).wait

    assert wait(429, {"RateLimit": '"api";r=0;t=55'}) == 56  # one second past the reset
    assert wait(429, {"RateLimit": '"api";r=12;t=55'}) is None  # requests left: no wait
    assert wait(429, {"Retry-After": "3", "RateLimit": '"api";r=0;t=55'}) == 56
    assert wait(503, {"Retry-After": "3", "RateLimit": '"api";r=0;t=55'}) == 3


@pytest.mark.parametrize("template", ["app_template", "autotrain_app_template"])
def test_a_space_app_pausing_its_space_gives_up_on_a_silent_hub(
    hub: Any, template: str, tmp_path: Path
) -> None:
    """The rendered app's own Hub call (pausing the Space at the end) runs in the Space with
    no runner around it: a stalled Hub must not keep the GPU Space (and its bill) alive."""
    hub.fail(path=".", mode="timeout", delay=600, times=None)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import importlib\n"
        f"app = importlib.import_module({template!r})\n"
        "app.HUB_TIMEOUT_S = 0.5\n"
        "app.bound_hub_requests()\n"
        "app.pause_space()\n"
    )
    environment = {
        **os.environ,
        "HF_ENDPOINT": hub.endpoint,
        "HF_TOKEN": TOKEN,
        "SPACE_ID": "ainative/trainer",
        "HF_HOME": str(tmp_path / "hf"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script, str(REPO_ROOT / "runner" / "space")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
    )
    assert done.returncode != 0
    assert "ReadTimeout" in done.stderr, done.stderr[-2000:]
