"""A docker Space is reached on the `app_port` its README names (7860 unless set): an app
listening there runs, one listening elsewhere never becomes RUNNING and ends in a runtime
error that names app_port once its startup timeout runs out, and an invalid app_port is a
configuration error. The runner's own rendered Space listens where its README says."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
from huggingface_hub import HfApi

from runner.engines.trl import TRL
from runner.hub.client import HubClient
from runner.space.render import render_space
from runner.space.sync import Limits, Watch, describe_failure, start_space, sync_space, watch_space
from tests.conftest import TOKEN

SPACE = "ainative/port-check"
WAIT_S = 60.0  # how long a test waits for the emulator; only a broken run needs it
# Listens on a port written into its code, as a Dockerfile's `--port 8000` would.
FIXED_PORT_APP = """\
import http.server

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"fixed")

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", {port}), Handler).serve_forever()
"""


def readme(extra: str) -> str:
    return f"---\ntitle: port check\nsdk: docker\n{extra}---\n"


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def push_space(hub: Any, files: dict[str, str]) -> HfApi:
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    api.create_repo(SPACE, repo_type="space", space_sdk="docker", private=True)
    for path, text in files.items():
        api.upload_file(
            path_or_fileobj=text.encode(), path_in_repo=path, repo_id=SPACE, repo_type="space"
        )
    return api


def wait_for_stage(hub: Any, *stages: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while (runtime := hub.runtime(SPACE))["stage"] not in stages:
        assert time.monotonic() < deadline, f"the Space is {runtime['stage']}, not {stages}"
        time.sleep(0.05)
    return runtime


def test_an_app_listening_on_the_port_its_readme_names_runs(hub: Any) -> None:
    port = unused_port()
    push_space(
        hub,
        {"README.md": readme(f"app_port: {port}\n"), "app.py": FIXED_PORT_APP.format(port=port)},
    )

    runtime = wait_for_stage(hub, "RUNNING", "RUNTIME_ERROR")

    assert runtime["stage"] == "RUNNING", runtime["errorMessage"]
    assert httpx.get(runtime["localUrl"]).text == "fixed"


def test_an_app_that_never_listens_on_its_app_port_fails_with_a_message_naming_app_port(
    env: Any,
) -> None:
    client = HubClient()
    files = {
        "README.md": readme("app_port: 8080\nstartup_duration_timeout: 2s\n"),
        "app.py": FIXED_PORT_APP.format(port=unused_port()),
    }
    sync_space(client, SPACE, files, secrets={"HF_TOKEN": TOKEN}, variables={})
    stages: list[str] = []
    limits = Limits(timeout_s=WAIT_S, stall_s=WAIT_S, ceiling_s=WAIT_S)

    start_space(client, SPACE, "cpu-basic")
    run = watch_space(client, SPACE, Watch(limits=limits, poll_s=0.05, on_stage=stages.append))

    assert run.stage == "RUNTIME_ERROR", run.message
    assert "RUNNING" not in stages, stages
    report = describe_failure(run)
    assert "app_port 8080" in report, report
    assert "README.md" in report, report
    assert env.runtime(SPACE)["stage"] == "PAUSED"


def test_an_invalid_app_port_is_a_configuration_error(hub: Any) -> None:
    push_space(
        hub, {"README.md": readme("app_port: web\n"), "app.py": FIXED_PORT_APP.format(port=1)}
    )

    runtime = wait_for_stage(hub, "CONFIG_ERROR", "RUNNING", "RUNTIME_ERROR", "APP_STARTING")

    assert runtime["stage"] == "CONFIG_ERROR", runtime
    assert "app_port" in runtime["errorMessage"]
    assert "'web'" in runtime["errorMessage"]


def test_the_runners_rendered_space_runs_on_the_app_port_its_readme_names(hub: Any) -> None:
    files = render_space("kwanzaa-mini-v2", TRL.space_app)
    files["train.py"] = "import time\ntime.sleep(60)\n"  # the app, not a training run, is tested

    push_space(hub, files)
    runtime = wait_for_stage(hub, "RUNNING", "RUNTIME_ERROR")

    assert runtime["stage"] == "RUNNING", runtime["errorMessage"]
    assert httpx.get(f"{runtime['localUrl']}/health").text == "ok"
