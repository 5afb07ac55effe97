"""The Space watch's time limits: a run that progresses outlives its timeout, a run that
stops progressing is stopped, the cost ceiling stops any run, and the Space ends paused.

An emulated Space runs an app that prints the lines a test hands it; the watch reads them
from the Space's real run log, while its clock is a fake one that a poll moves by a minute.
Each fake sleep hands the app its next line and waits until the watch has read it back, so
"30 minutes" of a run take a few seconds and never depend on this machine's speed.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi
from rich.console import Console

from runner.hub.client import HubClient
from runner.report.progress import TrainProgress
from runner.runs.location import candidate_location
from runner.runs.run_id import run_id
from runner.space.sync import Limits, SpaceRun, Watch, watch_space
from runner.specs import require_adapter
from runner.train.train import ADAPTER_FILES, RunResult, to_json
from runner.workspace import Workspace
from tests.conftest import ADAPTER, TOKEN, RunCli, candidate_of

SPACE = "ainative/progress-trainer"
MINUTE = 60.0
REAL_WAIT_S = 60.0  # how long the test waits for the emulator; only a broken run needs it
README = "---\ntitle: progress\nsdk: docker\n---\n"
APP = """\
import http.server, os, pathlib, threading, time
from huggingface_hub import HfApi

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Health)
threading.Thread(target=server.serve_forever, daemon=True).start()
control, n = pathlib.Path(os.environ["CONTROL_DIR"]), 0
while True:
    handed = control / f"{n}.line"
    if not handed.exists():
        time.sleep(0.02)
        continue
    text, n = handed.read_text(), n + 1
    if text == "finish":  # as the real app does at the end of the run
        HfApi(token=os.environ["HF_TOKEN"]).pause_space(os.environ["SPACE_ID"])
        time.sleep(60)
    print(text, flush=True)
"""

Script = Callable[[int], str | None]
"""The line the app prints at poll N (None: nothing, `finish`: pause the Space)."""


def step(number: int, total: int = 100) -> str:
    payload = {"stage": "train", "step": number, "total": total, "loss": 1.0}
    return "@@progress " + json.dumps(payload)


class FakeTime:
    """The watch's clock and sleep: a sleep moves the clock and hands the app its line, then
    waits (for real) until the watch has read the line back from the run log."""

    def __init__(self, hub: Any, control: Path, script: Script) -> None:
        self.hub, self.control, self.script = hub, control, script
        self.now, self.polls, self.handed = 0.0, 0, 0
        self._read = 0
        self._lines = threading.Condition()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        line = self.script(self.polls)
        self.polls += 1
        if line is None:
            return
        (self.control / "next").write_text(line)
        (self.control / "next").rename(self.control / f"{self.handed}.line")
        self.handed += 1
        if line == "finish":
            wait_for_stage(self.hub, "PAUSED")
            return
        with self._lines:
            assert self._lines.wait_for(lambda: self._read >= self.handed, REAL_WAIT_S), (
                f"the watch never read {line!r} from the run log"
            )

    def on_log(self, line: str) -> None:
        if line.startswith("@@progress "):
            with self._lines:
                self._read += 1
                self._lines.notify_all()


def wait_for_stage(hub: Any, stage: str) -> None:
    deadline = time.monotonic() + REAL_WAIT_S
    while (current := hub.runtime(SPACE)["stage"]) != stage:
        assert time.monotonic() < deadline, f"the Space is {current}, not {stage}"
        time.sleep(0.05)


def watch_running_space(
    env: Any, tmp_path: Path, script: Script, limits: Limits
) -> tuple[SpaceRun, float]:
    """Start the scripted app in the emulated Space, then watch it to its end; returns the
    watch's result and the minutes it watched on its clock."""
    control = tmp_path / "control"
    control.mkdir()
    (tmp_path / "space").mkdir()
    (tmp_path / "space" / "README.md").write_text(README)
    (tmp_path / "space" / "app.py").write_text(APP)
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    api.create_repo(SPACE, repo_type="space", space_sdk="docker", private=True)
    api.add_space_secret(SPACE, "HF_TOKEN", TOKEN)
    api.add_space_variable(SPACE, "CONTROL_DIR", str(control))
    api.upload_folder(folder_path=tmp_path / "space", repo_id=SPACE, repo_type="space")
    wait_for_stage(env, "RUNNING")
    fake = FakeTime(env, control, script)
    watch = Watch(
        limits=limits, poll_s=MINUTE, on_log=fake.on_log, clock=fake.clock, sleep=fake.sleep
    )
    run = watch_space(HubClient(), SPACE, watch)
    return run, fake.now / MINUTE


LIMITS = Limits(timeout_s=5 * MINUTE, stall_s=3 * MINUTE, ceiling_s=60 * MINUTE)


def test_a_run_whose_steps_keep_moving_outlives_its_timeout(env: Any, tmp_path: Path) -> None:
    def script(poll: int) -> str:
        return step(poll + 1) if poll < 12 else "finish"

    run, minutes = watch_running_space(env, tmp_path, script, LIMITS)

    assert run.finished, run.message
    assert minutes > 12
    assert env.runtime(SPACE)["stage"] == "PAUSED"


def test_a_run_that_stops_progressing_is_stopped_for_no_progress(env: Any, tmp_path: Path) -> None:
    def script(poll: int) -> str:
        return step(min(poll + 1, 8))  # the step counter stops at 8 but lines keep coming

    run, minutes = watch_running_space(env, tmp_path, script, LIMITS)

    assert run.stage == "TIMEOUT"
    assert "stopped: no progress for 3 min, past the 5 min timeout" in run.message
    assert "last progress: train step 8/100" in run.message
    assert "paused the Space" in run.message
    assert minutes == 11
    assert step(8) in run.log_tail
    assert env.runtime(SPACE)["stage"] == "PAUSED"


def test_a_silent_run_is_stopped_at_its_timeout(env: Any, tmp_path: Path) -> None:
    run, _ = watch_running_space(env, tmp_path, lambda poll: None, LIMITS)

    assert run.stage == "TIMEOUT"
    assert "stopped: no progress for 5 min, past the 5 min timeout, none reported" in run.message
    assert env.runtime(SPACE)["stage"] == "PAUSED"


def test_the_hard_cost_ceiling_stops_a_run_that_progresses_forever(
    env: Any, tmp_path: Path
) -> None:
    limits = Limits(
        timeout_s=5 * MINUTE,
        stall_s=3 * MINUTE,
        ceiling_s=10 * MINUTE,
        ceiling_from="max_gpu_hours_per_run in policies/training.yaml",
    )
    run, _ = watch_running_space(env, tmp_path, lambda poll: step(poll + 1), limits)

    assert run.stage == "TIMEOUT"
    assert run.message == (
        "stopped at the hard cost ceiling of 10 min (max_gpu_hours_per_run in "
        "policies/training.yaml), last progress: train step 10/100; paused the Space"
    )
    assert env.runtime(SPACE)["stage"] == "PAUSED"


def test_a_stopped_run_keeps_the_adapter_it_had_trained_and_says_so(
    tiny_repo: Path, env: Any, run_cli: RunCli
) -> None:
    bundle = require_adapter(Workspace(tiny_repo), f"adapters/{ADAPTER}")
    location = candidate_location(bundle, run_id(bundle, tiny_repo))
    client = HubClient()
    client.ensure_repo(location.repo)
    kept = {name: f"{name} of the previous attempt".encode() for name in ADAPTER_FILES}
    trained = RunResult(
        location.run_id, bundle.dirname, "trained", None, "started", "finished", None
    )
    record = json.dumps(to_json(trained)).encode()
    client.commit(
        location.repo,
        {location.file(name): data for name, data in {**kept, "run.json": record}.items()},
        "A previous attempt trained its adapter, then its Space was paused",
    )
    env.script_space("ainative/adapter-trainer", "hang", stage="APP_STARTING", times=1)

    code, _, err = run_cli(
        "train", f"adapters/{ADAPTER}", "--backend", "space", "--timeout-minutes", "0.05",
        "--repo", tiny_repo,
    )  # fmt: skip

    assert code == 1
    assert "stopped: no progress for" in err
    assert f"kept: the trained adapter in {location}" in err
    assert "only generates" in err
    run = candidate_of(tiny_repo)
    assert run.status == "trained"
    assert set(ADAPTER_FILES) <= run.files
    assert "Traceback (most recent call last)" not in err
    # Not a terminal: the log has a line for each stage the watch saw.
    assert re.search(rf"{ADAPTER} \(space\): space APP_STARTING, \d+:\d\d:\d\d elapsed", err)


def test_a_long_stage_prints_a_heartbeat_line_when_the_output_is_a_log() -> None:
    log = io.StringIO()
    console = Console(file=log, width=200)  # a file, not a terminal: CI, `| tee`
    with TrainProgress(console, "kwanzaa-mini-v1 (space)", heartbeat_s=0.01) as progress:
        progress.update({"stage": "train", "step": 53, "total": 68, "loss": 0.81234})
        deadline = time.monotonic() + REAL_WAIT_S
        while log.getvalue().count("train, step 53/68") < 3 and time.monotonic() < deadline:
            time.sleep(0.01)

    lines = log.getvalue().splitlines()
    beats = [line for line in lines if "train, step 53/68, loss 0.8123, " in line]
    assert len(beats) >= 3, lines
    assert all(line.startswith("kwanzaa-mini-v1 (space): ") for line in lines), lines
    assert all(line.endswith(" elapsed") for line in lines), lines
