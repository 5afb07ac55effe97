"""A Space's life cycle as the Hub runs it, through the real client against the emulator, and
the runner's start and watch on it: a hardware request leaves a paused Space paused (only a
restart starts it), a commit to a running Space rebuilds it while the old app serves, and a
Space with a sleep time goes to sleep."""

from __future__ import annotations

import time
from typing import Any

import httpx
from huggingface_hub import HfApi

from runner.hub.client import HubClient
from runner.space.sync import (
    Limits,
    Watch,
    describe_failure,
    start_space,
    sync_space,
    watch_space,
)
from tests.conftest import TOKEN
from tests.space_apps import AFTER_THE_PROBE

SPACE = "ainative/lifecycle"
README = "---\ntitle: lifecycle\nsdk: docker\napp_port: 7860\n---\n"
WAIT_S = 60.0  # how long a test waits for the emulator; only a broken run needs it
# Answers its VERSION on $PORT until it is stopped.
SERVING_APP = """\
import http.server, os

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{version}")

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""
# Does its work once the emulator's probe reached it, then pauses its own Space, as the
# rendered training app does at the end of a run.
FINISHING_APP = (
    AFTER_THE_PROBE
    + """\
time.sleep(float(os.environ.get("WORK_S", "0")))
print("trained on", os.environ["SPACE_ID"], flush=True)
HfApi(token=os.environ["HF_TOKEN"]).pause_space(os.environ["SPACE_ID"])
threading.Event().wait()
"""
)


def api_of(hub: Any) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=TOKEN)


def wait_for_stage(hub: Any, stage: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while (runtime := hub.runtime(SPACE))["stage"] != stage:
        assert time.monotonic() < deadline, f"the Space is {runtime['stage']}, not {stage}"
        time.sleep(0.05)
    return runtime


def app_stops(url: str) -> bool:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
        except httpx.TransportError:
            return True
        time.sleep(0.05)
    return False


def commit_app(api: HfApi, app: str) -> None:
    api.upload_file(
        path_or_fileobj=app.encode(), path_in_repo="app.py", repo_id=SPACE, repo_type="space"
    )


def running_space(hub: Any, app: str) -> HfApi:
    """A Space serving `app`, RUNNING."""
    api = api_of(hub)
    api.create_repo(SPACE, repo_type="space", space_sdk="docker", private=True)
    api.upload_file(
        path_or_fileobj=README.encode(), path_in_repo="README.md", repo_id=SPACE, repo_type="space"
    )
    commit_app(api, app)
    wait_for_stage(hub, "RUNNING")
    return api


def synced_space(env: Any, work_s: float) -> HubClient:
    """The runner's Space holding FINISHING_APP, paused, as `runner space sync` leaves it."""
    client = HubClient()
    files = {"README.md": README, "app.py": FINISHING_APP}
    variables = {"WORK_S": str(work_s)}
    sync_space(client, SPACE, files, secrets={"HF_TOKEN": TOKEN}, variables=variables)
    return client


def test_a_hardware_request_leaves_a_paused_space_paused_until_it_is_restarted(hub: Any) -> None:
    api = running_space(hub, SERVING_APP.format(version="v1"))
    api.pause_space(SPACE)

    requested = api.request_space_hardware(SPACE, "t4-small")

    assert requested.stage == "PAUSED"
    assert requested.requested_hardware == "t4-small"
    assert requested.hardware is None
    assert hub.runtime(SPACE)["stage"] == "PAUSED"
    assert api.restart_space(SPACE).stage != "PAUSED"
    running = wait_for_stage(hub, "RUNNING")
    assert running["hardware"] == {"current": "t4-small", "requested": "t4-small"}


def test_a_commit_to_a_running_space_rebuilds_it_while_the_old_app_serves(hub: Any) -> None:
    api = running_space(hub, SERVING_APP.format(version="v1"))

    hub.script_space(SPACE, "hang", stage="BUILDING", times=1)
    commit_app(api, SERVING_APP.format(version="v2"))
    building = wait_for_stage(hub, "RUNNING_BUILDING")
    assert api.get_space_runtime(SPACE).stage == "RUNNING_BUILDING"
    assert building["hardware"]["current"] == "cpu-basic"
    assert httpx.get(building["localUrl"]).text == "v1"

    hub.script_space(SPACE, "hang", stage="APP_STARTING", times=1)
    commit_app(api, SERVING_APP.format(version="v3"))
    assert wait_for_stage(hub, "RUNNING_APP_STARTING")["localUrl"] is None

    commit_app(api, SERVING_APP.format(version="v4"))
    assert httpx.get(wait_for_stage(hub, "RUNNING")["localUrl"]).text == "v4"


def test_a_space_left_paused_by_its_hardware_request_is_restarted_and_watched_to_its_end(
    env: Any,
) -> None:
    client = synced_space(env, work_s=0)
    stages: list[str] = []
    limits = Limits(timeout_s=WAIT_S, stall_s=WAIT_S, ceiling_s=WAIT_S)
    watch = Watch(limits=limits, poll_s=0.05, on_stage=stages.append)

    start_space(client, SPACE, "t4-small")
    run = watch_space(client, SPACE, watch)

    assert run.finished, run.message
    assert stages[-1] == "PAUSED", stages
    calls = [r["path"].rsplit("/", 1)[1] for r in env.requests() if r["method"] == "POST"]
    space_calls = [c for c in calls if c in ("hardware", "restart")]
    assert space_calls == ["hardware", "restart"]
    assert env.runtime(SPACE)["hardware"]["requested"] == "t4-small"


def test_a_running_space_whose_sleep_time_runs_out_sleeps_until_it_is_restarted(
    hub: Any,
) -> None:
    api = running_space(hub, SERVING_APP.format(version="v1"))

    api.request_space_hardware(SPACE, "t4-small", sleep_time=1)
    awake = wait_for_stage(hub, "RUNNING")
    asleep = wait_for_stage(hub, "SLEEPING")

    assert api.get_space_runtime(SPACE).stage == "SLEEPING"
    assert asleep["localUrl"] is None
    assert asleep["gcTimeout"] == 1
    assert app_stops(awake["localUrl"]), "the sleeping Space's app still answers"
    assert api.restart_space(SPACE).stage not in ("SLEEPING", "PAUSED")


def test_a_sleep_time_set_by_hand_does_not_stop_a_training_run_midway(env: Any) -> None:
    client = synced_space(env, work_s=3)
    api_of(env).request_space_hardware(SPACE, "t4-small", sleep_time=1)
    limits = Limits(timeout_s=WAIT_S, stall_s=WAIT_S, ceiling_s=WAIT_S)

    start_space(client, SPACE, "t4-small")
    run = watch_space(client, SPACE, Watch(limits=limits, poll_s=0.05))

    assert run.finished, run.message
    assert any("trained on" in line for line in run.log_tail), run.log_tail
    assert env.runtime(SPACE)["gcTimeout"] == -1


def test_a_space_put_to_sleep_midway_is_reported_as_a_run_that_did_not_finish(
    env: Any,
) -> None:
    client = synced_space(env, work_s=WAIT_S)
    api = api_of(env)
    api.request_space_hardware(SPACE, "t4-small", sleep_time=1)
    api.restart_space(SPACE)  # started by hand, outside the runner's start
    limits = Limits(timeout_s=WAIT_S, stall_s=WAIT_S, ceiling_s=WAIT_S)

    run = watch_space(client, SPACE, Watch(limits=limits, poll_s=0.05))

    assert not run.finished
    assert run.stage == "SLEEPING"
    assert "put the Space to sleep before the app finished" in describe_failure(run)
    assert env.runtime(SPACE)["stage"] == "PAUSED"
