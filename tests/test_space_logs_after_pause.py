"""Run logs after a pause, as the Hub serves them: the run log belongs to the app's container,
which a pause removes, so a paused Space serves an empty run log while its build log stays.
The runner therefore keeps the lines it followed while the app ran, and says where the log
went when it has none."""

from __future__ import annotations

import time
from typing import Any

import httpx
from huggingface_hub import HfApi

from runner.hub.client import HubClient
from runner.space.sync import (
    Limits,
    SpaceRun,
    Watch,
    describe_failure,
    start_space,
    sync_space,
    watch_space,
)
from tests.conftest import TOKEN
from tests.space_apps import AFTER_THE_PROBE

SPACE = "ainative/log-keeper"
README = "---\ntitle: logs\nsdk: docker\n---\n"
WAIT_S = 60.0  # how long a test waits for the emulator; only a broken run needs it
# Serves on $PORT; once probed, works a while, prints its result and pauses its own Space,
# as the rendered training app does at the end of a run.
SELF_PAUSING_APP = (
    AFTER_THE_PROBE
    + """\
print("loading the dataset", flush=True)
time.sleep(float(os.environ.get("WORK_S", "0")))
print("train.py exited 1: CUDA out of memory", flush=True)
if os.environ.get("PAUSE_ITSELF") == "1":
    HfApi(token=os.environ["HF_TOKEN"]).pause_space(os.environ["SPACE_ID"])
threading.Event().wait()
"""
)


def wait_for_log_line(api: HfApi, text: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not any(text in line for line in api.fetch_space_logs(SPACE)):
        assert time.monotonic() < deadline, f"the run log never showed {text!r}"
        time.sleep(0.1)


def app_stops(url: str) -> bool:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
        except httpx.TransportError:
            return True
        time.sleep(0.05)
    return False


def test_a_paused_space_serves_no_run_log_and_keeps_its_build_log(env: Any) -> None:
    client = HubClient()
    files = {"README.md": README, "app.py": SELF_PAUSING_APP}
    sync_space(client, SPACE, files, secrets={"HF_TOKEN": TOKEN}, variables={"WORK_S": "0"})
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    api.restart_space(SPACE)
    wait_for_log_line(api, "CUDA out of memory")
    app_url = env.runtime(SPACE)["localUrl"]

    api.pause_space(SPACE)

    assert app_stops(app_url), "the paused Space's app is still listening"
    assert list(api.fetch_space_logs(SPACE)) == []
    assert any("Build done" in line for line in api.fetch_space_logs(SPACE, build=True))


def test_a_run_that_paused_itself_keeps_the_log_lines_the_watch_followed(env: Any) -> None:
    client = HubClient()
    files = {"README.md": README, "app.py": SELF_PAUSING_APP}
    variables = {"WORK_S": "2", "PAUSE_ITSELF": "1"}
    sync_space(client, SPACE, files, secrets={"HF_TOKEN": TOKEN}, variables=variables)
    limits = Limits(timeout_s=WAIT_S, stall_s=WAIT_S, ceiling_s=WAIT_S)

    start_space(client, SPACE, "cpu-basic")
    run = watch_space(client, SPACE, Watch(limits=limits, poll_s=0.05))

    assert run.finished, run.message
    assert client.space_log_tail(SPACE) == [], "the Hub serves no run log once paused"
    report = describe_failure(run)
    assert "train.py exited 1: CUDA out of memory" in report, report
    assert "loading the dataset" in report, report


def test_a_stopped_run_without_log_lines_says_where_the_log_went() -> None:
    run = SpaceRun(SPACE, "PAUSED", "the app finished and paused the Space")

    report = describe_failure(run)

    assert "the Hub drops a Space's run log when the Space pauses" in report, report
