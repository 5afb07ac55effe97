"""Gradio, streamlit and static Spaces in the emulator: it does not run their apps, but they go
through the Hub's stages as any Space does (NO_APP_FILE until the app file is there, then
BUILDING, then RUNNING), so that pause, restart and hardware requests act on them."""

from __future__ import annotations

import time
from typing import Any

from huggingface_hub import HfApi

from tests.conftest import TOKEN

WAIT_S = 30.0  # how long a test waits for the emulator; only a broken run needs it


def wait_for_stage(api: HfApi, space: str, *stages: str) -> str:
    deadline = time.monotonic() + WAIT_S
    while (stage := api.get_space_runtime(space).stage) not in stages:
        assert time.monotonic() < deadline, f"{space} stayed {stage}, never {stages}"
        time.sleep(0.05)
    return str(stage)


def test_a_gradio_space_builds_once_its_app_file_is_committed_and_pauses_and_restarts(
    hub: Any,
) -> None:
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    space = "ainative/gradio-demo"
    api.create_repo(space, repo_type="space", space_sdk="gradio")
    assert wait_for_stage(api, space, "NO_APP_FILE", "CONFIG_ERROR") == "NO_APP_FILE"

    api.upload_file(
        path_or_fileobj=b"import gradio\n", path_in_repo="app.py", repo_id=space, repo_type="space"
    )
    assert api.get_space_runtime(space).stage == "BUILDING"
    running = wait_for_stage(api, space, "RUNNING", "RUNTIME_ERROR", "CONFIG_ERROR")
    assert running == "RUNNING"
    runtime = api.get_space_runtime(space)
    assert runtime.hardware == "cpu-basic"
    assert runtime.raw["sdk"] == "gradio"

    assert api.pause_space(space).stage == "PAUSED"
    assert api.get_space_runtime(space).hardware is None
    assert api.restart_space(space).stage == "BUILDING"
    assert wait_for_stage(api, space, "RUNNING", "RUNTIME_ERROR") == "RUNNING"


def test_a_commit_to_a_running_gradio_space_rebuilds_it_while_it_keeps_serving(hub: Any) -> None:
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    space = "ainative/gradio-rolling"
    api.create_repo(space, repo_type="space", space_sdk="gradio")
    api.upload_file(path_or_fileobj=b"", path_in_repo="app.py", repo_id=space, repo_type="space")
    wait_for_stage(api, space, "RUNNING", "RUNTIME_ERROR")

    api.upload_file(path_or_fileobj=b"#", path_in_repo="app.py", repo_id=space, repo_type="space")

    assert api.get_space_runtime(space).stage == "RUNNING_BUILDING"
    assert wait_for_stage(api, space, "RUNNING", "RUNTIME_ERROR") == "RUNNING"


def test_a_static_space_runs_once_it_holds_its_index_html(hub: Any) -> None:
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    space = "ainative/static-page"
    api.create_repo(space, repo_type="space", space_sdk="static")
    api.upload_file(
        path_or_fileobj=b"print()\n", path_in_repo="app.py", repo_id=space, repo_type="space"
    )
    assert wait_for_stage(api, space, "NO_APP_FILE", "RUNNING") == "NO_APP_FILE"

    api.upload_file(
        path_or_fileobj=b"<h1>hi</h1>\n",
        path_in_repo="index.html",
        repo_id=space,
        repo_type="space",
    )

    assert wait_for_stage(api, space, "RUNNING", "RUNTIME_ERROR", "CONFIG_ERROR") == "RUNNING"
    assert api.get_space_runtime(space).raw["sdk"] == "static"


def test_a_running_gradio_space_moves_to_new_hardware_and_sleeps_when_its_time_runs_out(
    hub: Any,
) -> None:
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    space = "ainative/gradio-sleeper"
    api.create_repo(space, repo_type="space", space_sdk="gradio")
    api.upload_file(path_or_fileobj=b"", path_in_repo="app.py", repo_id=space, repo_type="space")
    wait_for_stage(api, space, "RUNNING", "RUNTIME_ERROR")

    assert api.request_space_hardware(space, "t4-small").stage == "BUILDING"
    assert wait_for_stage(api, space, "RUNNING", "RUNTIME_ERROR") == "RUNNING"
    assert api.get_space_runtime(space).hardware == "t4-small"

    api.set_space_sleep_time(space, 1)
    assert wait_for_stage(api, space, "SLEEPING", "RUNTIME_ERROR") == "SLEEPING"
    assert api.get_space_runtime(space).hardware is None


def test_a_space_sleeps_after_the_hubs_48_hours_on_free_hardware_and_never_when_told(
    hub: Any,
) -> None:
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    space = "ainative/sleepy"
    api.create_repo(space, repo_type="space", space_sdk="gradio")
    assert api.get_space_runtime(space).sleep_time == 48 * 3600  # as the Hub answered

    api.request_space_hardware(space, "a10g-small")
    assert api.get_space_runtime(space).sleep_time is None  # paid hardware never sleeps
    api.set_space_sleep_time(space, 3600)
    assert api.get_space_runtime(space).sleep_time == 3600
